/**
 * The page of test/browser/websocket-login.e2e-spec.ts: a browser client of the PROTOCOL.md §11
 * WebSocket binding on libs/protocol's ClientHandshake and ClientSession, driven step by step by
 * the spec (connect, send, receive, close). Not the web client: just enough to prove the library
 * and the binding work from a page.
 */
import {
  ClientHandshake,
  ClientSession,
  type Deliver,
  ed25519PrivateKeyFromSeed,
  exportSpki,
  FrameDecoder,
  importUserPublicKey,
  type RawFrame,
  type ServerMessage,
} from '@securechat/protocol';

import { PageWebSocket } from './page-websocket';

export interface ConnectOptions {
  readonly url: string;
  readonly fingerprint: string;
  readonly username: string;
  readonly password: string;
}

/** One WebSocket; what went out is recorded so the spec can see what a refused page sent. */
class Connection {
  readonly sent: string[] = [];
  readonly closed: Promise<number>;
  #onFrame: (frame: RawFrame) => Promise<void> = () => Promise.resolve();
  #queue = Promise.resolve();
  #failure: unknown;
  readonly #decoder = new FrameDecoder();

  private constructor(readonly ws: PageWebSocket) {
    this.closed = new Promise((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
    ws.addEventListener('message', ({ data }) => {
      // Frames are handled one at a time, in order: the handshake's steps are asynchronous.
      this.#queue = this.#queue
        .then(async () => {
          if (!(data instanceof ArrayBuffer)) throw new Error('a text message');
          for (const frame of this.#decoder.push(Buffer.from(data))) await this.#onFrame(frame);
        })
        .catch((error: unknown) => {
          this.#failure ??= error;
          ws.close();
        });
    });
  }

  static open(url: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const ws = new PageWebSocket(url, 'securechat.v1');
      ws.binaryType = 'arraybuffer';
      ws.addEventListener('open', () => resolve(new Connection(ws)));
      ws.addEventListener('error', () => reject(new Error(`WebSocket to ${url} failed`)));
    });
  }

  get failure(): unknown {
    return this.#failure;
  }

  onFrame(handler: (frame: RawFrame) => Promise<void> | void): void {
    this.#onFrame = async (frame) => handler(frame);
  }

  /** PROTOCOL.md §11: one frame per binary message, while the session may seal several at once. */
  send(bytes: Buffer, what: string): void {
    for (const frame of new FrameDecoder({ maxFrame: 0x7fff_ffff }).push(bytes)) {
      this.ws.send(frame.bytes);
    }
    this.sent.push(what);
  }
}

interface Established {
  readonly connection: Connection;
  readonly session: ClientSession;
  readonly inbox: ServerMessage[];
  readonly waiters: { test: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[];
  receiptCheck?: { viewsMatch: boolean; signatureValid: boolean };
}

let current: Established | undefined;

function next<M extends ServerMessage>(
  test: (m: ServerMessage) => m is M,
  what: string,
  timeoutMs = 10_000,
): Promise<M> {
  const state = current!;
  const index = state.inbox.findIndex(test);
  if (index >= 0) return Promise.resolve(state.inbox.splice(index, 1)[0] as M);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    state.waiters.push({
      test,
      resolve: (m) => {
        clearTimeout(timer);
        resolve(m as M);
      },
    });
  });
}

function describeError(error: unknown) {
  const e = error as { name?: string; message?: string; code?: string; reason?: string };
  return { name: e.name, message: e.message, code: e.code, reason: e.reason };
}

/**
 * Registers `username` with an Ed25519 key made here, pinning `fingerprint`. Resolves with the
 * key's SPKI (base64), or with why the handshake failed and what the page had sent by then.
 */
