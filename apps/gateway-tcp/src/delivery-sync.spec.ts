/**
 * DeliverySync against an in-memory pending store with the relay's paging rules (`after`,
 * `limit`, `maxBytes`: apps/relay/src/relay.service.ts `pending`), whose answers the test may
 * hold back, and an output whose waiting bytes grow on send and shrink when the test "reads".
 * One case runs the real FramedSocket over a fake byte stream with a slow reader.
 */
import { type LoggerService } from '@nestjs/common';
import { type PendingQuery, type PendingResult, type StoredMessage } from '@securechat/core';
import { encodeFrame, FrameDecoder, serializeJson } from '@securechat/protocol';

import { FakeByteStream } from '../test/fake-byte-stream';
import {
  DEFAULT_DELIVERY_SYNC_LIMITS,
  type DeliveryOutput,
  DeliverySync,
  type DeliverySyncLimits,
} from './delivery-sync';
import { FramedSocket } from './framed-socket';
import { toDeliver } from './request-handler';

const T0 = 1_700_000_000_000;

function stored(n: number, bodyBytes = 16): StoredMessage {
  return {
    msg_id: String(n),
    id: `c-${n}`,
    from: 'bob',
    to: 'alice',
    body: String(n % 10).repeat(bodyBytes),
    ts: T0 + n,
    server_ts: T0 + n,
    sig: 'c2lnbmF0dXJl',
  };
}
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const idsOf = (messages: readonly StoredMessage[]): string[] => messages.map((m) => m.msg_id);
const ids = (from: number, to: number): string[] => range(from, to).map(String);
const frameOf = (message: StoredMessage): Buffer => encodeFrame(serializeJson(toDeliver(message)));

