/**
 * The gateway's per-connection stack as production runs it — ClientConnection over FramedSocket,
 * ConnectionHandshake, LoginGate, RecordReader, RequestHandler, DeliverySync — on an in-memory
 * byte stream (apps/gateway-tcp/test/fake-byte-stream.ts), with deterministic in-memory auth,
 * relay and transcript shipper. No socket, no timer needs to fire, no randomness in what the
 * services answer.
 */
import { type LoggerService } from '@nestjs/common';
import {
  type ChunkRecord,
  type GetKeyResult,
  type HistoryQuery,
  type HistoryResult,
  loadConfig,
  type LoginCommand,
  type LoginResult,
  NoopMetricsRepository,
  type PendingQuery,
  type PendingResult,
  type RoomCommand,
  type SendBatchCommand,
  type SendBatchResult,
  type StoredMessage,
  type TranscriptClose,
  type TranscriptOpen,
} from '@securechat/core';
import {
  clientAuthInput,
  exportSpki,
  importUserPublicKey,
  signMessage,
  toBase64,
  USERNAME_PATTERN,
  userVerify,
} from '@securechat/protocol';

import {
  ClientConnection,
  type ConnectionDeps,
} from '../../apps/gateway-tcp/src/client-connection';
import { SessionRegistry } from '../../apps/gateway-tcp/src/session-registry';
import { FakeByteStream } from '../../apps/gateway-tcp/test/fake-byte-stream';
import {
  ALICE,
  ALICE_PASSWORD,
  aliceKey,
  alicePublicKey,
  serverFingerprint,
  serverIdentityKey,
} from './fixtures';
import { invariant, settle } from './harness';

/** Small enough that a fuzzer input (≤ 4 KiB) can reach every "does not fit a frame" rule. */
export const GATEWAY_MAX_FRAME = 4096;
const NOW = 1764000000000;
const aliceSpki = toBase64(exportSpki(aliceKey));

const stored = new Map<number, StoredMessage>();

/** A stored message from bob to alice, signed as the relay would hand it out (made once). */
function storedMessage(msgId: number, body: string): StoredMessage {
  let message = stored.get(msgId);
  if (!message) {
    const fields = { from: 'bob', to: ALICE, id: `b-${msgId}`, ts: NOW - msgId, body };
    message = {
      msg_id: String(msgId),
      ...fields,
      server_ts: NOW + msgId,
      sig: signMessage(aliceKey, fields),
    };
    stored.set(msgId, message);
  }
  return message;
}

/** auth as the gateway sees it: alice's login, a registration for any other valid name. */
export function fakeAuthLogin(command: LoginCommand): Promise<LoginResult> {
  const signature = Buffer.from(command.signature, 'base64');
  const h2 = Buffer.from(command.h2, 'base64');
  if (command.username === 'mallory') {
    return Promise.resolve({ ok: false, code: 'rate_limited', retryAfter: 30 });
  }
  if (command.action === 'login') {
    const ok =
      command.username === ALICE &&
      command.password === ALICE_PASSWORD &&
      userVerify(alicePublicKey, clientAuthInput(h2), signature);
    return Promise.resolve(
      ok ? { ok: true, username: ALICE, publicKey: aliceSpki } : { ok: false, code: 'auth_failed' },
    );
  }
  if (command.username === ALICE) return Promise.resolve({ ok: false, code: 'conflict' });
  if (!USERNAME_PATTERN.test(command.username) || command.publicKey === undefined) {
    return Promise.resolve({ ok: false, code: 'bad_request' });
  }
  const key = importUserPublicKey(Buffer.from(command.publicKey, 'base64'));
  if (!userVerify(key, clientAuthInput(h2), signature)) {
    return Promise.resolve({ ok: false, code: 'auth_failed' });
  }
  return Promise.resolve({ ok: true, username: command.username, publicKey: command.publicKey });
}

/** A record as the gateway shipped it: plaintext, or digest for a request it refused. */
export type ShippedRecord = ChunkRecord & { readonly position: number };

/** What the gateway shipped of the session's transcript. */
export interface ShippedTranscript {
  opened?: TranscriptOpen;
  readonly records: ShippedRecord[];
  closed?: TranscriptClose;
}

export class GatewayHarness {
  readonly socket = new FakeByteStream();
  readonly connection: ClientConnection;
  /** Every line the connection logged at `error`: each is a finding. */
  readonly errors: string[] = [];
  readonly transcript: ShippedTranscript = { records: [] };
  readonly maxFrame: number;
  #read = 0;
  #nextMsgId = 100;
  /** What the relay holds undelivered for alice: one message at login, then live ones. */
  readonly #pending: StoredMessage[] = [storedMessage(1, 'while you were out')];