async function connect(options: ConnectOptions) {
  const seed = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const privateKey = ed25519PrivateKeyFromSeed(seed);
  const connection = await Connection.open(options.url);
  const handshake = new ClientHandshake({
    trust: { fingerprint: options.fingerprint },
    credentials: {
      action: 'register',
      username: options.username,
      password: options.password,
      privateKey,
    },
  });
  const outcome = new Promise<{ ok: true; session: ClientSession } | { ok: false; error: unknown }>(
    (resolve) => {
      connection.onFrame(async (frame) => {
        if (current) {
          const received = current.session.receive(frame);
          if (received.receipt) current.receiptCheck = received.receipt;
          const index = current.waiters.findIndex((w) => w.test(received.message));
          if (index >= 0) current.waiters.splice(index, 1)[0]!.resolve(received.message);
          else current.inbox.push(received.message);
          return;
        }
        const step = await handshake.receive(frame);
        for (const bytes of step.send) connection.send(bytes, 'login');
        if (step.error) {
          connection.ws.close();
          resolve({ ok: false, error: step.error });
        } else if (step.session) {
          current = { connection, session: step.session, inbox: [], waiters: [] };
          resolve({ ok: true, session: step.session });
        }
      });
      void connection.closed.then(() =>
        resolve({ ok: false, error: connection.failure ?? new Error('closed by the server') }),
      );
    },
  );
  connection.send(handshake.start(), 'client_hello');
  const result = await outcome;
  const base = { sent: connection.sent, protocol: connection.ws.protocol };
  if (!result.ok) {
    return {
      ...base,
      ok: false as const,
      error: describeError(result.error),
      closeCode: await connection.closed,
    };
  }
  return {
    ...base,
    ok: true as const,
    username: result.session.username,
    spki: exportSpki(privateKey).toString('base64'),
  };
}

/** Signs and sends a chat message; resolves with the server's ack (or error) for it. */
async function sendTo(to: string, body: string) {
  const { session, connection } = current!;
  const id = `page-${Date.now()}`;
  connection.send(session.send(session.signedSend({ id, to, body, ts: Date.now() })), 'send');
  return next(
    (m): m is Extract<ServerMessage, { type: 'ack' | 'error' }> =>
      (m.type === 'ack' || m.type === 'error') && m.id === id,
    `an ack for ${id}`,
  );
}

/** Waits for a message from `from`, acknowledges it, and checks its author signature here. */
async function receiveFrom(from: string, senderSpkiBase64: string) {
  const { session, connection } = current!;
  const deliver = await next(
    (m): m is Deliver => m.type === 'deliver' && m.from === from,
    `a message from ${from}`,
  );
  connection.send(session.send({ type: 'delivered', msg_id: deliver.msg_id }), 'delivered');
  const senderKey = importUserPublicKey(Buffer.from(senderSpkiBase64, 'base64'));
  // The asynchronous check: an RSA author (the CLI's default key) verifies only through
  // WebCrypto in a browser.
  return {
    deliver,
    signatureValid: await ClientSession.verifyDeliverAsync(deliver, senderKey),
    // The same signature over another body must not verify: the check above is not vacuous.
    alteredBodyValid: await ClientSession.verifyDeliverAsync(
      { ...deliver, body: `${deliver.body}!` },
      senderKey,
    ),
  };
}

/** PROTOCOL.md §7: bye → receipt → countersign; resolves with the receipt check. */
async function close() {
  const state = current!;
  state.connection.send(state.session.bye(), 'bye');
  await next(
    (m): m is Extract<ServerMessage, { type: 'receipt' }> => m.type === 'receipt',
    'a receipt',
  );
  state.connection.send(state.session.countersign(), 'countersign');
  const closeCode = await state.connection.closed;
  current = undefined;
  return {
    viewsMatch: state.receiptCheck?.viewsMatch,
    signatureValid: state.receiptCheck?.signatureValid,
    closeCode,
    sent: state.connection.sent,
  };
}

export const securechatPage = { connect, sendTo, receiveFrom, close };
export type SecurechatPage = typeof securechatPage;

(globalThis as unknown as { securechatPage: SecurechatPage }).securechatPage = securechatPage;