interface WaitingCall {
  readonly result: PendingResult;
  readonly resolve: (result: PendingResult) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Pending messages of one user, in storage order. Each answer is taken when `pending` is called
 * (like a query's snapshot); in `manual` mode it is handed back only on `respond()`.
 */
class FakeStore {
  readonly messages: StoredMessage[] = [];
  readonly queries: PendingQuery[] = [];
  manual = false;
  readonly #waiting: WaitingCall[] = [];

  readonly pending = jest.fn((query: PendingQuery): Promise<PendingResult> => {
    this.queries.push({ ...query });
    const result = this.#page(query);
    if (!this.manual) return Promise.resolve(result);
    return new Promise((resolve, reject) => this.#waiting.push({ result, resolve, reject }));
  });

  add(...messages: StoredMessage[]): this {
    this.messages.push(...messages);
    this.messages.sort((a, b) => Number(BigInt(a.msg_id) - BigInt(b.msg_id)));
    return this;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Answers the oldest held-back call with what storage held when it was made. */
  respond(): void {
    const call = this.#waiting.shift();
    if (!call) throw new Error('no pending() call is waiting');
    call.resolve(call.result);
  }

  /** Fails the oldest held-back call. */
  fail(error: Error): void {
    const call = this.#waiting.shift();
    if (!call) throw new Error('no pending() call is waiting');
    call.reject(error);
  }

  /** relay.service.ts `pending`: after `after`, at most `limit`, cut by body bytes. */
  #page(query: PendingQuery): PendingResult {
    const after = query.after === undefined ? -1n : BigInt(query.after);
    const messages = this.messages.filter((m) => BigInt(m.msg_id) > after).slice(0, query.limit);
    if (query.maxBytes === undefined) return { messages };
    let bytes = 0;
    const cut = messages.findIndex((message, i) => {
      bytes += Buffer.byteLength(message.body, 'utf8');
      return i > 0 && bytes > query.maxBytes!;
    });
    return cut === -1 ? { messages } : { messages: messages.slice(0, cut), more: true };
  }
}

/** An output whose waiting bytes grow on send and shrink when the test reads. */
class FakeOutput implements DeliveryOutput {
  readonly sent: StoredMessage[] = [];
  outboundBytes = 0;
  maxOutboundBytes = 0;
  /** What send() answers. */
  accepting = true;
  onSend: ((message: StoredMessage) => void) | undefined;
  readonly #waiters: (() => void)[] = [];

  constructor(private readonly lowWater = 0) {}

  send(message: StoredMessage): boolean {
    if (!this.accepting) return false;
    this.sent.push(message);
    this.#grow(frameOf(message).length);
    this.onSend?.(message);
    return true;
  }

  drained(): Promise<void> {
    if (this.outboundBytes <= this.lowWater) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Bytes written by something else (acks, history pages). */
  other(bytes: number): void {
    this.#grow(bytes);
  }

  /** The peer reads `bytes` (everything when omitted). */
  read(bytes = Number.POSITIVE_INFINITY): void {
    this.outboundBytes = Math.max(0, this.outboundBytes - bytes);
    if (this.outboundBytes <= this.lowWater)
      for (const resolve of this.#waiters.splice(0)) resolve();
  }

  get ids(): string[] {
    return idsOf(this.sent);
  }

  #grow(bytes: number): void {
    this.outboundBytes += bytes;
    this.maxOutboundBytes = Math.max(this.maxOutboundBytes, this.outboundBytes);
  }
}

function fakeLogger() {
  return { log: jest.fn(), warn: jest.fn(), error: jest.fn() } satisfies LoggerService;
}

/** Lets promise callbacks (and the fake-timer ticks FramedSocket uses) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    jest.runAllTicks();
    await Promise.resolve();
  }
}

const LIMITS: DeliverySyncLimits = {
  pageMessages: 3,
  pageBytes: 1_000_000,
  writeAheadBytes: 1_000_000,
  maxOutboundBytes: 2_000_000,
  maxHeldBytes: 1_000_000,
};

function setup(limits: Partial<DeliverySyncLimits> = {}, lowWater = 0) {
  const store = new FakeStore();
  const output = new FakeOutput(lowWater);
  const logger = fakeLogger();
  const sync = new DeliverySync('alice', store.pending, output, { ...LIMITS, ...limits }, logger);
  return { store, output, logger, sync };
}

/** Tracks when a promise settles, without awaiting it. */
function watch(promise: Promise<unknown>): { readonly done: boolean } {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}

/** The peer reads everything, again and again, until `until` holds. */
async function readUntil(output: FakeOutput, until: () => boolean, rounds = 1_000): Promise<void> {
  for (let i = 0; i < rounds && !until(); i++) {
    output.read();
    await settle();
  }
  expect(until()).toBe(true);
}

describe('DeliverySync', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  it.each([
    ['pageMessages', 0],
    ['pageBytes', 1.5],
    ['maxHeldBytes', -1],
  ])('refuses %s = %p', (name, value) => {
    expect(
      () =>
        new DeliverySync(
          'alice',
          jest.fn(),
          new FakeOutput(),
          { ...LIMITS, [name]: value },
          fakeLogger(),
        ),
    ).toThrow(RangeError);
  });

  describe('the backlog after login', () => {
    it('sends every pending message in storage order, page after page, then goes live', async () => {
      const { store, output, sync } = setup();
      store.add(...range(1, 10).map((n) => stored(n)));
      expect(sync.state).toBe('catching_up');
      await sync.start();
      expect(output.ids).toEqual(ids(1, 10));
      expect(store.queries).toEqual([
        { username: 'alice', limit: 3, maxBytes: LIMITS.pageBytes },
        { username: 'alice', limit: 3, maxBytes: LIMITS.pageBytes, after: '3' },
        { username: 'alice', limit: 3, maxBytes: LIMITS.pageBytes, after: '6' },
        { username: 'alice', limit: 3, maxBytes: LIMITS.pageBytes, after: '9' },
      ]);
      expect(sync.state).toBe('live');
      // Live now: a delivery is written at once.
      sync.deliver(stored(11));
      expect(output.ids).toEqual(ids(1, 11));
    });

    it('reads on after a page cut short by bytes, and stops after a short page', async () => {
      // 16-byte bodies, 40 bytes a page: the relay lists 2 and says there is more.
      const { store, output, sync } = setup({ pageMessages: 200, pageBytes: 40 });
      store.add(...range(1, 5).map((n) => stored(n)));
      await sync.start();
      expect(output.ids).toEqual(ids(1, 5));
      expect(store.queries.map((q) => q.after)).toEqual([undefined, '2', '4']);
    });

    it('goes live at once with nothing pending', async () => {
      const { store, output, sync } = setup();
      await sync.start();
      expect(sync.state).toBe('live');
      expect(output.sent).toEqual([]);
      expect(store.queries).toHaveLength(1);
    });

    it('writes ahead of the peer no more than writeAheadBytes and one message', async () => {
      const message = frameOf(stored(1, 1000)).length;
      const writeAheadBytes = 3 * message;
      const { store, output, sync } = setup({ writeAheadBytes, pageMessages: 7 });
      store.add(...range(1, 40).map((n) => stored(n, 1000)));
      const started = watch(sync.start());
      await settle();
      // Paced: it waits for the peer instead of queueing the backlog.
      expect(output.sent.length).toBeLessThan(40);
      expect(output.sent.length).toBeGreaterThan(0);
      for (let i = 0; i < 1_000 && !started.done; i++) {
        output.read(message);
        await settle();
      }
      expect(started.done).toBe(true);
      expect(output.ids).toEqual(ids(1, 40));
      expect(output.maxOutboundBytes).toBeLessThanOrEqual(writeAheadBytes + message);
    });

    it('gets 200 pending 16 KiB messages through a FramedSocket to a slow but steady reader, in order and bounded', async () => {
      const stream = new FakeByteStream();
      const writeStallTimeoutMs = 1_000;
      const framed = new FramedSocket(
        stream,
        {
          maxFrame: 65_536,
          maxInboundFrames: 64,
          maxInboundBytes: 64 * 1024 + 4 + 65_536,
          writeStallTimeoutMs,
          frameStallTimeoutMs: 30_000,
          idleTimeoutMs: 600_000,
        },
        () => Date.now(),
      );
      const closed = jest.fn();
      framed.start({ readable: jest.fn(), framingError: jest.fn(), ended: jest.fn(), closed });

      const store = new FakeStore().add(...range(1, 200).map((n) => stored(n, 16 * 1024)));
      const limits = { ...DEFAULT_DELIVERY_SYNC_LIMITS, maxOutboundBytes: 1024 * 1024 };
      const output: DeliveryOutput = {
        send: (message) => {
          framed.write(frameOf(message));
          return true;
        },
        get outboundBytes() {
          return framed.outboundBytes;
        },
        drained: () => framed.drained(),
      };
      const logger = fakeLogger();
      const sync = new DeliverySync('alice', store.pending, output, limits, logger);
      const started = watch(sync.start());
      await settle();

      // About one message every half stall timeout: ~33 KB/s, a link far slower than the
      // backlog is large (3.3 MB), yet steady.
      const step = frameOf(stored(200, 16 * 1024)).length + 16;
      for (let round = 0; round < 2_000 && (stream.writableLength > 0 || !started.done); round++) {
        jest.advanceTimersByTime(writeStallTimeoutMs / 2);
        stream.accept(step);
        await settle();
      }
      expect(closed).not.toHaveBeenCalled();
      expect(started.done).toBe(true);
      expect(sync.state).toBe('live');
      expect(logger.warn).not.toHaveBeenCalled();

      const frames = new FrameDecoder({ maxFrame: 65_536 }).push(stream.receivedBytes);
      const delivered = frames.map((f) => JSON.parse(f.body.toString('utf8')) as StoredMessage);
      expect(delivered.map((d) => d.msg_id)).toEqual(ids(1, 200));
      expect(delivered.every((d) => d.body === stored(Number(d.msg_id), 16 * 1024).body)).toBe(
        true,
      );
      // Never more waiting than the write-ahead and one message (within the bound and a page).
      expect(stream.maxWritableLength).toBeLessThanOrEqual(limits.writeAheadBytes + step);
      expect(stream.maxWritableLength).toBeLessThanOrEqual(
        limits.maxOutboundBytes + limits.pageBytes,
      );
    });
  });

  describe('live deliveries while catching up', () => {
    it('holds them and sends them after the backlog, without repeating what the backlog sent', async () => {
      const { store, output, sync } = setup({ pageMessages: 2 });
      store.add(...range(1, 4).map((n) => stored(n)));
      store.manual = true;
      const started = watch(sync.start());
      await settle();
      // Fan-out of messages the backlog will reach.
      sync.deliver(stored(2));
      sync.deliver(stored(4));
      expect(output.sent).toEqual([]);

      store.respond(); // [1, 2]
      await settle();
      expect(output.ids).toEqual(ids(1, 2));
      store.add(stored(5)); // stored after the next page was read...
      sync.deliver(stored(5));
      store.respond(); // [3, 4]
      await settle();
      expect(output.ids).toEqual(ids(1, 4));
      store.add(stored(6)); // ...and after the last one was
      sync.deliver(stored(6));
      store.respond(); // [5]: the end of the backlog
      await settle();

      expect(started.done).toBe(true);
      expect(sync.state).toBe('live');
      // 5 came from storage, its held copy was dropped; 6 only from the held ones.
      expect(output.ids).toEqual(ids(1, 6));
      expect(store.queries.map((q) => q.after)).toEqual([undefined, '2', '4']);
    });

    it('does not write again a fan-out copy that arrives after the backlog wrote the message', async () => {
      const { store, output, sync } = setup({ pageMessages: 2 });
      store.add(...range(1, 3).map((n) => stored(n)));
      store.manual = true;
      const started = watch(sync.start());
      await settle();
      store.respond(); // [1, 2]: written from storage
      await settle();
      expect(output.ids).toEqual(ids(1, 2));
      // The fan-out of 2 (stored as the backlog was read) comes late, during the catch-up.
      sync.deliver(stored(2));
      store.respond(); // [3]: the end of the backlog
      await settle();
      expect(started.done).toBe(true);
      expect(output.ids).toEqual(ids(1, 3));
      // Live from here on: a delivery is written at once.
      sync.deliver(stored(4));
      expect(output.ids).toEqual(ids(1, 4));
    });

    it('drops held deliveries past maxHeldBytes and reads storage again, losing none', async () => {
      const held = 16 + 512; // body and the per-message overhead
      const { store, output, sync } = setup({ pageMessages: 2, maxHeldBytes: 2 * held });
      store.add(stored(1), stored(2));
      store.manual = true;
      const started = watch(sync.start());
      await settle();
      store.respond(); // [1, 2]: a full page, so one more read
      await settle();
      expect(output.ids).toEqual(ids(1, 2));
      expect(store.waiting).toBe(1); // that read saw nothing more
      store.add(...range(3, 6).map((n) => stored(n)));
      for (const n of range(3, 6)) sync.deliver(stored(n)); // 5 overflows: 3, 4, 5 are dropped
      store.manual = false;
      store.respond();
      await settle();

      expect(started.done).toBe(true);
      expect(output.ids).toEqual(ids(1, 6));
      // Storage was read again from where the backlog got.
      expect(store.queries.map((q) => q.after)).toEqual([undefined, '2', '2', '4', '6']);
    });

    it('falls back to catching up from the last message sent when the peer is far behind', async () => {
      const { store, output, sync } = setup({
        pageMessages: 10,
        writeAheadBytes: 1_000,
        maxOutboundBytes: 2_000,
      });
      store.add(stored(1), stored(2));
      await sync.start();
      store.add(stored(3));
      sync.deliver(stored(3));
      expect(output.ids).toEqual(ids(1, 3));

      output.other(5_000); // the peer has not read a history page and the rest
      store.add(stored(4));
      sync.deliver(stored(4));
      expect(output.ids).toEqual(ids(1, 3)); // not written: it is in storage
      expect(sync.state).toBe('catching_up');
      expect(store.queries.at(-1)?.after).toBe('3');
      store.add(stored(5));
      sync.deliver(stored(5));
      await settle();
      expect(output.ids).toEqual(ids(1, 3)); // waits for the peer

      await readUntil(output, () => sync.state === 'live');
      expect(output.ids).toEqual(ids(1, 5));
      expect(output.maxOutboundBytes).toBeLessThan(5_000 + 4 * frameOf(stored(1)).length);
    });

    it('reads again after a message that could not be written', async () => {
      const { store, output, sync } = setup({ maxOutboundBytes: 2_000 });
      store.add(stored(1));
      await sync.start();
      output.accepting = false;
      store.add(stored(2));
      sync.deliver(stored(2));
      output.accepting = true;
      output.other(5_000);
      store.add(stored(3));
      sync.deliver(stored(3));
      expect(store.queries.at(-1)?.after).toBe('1');
      await readUntil(output, () => sync.state === 'live');
      expect(output.ids).toEqual(ids(1, 3));
    });

    // Regression: a catch-up asked for just after a run went live, before its promise settled
    // (a far-behind live delivery, or resync(), from a promise callback: the in-process fan-out
    // publishes from the relay's async continuation), once joined the finishing run, so no
    // pass started and the session held every later delivery for good.
    it('starts a catch-up asked for just as the previous one finished (microtask after going live)', async () => {
      const { store, output, sync } = setup({ maxOutboundBytes: 2_000 });
      store.add(stored(1));
      store.manual = true;
      const started = sync.start();
      await settle();
      store.add(stored(2));
      sync.deliver(stored(2)); // held until the backlog is done
      output.onSend = (message) => {
        if (message.msg_id !== '2') return;
        output.other(10_000); // the peer falls far behind
        // A fan-out delivery handled in a promise callback, right after the held writes.
        void Promise.resolve().then(() => {
          store.add(stored(3));
          sync.deliver(stored(3));
        });
      };
      store.manual = false;
      store.respond();
      await started;
      await settle();
      await readUntil(output, () => sync.state === 'live', 20);
      expect(output.ids).toEqual(ids(1, 3));
    });
  });

  describe('resync', () => {
    it('restarts a catch-up in progress from the beginning', async () => {
      const { store, output, sync } = setup({ pageMessages: 2, writeAheadBytes: 1 });
      store.add(...range(1, 5).map((n) => stored(n)));
      const started = watch(sync.start());
      await settle();
      expect(output.ids).toEqual(['1']); // and waits for the peer before the next
      const resynced = watch(sync.resync());
      await readUntil(output, () => started.done && resynced.done);
      expect(output.ids).toEqual(['1', ...ids(1, 5)]);
      expect(store.queries.map((q) => q.after)).toEqual([undefined, undefined, '2', '4']);
      expect(sync.state).toBe('live');
    });

    it('sends everything pending again when live', async () => {
      const { store, output, sync } = setup();
      store.add(stored(1), stored(2));
      await sync.start();
      await sync.resync();
      expect(output.ids).toEqual(['1', '2', '1', '2']);
      expect(sync.state).toBe('live');
    });
  });

  describe('stop', () => {
    it('ends writing while the backlog waits for the peer', async () => {
      const { store, output, sync } = setup({ writeAheadBytes: 1 });
      store.add(...range(1, 5).map((n) => stored(n)));
      const started = watch(sync.start());
      await settle();
      expect(output.ids).toEqual(['1']);
      sync.stop();
      output.read();
      await settle();
      expect(started.done).toBe(true);
      expect(output.ids).toEqual(['1']);
      expect(sync.state).toBe('stopped');
      sync.deliver(stored(6));
      await sync.resync();
      await settle();
      expect(output.ids).toEqual(['1']);
      expect(store.queries).toHaveLength(1);
    });

    it('ends writing while a page is being read, held deliveries included', async () => {
      const { store, output, sync } = setup();
      store.add(stored(1));
      store.manual = true;
      const started = watch(sync.start());
      await settle();
      sync.deliver(stored(2));
      sync.stop();
      store.respond();
      await settle();
      expect(started.done).toBe(true);
      expect(output.sent).toEqual([]);
    });

    it('ends live writing', async () => {
      const { output, sync } = setup();
      await sync.start();
      sync.stop();
      sync.deliver(stored(1));
      expect(output.sent).toEqual([]);
    });
  });

  it('stays usable when pending() fails: warns, goes live, and sends what it held', async () => {
    const { store, output, sync, logger } = setup();
    store.manual = true;
    const started = watch(sync.start());
    await settle();
    sync.deliver(stored(1));
    store.fail(new Error('relay down'));
    await settle();
    expect(started.done).toBe(true);
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('relay down'));
    expect(sync.state).toBe('live');
    expect(output.ids).toEqual(['1']);
    sync.deliver(stored(2));
    expect(output.ids).toEqual(['1', '2']);
  });
});