  constructor(maxFrame = GATEWAY_MAX_FRAME) {
    this.maxFrame = maxFrame;
    const errors = this.errors;
    const logger: LoggerService = {
      log: () => undefined,
      warn: () => undefined,
      debug: () => undefined,
      error: (message: unknown) => {
        errors.push(typeof message === 'string' ? message : JSON.stringify(message));
      },
    };
    const transcript = this.transcript;
    const deps: ConnectionDeps = {
      config: loadConfig({
        SECURECHAT_GATEWAY_ID: 'gw-fuzz',
        SECURECHAT_MAX_FRAME: String(maxFrame),
        SECURECHAT_MAX_BODY_BYTES: '2048',
      }),
      identity: { privateKey: serverIdentityKey, fingerprint: serverFingerprint },
      auth: {
        login: fakeAuthLogin,
        getKey: (user: string): Promise<GetKeyResult> =>
          Promise.resolve(
            user === ALICE || user === 'bob'
              ? { ok: true, user, publicKey: aliceSpki, fingerprint: serverFingerprint }
              : { ok: false, code: 'not_found' },
          ),
      },
      relay: {
        sendBatch: (command: SendBatchCommand): Promise<SendBatchResult> =>
          Promise.resolve({
            results: command.sends.map((send) =>
              send.to.startsWith('#') && send.to !== '#ops'
                ? { ok: false as const, code: 'forbidden' as const, message: 'not a member' }
                : {
                    ok: true as const,
                    msgId: String(this.#nextMsgId++),
                    serverTs: NOW,
                    duplicate: send.id === 'dup',
                  },
            ),
          }),
        deliveredBatch: (_username: string, msgIds: string[]) => {
          const before = this.#pending.length;
          for (const id of msgIds) {
            const at = this.#pending.findIndex((m) => m.msg_id === id);
            if (at !== -1) this.#pending.splice(at, 1);
          }
          return Promise.resolve({ ok: true as const, marked: before - this.#pending.length });
        },
        pending: (query: PendingQuery): Promise<PendingResult> => {
          const after = query.after === undefined ? -1 : Number(query.after);
          const messages = this.#pending.filter((m) => Number(m.msg_id) > after);
          return Promise.resolve({ messages: messages.slice(0, query.limit) });
        },
        join: (command: RoomCommand) =>
          Promise.resolve({
            ok: true as const,
            room: command.room,
            members: [ALICE, 'bob', ...Array.from({ length: 400 }, (_, i) => `member_${i}`)],
          }),
        leave: (command: RoomCommand) =>
          Promise.resolve(
            command.room === '#ops'
              ? { ok: true as const, room: command.room }
              : { ok: false as const, code: 'not_found' as const, message: 'not a member' },
          ),
        history: (query: HistoryQuery): Promise<HistoryResult> =>
          Promise.resolve(
            query.with === 'nobody'
              ? { ok: false, code: 'not_found', message: 'no such user' }
              : {
                  ok: true,
                  with: query.with,
                  // A page with one message too large for a frame, and several that fit.
                  messages: [
                    storedMessage(2, 'x'.repeat(3000)),
                    ...Array.from({ length: Math.min(query.limit, 30) }, (_, i) =>
                      storedMessage(3 + i, `message ${i} `.repeat(i + 1)),
                    ),
                  ],
                },
          ),
      },
      registry: new SessionRegistry(),
      limiter: {
        tryStartSession: () => 'ok',
        endSession: () => undefined,
        endHandshake: () => undefined,
      },
      transcripts: {
        mode: 'full',
        open: (open) => {
          transcript.opened = open;
        },
        record: (_sessionId, position, record) => {
          transcript.records.push(
            record.digest !== undefined
              ? { ...record, digest: Buffer.from(record.digest), position }
              : { ...record, plaintext: Buffer.from(record.plaintext), position },
          );
        },
        close: (close) => {
          transcript.closed = close;
        },
      },
      metrics: new NoopMetricsRepository(),
      logger: () => logger,
      now: () => NOW,
      onSessionStart: () => undefined,
      onClosed: () => undefined,
    };
    this.connection = new ClientConnection(this.socket, deps);
    this.connection.start();
  }

  /** The relay's fan-out hands the connection a live message for alice (PROTOCOL.md §6 deliver). */
  deliverLive(n: number): void {
    const message = storedMessage(200 + n, `live message ${n}`);
    this.#pending.push(message);
    this.connection.deliver(message);
  }

  /** The client sends bytes. */
  push(bytes: Buffer): void {
    this.socket.push(bytes);
  }

  /** Runs the event loop until the connection is quiet; the kernel takes everything written. */
  async settle(where: string): Promise<void> {
    await settle(() => {
      this.socket.accept();
      return `${this.socket.written.length}:${this.connection.phase}:${this.socket.destroyCalls}`;
    }, where);
    this.checkLogs(where);
  }

  /** Bytes the server wrote since the last call. */
  takeOutput(): Buffer {
    const out = Buffer.concat(this.socket.written.slice(this.#read));
    this.#read = this.socket.written.length;
    return out;
  }

  checkLogs(where: string): void {
    invariant(this.errors.length === 0, `${where}: the gateway logged an error: ${this.errors[0]}`);
  }

  /** A defined end state: still talking, or closed with the socket ended. */
  checkState(where: string): void {
    const phase = this.connection.phase;
    if (phase === 'closed') {
      invariant(
        this.socket.endCalls + this.socket.destroyCalls > 0,
        `${where}: connection closed but its socket was left open`,
      );
    }
  }

  /** Ends the connection as a shutting-down server would; it must close, and quietly. */
  async dispose(where: string): Promise<void> {
    this.connection.shutdown('shutting_down', 'fuzz run over');
    await this.settle(`${where} (shutdown)`);
    invariant(
      this.connection.phase === 'closed',
      `${where}: still ${this.connection.phase} after shutdown (a request never finished)`,
    );
  }
}
