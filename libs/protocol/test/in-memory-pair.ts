/**
 * Wires a ClientHandshake and a ServerHandshake together in memory, through FrameDecoders, the
 * way two sockets would. Test helper only.
 */
import { createPublicKey, type KeyObject, generateKeyPairSync } from 'node:crypto';

import {
  type ClientHandshakeOptions,
  type ClientHandshakeStep,
  ClientHandshake,
} from '../src/client-handshake';
import { type ClientSession } from '../src/client-session';
import { clientAuthInput } from '../src/key-schedule';
import { exportSpki, fingerprint, importUserPublicKey, userVerify } from '../src/crypto';
import { FrameDecoder, type RawFrame } from '../src/frame-decoder';
import {
  type LoginDecision,
  type LoginRequest,
  type ServerHandshakeOptions,
  type ServerHandshakeStep,
  ServerHandshake,
} from '../src/server-handshake';
import { type SessionOptions } from '../src/session';
import { type ServerSession } from '../src/server-session';

export const serverIdentity = generateKeyPairSync('ed25519').privateKey;
export const serverFingerprint = fingerprint(exportSpki(serverIdentity));
export const aliceKey = generateKeyPairSync('ed25519').privateKey;
export const aliceRsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

/** A verifier that behaves like the auth service: one user, password and key checked. */
export function verifierFor(users: Record<string, { password: string; key: KeyObject }>) {
  const requests: LoginRequest[] = [];
  const verify = (request: LoginRequest): Promise<LoginDecision> => {
    requests.push(request);
    const user = users[request.username];
    if (request.action === 'register') {
      if (user) return Promise.resolve({ ok: false, code: 'conflict' });
      const key = importUserPublicKey(request.publicKey!);
      if (!userVerify(key, clientAuthInput(request.h2), request.signature)) {
        return Promise.resolve({ ok: false, code: 'auth_failed' });
      }
      users[request.username] = { password: request.password, key };
      return Promise.resolve({ ok: true, publicKey: request.publicKey! });
    }
    const ok =
      user !== undefined &&
      user.password === request.password &&
      userVerify(user.key, clientAuthInput(request.h2), request.signature);
    return Promise.resolve(
      ok ? { ok: true, publicKey: exportSpki(user.key) } : { ok: false, code: 'auth_failed' },
    );
  };
  return { verify, requests };
}

/** Moves bytes from one side to the other through a decoder, frame by frame. */
export class Pipe {
  readonly decoder = new FrameDecoder();
  frames(bytes: Buffer | Buffer[]): RawFrame[] {
    return this.decoder.push(Array.isArray(bytes) ? Buffer.concat(bytes) : bytes);
  }
}

export interface HandshakeRun {
  client: ClientHandshake;
  server: ServerHandshake;
  clientStep?: ClientHandshakeStep;
  serverStep?: ServerHandshakeStep;
  clientSession?: ClientSession;
  serverSession?: ServerSession;
  toServer: Pipe;
  toClient: Pipe;
  /** Every frame the client sent, in order. */
  clientSent: Buffer[];
}

/**
 * Runs the handshake until it completes or a side closes. `tamper` may rewrite any frame on
 * the way (by index of frames sent by the server, 0-based).
 */
export async function runHandshake(
  clientOptions: ClientHandshakeOptions,
  serverOptions: ServerHandshakeOptions,
  tamperServerFrame?: (index: number, frame: Buffer) => Buffer,
): Promise<HandshakeRun> {
  const client = new ClientHandshake(clientOptions);
  const server = new ServerHandshake(serverOptions);
  const run: HandshakeRun = {
    client,
    server,
    toServer: new Pipe(),
    toClient: new Pipe(),
    clientSent: [],
  };
  let serverIndex = 0;
  let pending: Buffer[] = [client.start()];
  run.clientSent.push(...pending);
  for (let rounds = 0; rounds < 10 && pending.length > 0; rounds++) {
    const fromServer: Buffer[] = [];
    for (const frame of run.toServer.frames(pending)) {
      const step = await server.receive(frame);
      run.serverStep = step;
      for (const out of step.send)
        fromServer.push(tamperServerFrame ? tamperServerFrame(serverIndex++, out) : out);
      if (step.session) run.serverSession = step.session;
    }
    pending = [];
    for (const frame of run.toClient.frames(fromServer)) {
      const step = await client.receive(frame);
      run.clientStep = step;
      pending.push(...step.send);
      run.clientSent.push(...step.send);
      if (step.session) run.clientSession = step.session;
      if (step.close) break;
    }
    if (run.serverStep?.close || run.clientStep?.close) break;
  }
  return run;
}

/** alice's password in the in-memory sessions. */
export const ALICE_PASSWORD = 'correct horse battery staple';

/** A handshake run that ended in a session on both sides. */
export type ConnectedRun = HandshakeRun & {
  clientSession: ClientSession;
  serverSession: ServerSession;
  /**
   * H2 of the handshake (the start of both PROTOCOL.md §7 chains), as the server's verifier saw it.
   */
  h2: Buffer;
};

/** Reaches a session's protected sealer, to put on the wire records the public API refuses. */
export type Sealer = { seal: (message: object, chained: boolean) => Buffer };

/**
 * alice logged in over an in-memory pipe: both sessions, with these session options. `key` is
 * the key alice signs with and the server knows her by (default aliceKey); `userKeyOnServer`
 * the key the server's verifier answers with instead (the server then checks later signatures
 * against it).
 */
export async function connectAlice(
  options: {
    clientSession?: SessionOptions;
    serverSession?: SessionOptions;
    sessionId?: string;
    key?: KeyObject;
    userKeyOnServer?: KeyObject;
  } = {},
): Promise<ConnectedRun> {
  const key = options.key ?? aliceKey;
  const verifier = verifierFor({ alice: { password: ALICE_PASSWORD, key: createPublicKey(key) } });
  const userKeyOnServer = options.userKeyOnServer;
  let h2: Buffer | undefined;
  const run = await runHandshake(
    {
      trust: { fingerprint: serverFingerprint },
      credentials: {
        action: 'login',
        username: 'alice',
        password: ALICE_PASSWORD,
        privateKey: key,
      },
      ...(options.clientSession ? { session: options.clientSession } : {}),
    },
    {
      identity: { privateKey: serverIdentity },
      sessionId: options.sessionId ?? 's-42',
      verifyLogin: async (request) => {
        h2 = Buffer.from(request.h2);
        const decision = await verifier.verify(request);
        return decision.ok && userKeyOnServer !== undefined
          ? { ...decision, publicKey: exportSpki(userKeyOnServer) }
          : decision;
      },
      ...(options.serverSession ? { session: options.serverSession } : {}),
    },
  );
  if (!run.clientSession || !run.serverSession || !h2) throw new Error('handshake failed');
  return { ...run, h2 } as ConnectedRun;
}
