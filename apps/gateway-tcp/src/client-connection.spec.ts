/**
 * ClientConnection over an in-memory socket, a real libs/protocol client on the other end, and
 * fake auth/relay: the phases, the handshake bounds, and pipelined sends kept in order.
 */
import { EventEmitter } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';

import {
  type ChunkRecord,
  decodeChunk,
  loadConfig,
  NoopMetricsRepository,
  type SendBatchCommand,
  type SendBatchResult,
  type TranscriptBatch,
} from '@securechat/core';
import {
  type ClientMessage,
  type ClientSession,
  computeChain,
  computeChainOf,
  encodeFrame,
  exportSpki,
  FrameDecoder,
  fromBase64,
  MAX_HANDSHAKE_FRAME,
  parseJsonObject,
  type ServerMessage,
  serializeJson,
  sha256,
  toBase64,
} from '@securechat/protocol';

import { ClientConnection, type ConnectionDeps } from './client-connection';
import { type ByteStream } from './framed-socket';
import { type RelayClient } from './service-clients';
import { SessionRegistry } from './session-registry';
import { TranscriptShipper } from './transcript-shipper';
import { aliceHandshake } from '../test/alice-handshake';

/** A socket whose peer is the test: what the server writes is taken at once and decoded. */
class LoopSocket extends EventEmitter implements ByteStream {
  readonly remoteAddress = '192.0.2.7';
  writableLength = 0;
  destroyed = false;
  paused = false;
  ended = false;
  readonly received: Buffer[] = [];
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  cork(): void {}
  uncork(): void {}
  write(bytes: Buffer, done: (error?: Error | null) => void): boolean {
    this.received.push(bytes);
    queueMicrotask(() => done());
    return true;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
  setTimeout(): this {
    return this;
  }
  /** The client sends `bytes`. */
  push(bytes: Buffer): void {
    this.emit('data', bytes);
  }
  /** Takes everything the server wrote so far. */
  take(): Buffer {
    return Buffer.concat(this.received.splice(0));
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

interface Harness {
  readonly socket: LoopSocket;
  readonly connection: ClientConnection;
  readonly batches: SendBatchCommand[];
  readonly closed: jest.Mock;
  /** Resolves the oldest relay.sendBatch call still waiting. */
  releaseBatch(): void;
  readonly inFlight: () => number;
  readonly login: { resolve: () => void };
  readonly transcripts: ConnectionDeps['transcripts'] & {
    readonly open: jest.Mock;
    readonly record: jest.Mock;
    readonly close: jest.Mock;
  };
}

const identity = generateKeyPairSync('ed25519').privateKey;
const open: ClientConnection[] = [];

afterEach(() => {
  // Ends each connection's timers (countersign, handshake) with it.
  for (const connection of open.splice(0)) connection.shutdown('shutting_down', 'test over');
});
const userKey = generateKeyPairSync('ed25519');

function harness(
  env: Record<string, string> = {},
  holdLogin = false,
  transcripts?: ConnectionDeps['transcripts'],
): Harness {
  const socket = new LoopSocket();
  const batches: SendBatchCommand[] = [];
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let loginRelease: () => void = () => undefined;
  const loginGate = holdLogin
    ? new Promise<void>((resolve) => (loginRelease = resolve))
    : Promise.resolve();
  let nextMsgId = 100;
  const deps: ConnectionDeps = {
    config: loadConfig({ SECURECHAT_GATEWAY_ID: 'gw-test', ...env }),
    identity: { privateKey: identity, fingerprint: 'sha256:test' },
    auth: {
      login: jest.fn(async () => {
        await loginGate;
        return {
          ok: true as const,
          username: 'alice',
          publicKey: toBase64(exportSpki(userKey.publicKey)),
        };
      }),
      getKey: jest.fn(),
    },
    relay: {
      sendBatch: jest.fn((command: SendBatchCommand) => {
        batches.push(command);
        inFlight += 1;
        return new Promise<SendBatchResult>((resolve) => {
          waiting.push(() => {
            inFlight -= 1;
            resolve({
              results: command.sends.map(() => ({
                ok: true as const,
                msgId: String(nextMsgId++),
                serverTs: 1,
                duplicate: false,
              })),
            });
          });
        });
      }),
      deliveredBatch: jest.fn(() => Promise.resolve({ ok: true as const, marked: 1 })),
      pending: jest.fn(() => Promise.resolve({ messages: [] })),
      join: jest.fn(),
      leave: jest.fn(),
      history: jest.fn(),
    },
    registry: new SessionRegistry(),
    limiter: {
      tryStartSession: () => 'ok',
      endSession: () => undefined,
      endHandshake: () => undefined,
    },
    transcripts: transcripts ?? {
      open: jest.fn(),
      record: jest.fn(),
      close: jest.fn(),
      mode: 'full',
    },
    metrics: new NoopMetricsRepository(),
    logger: () => ({ log: jest.fn(), error: jest.fn(), warn: jest.fn(), debug: jest.fn() }),
    now: () => Date.now(),
    onSessionStart: () => undefined,
    onClosed: jest.fn(),
  };
  const connection = new ClientConnection(socket, deps);
  open.push(connection);
  connection.start();
  return {
    socket,
    connection,
    batches,
    closed: deps.onClosed as jest.Mock,
    releaseBatch: () => waiting.shift()?.(),
    inFlight: () => inFlight,
    login: { resolve: () => loginRelease() },
    transcripts: deps.transcripts as Harness['transcripts'],
  };
}

/** Drives a real client handshake against the connection; returns the client's session. */
async function logIn(h: Harness): Promise<{ session: ClientSession; decoder: FrameDecoder }> {
  const decoder = new FrameDecoder();
  const handshake = aliceHandshake(userKey.privateKey);
  h.socket.push(handshake.start());
  for (let round = 0; round < 20; round++) {
    await flush();
    for (const frame of decoder.push(h.socket.take())) {
      const step = await handshake.receive(frame);
      for (const bytes of step.send) h.socket.push(bytes);
      if (step.error) throw step.error;
      if (step.session) return { session: step.session, decoder };
    }
  }
  throw new Error('no login_ok');
}

function read(
  h: Harness,
  client: { session: ClientSession; decoder: FrameDecoder },
): ServerMessage[] {
  return client.decoder.push(h.socket.take()).map((frame) => client.session.receive(frame).message);
}

function sends(session: ClientSession, count: number): Buffer {
  return Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      session.send(session.signedSend({ id: `m${i}`, to: 'bob', body: `hello ${i}`, ts: i })),
    ),
  );
}

describe('ClientConnection', () => {
  it('stores 32 pipelined sends in client order, one batch with the relay at a time, acked in order', async () => {
    const h = harness();
    const client = await logIn(h);
    // The first send goes alone; the other 31 arrive while it is with the relay.
    h.socket.push(sends(client.session, 1));
    await flush();
    expect(h.inFlight()).toBe(1);
    const rest = Buffer.concat(
      Array.from({ length: 31 }, (_, i) =>
        client.session.send(
          client.session.signedSend({ id: `m${i + 1}`, to: 'bob', body: `hello ${i + 1}`, ts: 1 }),
        ),
      ),
    );
    h.socket.push(rest);
    await flush();
    expect(h.inFlight()).toBe(1); // gathered, not sent, while the first batch is out
    h.releaseBatch();
    await flush();
    expect(h.inFlight()).toBe(1);
    expect(h.batches.map((b) => b.sends.length)).toEqual([1, 31]);
    h.releaseBatch();
    await flush();

    const stored = h.batches.flatMap((b) => b.sends.map((s) => s.id));
    expect(stored).toEqual(Array.from({ length: 32 }, (_, i) => `m${i}`));
    const acks = read(h, client).filter((m) => m.type === 'ack');
    expect(acks.map((a) => (a as { id: string }).id)).toEqual(stored);
  });

  it('answers every pipelined send before the receipt that follows bye', async () => {
    const h = harness();
    const client = await logIn(h);
    h.socket.push(Buffer.concat([sends(client.session, 5), client.session.bye()]));
    await flush();
    h.releaseBatch();
    await flush();
    const types = read(h, client).map((m) => m.type);
    expect(types).toEqual(['ack', 'ack', 'ack', 'ack', 'ack', 'receipt']);
  });

  // PROTOCOL.md §6 (`bye`: the server sends nothing else after the receipt) and PROTOCOL.md §7 (the
  // s2c chain ends at the record before it): a bad record after the receipt closes the connection
  // without a word.
  it.each([
    ['a ping', { type: 'ping', n: 1 }],
    ['a countersign with a member not defined for it', 'countersign+note'],
  ] as const)(
    'closes without a word on %s after the receipt; the transcript still recomputes the receipt',
    async (_what, record) => {
      const h = harness();
      const client = await logIn(h);
      h.socket.push(client.session.send({ type: 'ping', n: 7 }));
      await flush();
      h.socket.push(client.session.bye());
      await flush();
      const answers = read(h, client);
      expect(answers.map((m) => m.type)).toEqual(['pong', 'receipt']);
      const receipt = answers[1] as Extract<ServerMessage, { type: 'receipt' }>;

      const view = client.session.view();
      const message =
        record === 'countersign+note'
          ? {
              type: 'countersign',
              c2s_count: view.c2sCount,
              c2s_chain: toBase64(view.c2sChain),
              s2c_count: view.s2cCount,
              s2c_chain: toBase64(view.s2cChain),
              signature: toBase64(Buffer.alloc(64, 1)),
              note: 'x',
            }
          : record;
      // The client's API refuses to send these after bye: seal them by hand.
      const sealer = client.session as unknown as { seal(m: object, chained: boolean): Buffer };
      h.socket.push(sealer.seal(message, false));
      await flush();

      expect(h.socket.take()).toEqual(Buffer.alloc(0)); // nothing after the receipt
      expect(h.closed).toHaveBeenCalledTimes(1);
      expect(h.connection.phase).toBe('closed');
      expect(h.socket.ended || h.socket.destroyed).toBe(true);

      // The shipped s2c records recompute the view the receipt signed, and the close carries it.
      const h2 = fromBase64((h.transcripts.open.mock.calls[0]![0] as { h2: string }).h2, 'h2');
      const shipped = h.transcripts.record.mock.calls.map(
        (call) => call[2] as { direction: string; chained: boolean; plaintext: Buffer },
      );
      const s2c = computeChain(
        h2,
        shipped.filter((r) => r.direction === 's2c' && r.chained).map((r) => r.plaintext),
      );
      expect([s2c.count, toBase64(s2c.chain)]).toEqual([receipt.s2c_count, receipt.s2c_chain]);
      expect(
        JSON.parse(
          shipped
            .filter((r) => r.direction === 's2c')
            .at(-1)!
            .plaintext.toString(),
        ),
      ).toMatchObject({ type: 'receipt' });
      expect(h.transcripts.close).toHaveBeenCalledTimes(1);
      expect(h.transcripts.close.mock.calls[0]![0]).toMatchObject({
        status: 'incomplete',
        serverView: { s2cCount: receipt.s2c_count, s2cChain: receipt.s2c_chain },
        receiptSignature: receipt.signature,
      });
    },
  );

  it('keeps a bad signature in its place among the answers of a batch', async () => {
    const h = harness();
    const client = await logIn(h);
    const good = (id: string) =>
      client.session.send(client.session.signedSend({ id, to: 'bob', body: id, ts: 1 }));
    const forged = () =>
      client.session.send({
        ...client.session.signedSend({ id: 'bad', to: 'bob', body: 'x', ts: 1 }),
        body: 'changed after signing',
      });
    // Sealed in the order they are sent (PROTOCOL.md §5 sequence numbers).
    h.socket.push(Buffer.concat([good('a'), forged(), good('b')]));
    await flush();
    h.releaseBatch();
    await flush();
    expect(h.batches[0]!.sends.map((s) => s.id)).toEqual(['a', 'b']);
    const answers = read(h, client).map((m) => [m.type, (m as { id?: string }).id]);
    expect(answers).toEqual([
      ['ack', 'a'],
      ['error', 'bad'],
      ['ack', 'b'],
    ]);
  });

  // docs/PROTOCOL.md §10 item 25: a request the gateway refuses by its own checks is stored
  // by digest; its `error` answer in full; the stored transcript still recomputes the receipt.
  it('ships a refused request by digest, flagged, and the transcript still recomputes the receipt', async () => {
    const appended: TranscriptBatch[] = [];
    const config = loadConfig({ SECURECHAT_GATEWAY_ID: 'gw-test' });
    const relay = {
      transcriptAppend: (batch: TranscriptBatch) => {
        appended.push(batch);
        return Promise.resolve({ ok: true as const, opened: 0, recorded: 0, closed: 0 });
      },
    } as unknown as RelayClient;
    const shipper = new TranscriptShipper(config, relay);
    const h = harness({}, false, shipper);
    const client = await logIn(h);
    const { session } = client;

    const good = session.signedSend({ id: 'good', to: 'bob', body: 'signed and fine', ts: 1 });
    const forged: ClientMessage = {
      ...session.signedSend({ id: 'forged', to: 'bob', body: 'x', ts: 1 }),
      body: 'FORGED BODY changed after signing',
    };
    const nul = session.signedSend({ id: 'nul', to: 'bob', body: 'NUL\u0000BODY', ts: 1 });
    const badRoom: ClientMessage = { type: 'join', room: '#BAD_ROOM_NAME!' };
    const ping: ClientMessage = { type: 'ping', n: 3 };
    h.socket.push(Buffer.concat([good, forged, nul, badRoom, ping].map((m) => session.send(m))));
    await flush();
    h.releaseBatch();
    await flush();
    expect(h.batches.flatMap((b) => b.sends.map((s) => s.id))).toEqual(['good']);
    h.socket.push(session.bye());
    await flush();
    const answers = read(h, client);
    expect(answers.map((m) => [m.type, (m as { id?: string; code?: string }).id ?? ''])).toEqual([
      ['ack', 'good'],
      ['error', 'forged'],
      ['error', 'nul'],
      ['error', ''],
      ['pong', ''],
      ['receipt', ''],
    ]);
    const receipt = answers.at(-1) as Extract<ServerMessage, { type: 'receipt' }>;
    h.socket.push(session.countersign());
    await flush();
    expect(h.connection.phase).toBe('closed');
    await shipper.flush();

    const records: ChunkRecord[] = appended
      .flatMap((batch) => batch.chunks)
      .sort((a, b) => a.firstPosition - b.firstPosition)
      .flatMap((chunk) => decodeChunk(Buffer.from(chunk.records, 'base64')));
    const c2s = records.filter((r) => r.direction === 'c2s');
    // The refused three by digest (their SHA-256, flagged), the others in full.
    const plaintextOf = (m: ClientMessage) => serializeJson(m);
    expect(
      c2s.map((r) =>
        r.digest ? 'digest' : (JSON.parse(r.plaintext.toString()) as { type: string }).type,
      ),
    ).toEqual(['send', 'digest', 'digest', 'digest', 'ping', 'bye', 'countersign']);
    expect(c2s[0]!.plaintext).toEqual(plaintextOf(good));
    expect(c2s.slice(1, 4).map((r) => r.digest)).toEqual(
      [forged, nul, badRoom].map((m) => sha256(plaintextOf(m))),
    );
    expect(c2s.slice(1, 4).every((r) => r.chained)).toBe(true);
    // Flag bit 2 in the chunk itself, and none of the refused bytes anywhere in the store.
    const stored = Buffer.concat(
      appended.flatMap((b) => b.chunks).map((c) => Buffer.from(c.records, 'base64')),
    );
    expect(stored.includes('FORGED BODY')).toBe(false);
    expect(stored.includes('#BAD_ROOM_NAME!')).toBe(false);
    expect(stored.includes('"id":"forged"')).toBe(true); // the error answer, in full
    // The shipped records, digests included, recompute the receipt's chains.
    const h2 = Buffer.from(appended[0]!.opens[0]!.h2, 'base64');
    const chained = (dir: 'c2s' | 's2c') => records.filter((r) => r.direction === dir && r.chained);
    const c2sChain = computeChainOf(h2, chained('c2s'));
    const s2cChain = computeChainOf(h2, chained('s2c'));
    expect([c2sChain.count, toBase64(c2sChain.chain)]).toEqual([
      receipt.c2s_count,
      receipt.c2s_chain,
    ]);
    expect([s2cChain.count, toBase64(s2cChain.chain)]).toEqual([
      receipt.s2c_count,
      receipt.s2c_chain,
    ]);
    const closed = appended.flatMap((b) => b.closes);
    expect(closed).toEqual([expect.objectContaining({ status: 'agreed' })]);
  });

  it('answers a frame sent before the login decision with unexpected_message and stops reading', async () => {
    const h = harness({}, true);
    const decoder = new FrameDecoder();
    const handshake = aliceHandshake(userKey.privateKey);
    h.socket.push(handshake.start());
    await flush();
    let login: Buffer | undefined;
    for (const frame of decoder.push(h.socket.take())) {
      const step = await handshake.receive(frame);
      if (step.send.length > 0) login = Buffer.concat(step.send);
    }
    // The login, then a flood of minimum frames in the same write.
    const tiny = encodeFrame(serializeJson({}));
    h.socket.push(Buffer.concat([login!, ...Array.from({ length: 5000 }, () => tiny)]));
    await flush();
    expect(h.socket.paused).toBe(true);
    expect(h.closed).toHaveBeenCalledTimes(1);
    h.login.resolve();
    await flush();
    const [last] = decoder.push(h.socket.take());
    const step = await handshake.receive(last!);
    expect(step.error).toMatchObject({ code: 'unexpected_message' });
  });

  it('refuses a handshake frame larger than any login can be', async () => {
    const h = harness();
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(MAX_HANDSHAKE_FRAME + 1);
    h.socket.push(prefix);
    await flush();
    const [answer] = new FrameDecoder().push(h.socket.take());
    expect(parseJsonObject(answer!.body)).toMatchObject({ type: 'error', code: 'frame_too_large' });
    expect(h.closed).toHaveBeenCalledTimes(1);
  });

  it('ends a connection that does not say client_hello within the hello timeout', () => {
    jest.useFakeTimers();
    try {
      const h = harness({ SECURECHAT_HELLO_TIMEOUT_MS: '500' });
      jest.advanceTimersByTime(499);
      expect(h.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      const [answer] = new FrameDecoder().push(h.socket.take());
      expect(parseJsonObject(answer!.body)).toMatchObject({ code: 'handshake_timeout' });
      expect(h.closed).toHaveBeenCalledTimes(1);
    } finally {
      jest.useRealTimers();
    }
  });
});
