/**
 * FramedSocket over a fake byte stream (test/fake-byte-stream.ts) whose "kernel" takes written
 * bytes only when the test says so, with jest's fake timers (and clock) for the stall, linger
 * and corking timings. Nothing here depends on real time.
 */
import {
  encodeFrame,
  FrameDecoder,
  ProtocolError,
  type RawFrame,
  serializeJson,
} from '@securechat/protocol';
import fc from 'fast-check';

import { FakeByteStream } from '../test/fake-byte-stream';
import {
  CORK_FLUSH_BYTES,
  FramedSocket,
  type FramedSocketEvents,
  type FramedSocketLimits,
  OUTPUT_LOW_WATER_BYTES,
} from './framed-socket';

/** The most one read carries (framed-socket.ts READ_CHUNK_BYTES): reading pauses this far below. */
const READ_CHUNK_BYTES = 64 * 1024;

const LIMITS: FramedSocketLimits = {
  maxFrame: 1024,
  maxInboundFrames: 8,
  maxInboundBytes: READ_CHUNK_BYTES + 4 + 1024 + 4096,
  writeStallTimeoutMs: 1_000,
  frameStallTimeoutMs: 3_000,
  idleTimeoutMs: 60_000,
};
/** Input held at which reading pauses. */
const PAUSE_AT_BYTES = LIMITS.maxInboundBytes - READ_CHUNK_BYTES;

const frameOf = (value: object): Buffer => encodeFrame(serializeJson(value));
/** `00000002 7b7d`: the smallest frame PROTOCOL.md §2 allows. */
const MIN_FRAME_BYTES = frameOf({});
/** A frame whose body is exactly `bodyBytes` long. */
function frameWithBody(bodyBytes: number, tag = 0): Buffer {
  const base = serializeJson({ t: tag, p: '' }).length;
  return frameOf({ t: tag, p: 'x'.repeat(bodyBytes - base) });
}
const prefix = (length: number): Buffer => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(length, 0);
  return bytes;
};

type Events = {
  [K in keyof FramedSocketEvents]: jest.Mock<void, Parameters<FramedSocketEvents[K]>>;
};

function setup(overrides: Partial<FramedSocketLimits> = {}, on: Partial<FramedSocketEvents> = {}) {
  const stream = new FakeByteStream();
  const limits = { ...LIMITS, ...overrides };
  const framed = new FramedSocket(stream, limits, () => Date.now());
  const events: Events = {
    readable: jest.fn(on.readable),
    framingError: jest.fn(on.framingError),
    ended: jest.fn(on.ended),
    closed: jest.fn(on.closed),
  };
  framed.start(events);
  return { stream, framed, events, limits };
}

function takeAll(framed: FramedSocket): RawFrame[] {
  const frames: RawFrame[] = [];
  for (let frame = framed.next(); frame; frame = framed.next()) frames.push(frame);
  return frames;
}

const tagsOf = (frames: readonly RawFrame[]): unknown[] =>
  frames.map((f) => (JSON.parse(f.body.toString('utf8')) as { t: unknown }).t);

/** Runs the corking ticks and lets promise callbacks run (fake timers fake nextTick too). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    jest.runAllTicks();
    await Promise.resolve();
  }
}

describe('FramedSocket', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_700_000_000_000 });
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  describe('construction', () => {
    it.each([
      ['maxFrame', 0],
      ['maxInboundFrames', 1.5],
      ['writeStallTimeoutMs', -1],
      ['idleTimeoutMs', Number.NaN],
    ])('refuses %s = %p', (name, value) => {
      expect(
        () => new FramedSocket(new FakeByteStream(), { ...LIMITS, [name]: value }, Date.now),
      ).toThrow(RangeError);
    });

    it('refuses an inbound bound that cannot hold a read and a whole frame', () => {
      const tooSmall = { ...LIMITS, maxInboundBytes: READ_CHUNK_BYTES + 4 + LIMITS.maxFrame - 1 };
      expect(() => new FramedSocket(new FakeByteStream(), tooSmall, Date.now)).toThrow(RangeError);
      const justEnough = { ...tooSmall, maxInboundBytes: tooSmall.maxInboundBytes + 1 };
      expect(() => new FramedSocket(new FakeByteStream(), justEnough, Date.now)).not.toThrow();
    });

    it('starts once, and arms the idle timeout', () => {
      const { framed, stream } = setup();
      expect(stream.idleTimeoutMs).toBe(LIMITS.idleTimeoutMs);
      expect(() => framed.start({} as FramedSocketEvents)).toThrow('already started');
    });
  });

  describe('input', () => {
    it('hands out frames in order whatever the chunking (property)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 16, max: LIMITS.maxFrame }), { minLength: 1, maxLength: 30 }),
          fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 40 }),
          fc.integer({ min: 1, max: 8 }),
          fc.boolean(),
          (bodySizes, cuts, maxInboundFrames, eager) => {
            const taken: RawFrame[] = [];
            const { stream, framed, events } = setup(
              { maxInboundFrames },
              { readable: () => eager && taken.push(...takeAll(framed)) },
            );
            const bytes = Buffer.concat(bodySizes.map((size, i) => frameWithBody(size, i)));
            let at = 0;
            for (let i = 0; at < bytes.length; i++) {
              const end = Math.min(bytes.length, at + cuts[i % cuts.length]!);
              stream.push(bytes.subarray(at, end));
              at = end;
            }
            taken.push(...takeAll(framed));
            expect(tagsOf(taken)).toEqual(bodySizes.map((_, i) => i));
            expect(Buffer.concat(taken.map((f) => f.bytes)).equals(bytes)).toBe(true);
            expect(framed.inboundBytes).toBe(0);
            expect(stream.paused).toBe(false);
            expect(events.closed).not.toHaveBeenCalled();
            expect(events.framingError).not.toHaveBeenCalled();
          },
        ),
        { numRuns: 200 },
      );
    });

    it('announces frames once per data event, never from inside next()', () => {
      let depth = 0;
      let maxDepth = 0;
      const taken: RawFrame[] = [];
      const { stream, framed, events } = setup(
        {},
        {
          readable: () => {
            depth += 1;
            maxDepth = Math.max(maxDepth, depth);
            // Frames past maxInboundFrames are cut by next() itself, without a nested readable.
            taken.push(...takeAll(framed));
            depth -= 1;
          },
        },
      );
      const count = 3 * LIMITS.maxInboundFrames + 1;
      stream.push(Buffer.concat(Array.from({ length: count }, (_, i) => frameWithBody(20, i))));
      expect(events.readable).toHaveBeenCalledTimes(1);
      expect(maxDepth).toBe(1);
      expect(tagsOf(taken)).toEqual(Array.from({ length: count }, (_, i) => i));
    });

    it('does not announce a data event that completes no frame', () => {
      const { stream, framed, events } = setup();
      const frame = frameWithBody(100);
      stream.push(frame.subarray(0, 50));
      expect(events.readable).not.toHaveBeenCalled();
      expect(framed.hasFrame).toBe(false);
      stream.push(frame.subarray(50));
      expect(events.readable).toHaveBeenCalledTimes(1);
      expect(framed.next()?.bytes.equals(frame)).toBe(true);
    });

    it.each([
      ['small chunks', 200],
      ['full 64 KiB reads', Math.floor(READ_CHUNK_BYTES / MIN_FRAME_BYTES.length)],
    ])(
      'closes a peer flooding minimum frames nobody takes (%s), holding no more than the bound and a chunk',
      (_, framesPerChunk) => {
        expect(MIN_FRAME_BYTES.toString('hex')).toBe('000000027b7d');
        const cut = jest.spyOn(FrameDecoder.prototype, 'next');
        const { stream, framed, events, limits } = setup();
        const chunk = Buffer.concat(Array.from({ length: framesPerChunk }, () => MIN_FRAME_BYTES));
        let chunks = 0;
        let heldBeforeClose = 0;
        while (!framed.closed && chunks < 10_000) {
          stream.push(chunk);
          chunks += 1;
          expect(framed.inboundBytes).toBeLessThanOrEqual(limits.maxInboundBytes + chunk.length);
          if (!framed.closed) {
            heldBeforeClose = framed.inboundBytes;
            expect(heldBeforeClose).toBeLessThanOrEqual(limits.maxInboundBytes);
            // The frame bound was reached with the first chunk: the peer was asked to stop.
            expect(stream.paused).toBe(true);
          }
        }
        expect(framed.closed).toBe(true);
        expect(chunks).toBe(Math.floor(limits.maxInboundBytes / chunk.length) + 1);
        expect(heldBeforeClose).toBe((chunks - 1) * chunk.length);
        expect(events.closed).toHaveBeenCalledTimes(1);
        expect(events.closed).toHaveBeenCalledWith(expect.stringMatching(/^inbound limit/), true);
        expect(stream.destroyed).toBe(true);
        // Thousands of frames arrived; only maxInboundFrames were ever cut out of the bytes.
        const framesCut = cut.mock.results.filter(
          (r) => r.type === 'return' && r.value !== undefined,
        ).length;
        expect(framesCut).toBe(limits.maxInboundFrames);
        expect(events.readable).toHaveBeenCalledTimes(1);
        expect(framed.hasFrame).toBe(false);
        // Nothing more is taken in once closed.
        const held = framed.inboundBytes;
        stream.push(chunk);
        expect(framed.inboundBytes).toBe(held);
        expect(events.closed).toHaveBeenCalledTimes(1);
      },
    );

    it('never closes a flooding peer that honours the pause, while frames are taken', () => {
      const { stream, framed, events } = setup();
      const chunk = Buffer.concat(Array.from({ length: 1000 }, () => MIN_FRAME_BYTES));
      let taken = 0;
      for (let round = 0; round < 200; round++) {
        if (!stream.paused) stream.push(chunk);
        // The reader takes a few frames per round.
        for (let i = 0; i < 50 && framed.next(); i++) taken += 1;
        expect(framed.inboundBytes).toBeLessThanOrEqual(PAUSE_AT_BYTES + chunk.length);
      }
      expect(events.closed).not.toHaveBeenCalled();
      expect(taken).toBe(200 * 50);
    });

    it('pauses reading when maxInboundFrames wait, and resumes once they are taken', () => {
      const { stream, framed, limits } = setup();
      const max = limits.maxInboundFrames;
      stream.push(Buffer.concat(Array.from({ length: max - 1 }, (_, i) => frameWithBody(20, i))));
      expect(stream.paused).toBe(false);
      // Twice the bound: the bound waits as frames, the rest as bytes.
      stream.push(Buffer.concat(Array.from({ length: max + 1 }, (_, i) => frameWithBody(20, i))));
      expect(stream.paused).toBe(true);
      // Each frame taken lets one more be cut from the bytes: the bound holds until fewer remain.
      for (let remaining = 2 * max - 1; remaining >= 0; remaining--) {
        expect(framed.next()).toBeDefined();
        expect(stream.paused).toBe(remaining >= max);
      }
      expect(framed.next()).toBeUndefined();
    });

    it('pauses reading when the bytes held near the bound, below the frame count bound', () => {
      const { stream, framed } = setup();
      const frame = frameWithBody(LIMITS.maxFrame);
      const toPause = Math.ceil(PAUSE_AT_BYTES / frame.length);
      expect(toPause).toBeLessThan(LIMITS.maxInboundFrames);
      for (let i = 0; i < toPause - 1; i++) stream.push(frame);
      expect(stream.paused).toBe(false);
      stream.push(frame);
      expect(stream.paused).toBe(true);
      framed.next();
      expect(stream.paused).toBe(false);
    });

    it('keeps reading paused for the owner whatever the input does', () => {
      const { stream, framed } = setup();
      framed.pauseReading();
      expect(stream.paused).toBe(true);
      stream.push(frameWithBody(20));
      expect(stream.paused).toBe(true);
      takeAll(framed);
      expect(stream.paused).toBe(true);
      framed.resumeReading();
      expect(stream.paused).toBe(false);
      // The inbound reason still holds after the owner's is gone.
      stream.push(
        Buffer.concat(Array.from({ length: LIMITS.maxInboundFrames }, () => MIN_FRAME_BYTES)),
      );
      framed.pauseReading();
      framed.resumeReading();
      expect(stream.paused).toBe(true);
      framed.next();
      expect(stream.paused).toBe(false);
    });

    it('reports a length above maxFrame as frame_too_large as soon as the prefix is in', () => {
      const { stream, framed, events } = setup();
      stream.push(frameWithBody(20, 1));
      stream.push(prefix(LIMITS.maxFrame + 1));
      expect(events.framingError).toHaveBeenCalledTimes(1);
      const error = events.framingError.mock.calls[0]![0];
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error.code).toBe('frame_too_large');
      expect(stream.paused).toBe(true);
      // The body of the refused frame is not buffered.
      expect(framed.inboundBytes).toBe(frameWithBody(20, 1).length);
      expect(events.closed).not.toHaveBeenCalled();
    });

    it('reports a length below 2 as bad_frame', () => {
      const { stream, events } = setup();
      stream.push(Buffer.concat([prefix(1), Buffer.from('{')]));
      expect(events.framingError).toHaveBeenCalledTimes(1);
      expect(events.framingError.mock.calls[0]![0].code).toBe('bad_frame');
    });

    it('applies a lowered maxFrame to the frames whose prefix comes later', () => {
      const { stream, framed, events } = setup();
      // A frame whose prefix is already in keeps the bound it was checked against.
      const started = frameWithBody(500, 1);
      stream.push(started.subarray(0, 10));
      framed.maxFrame = 100;
      stream.push(started.subarray(10));
      expect(tagsOf(takeAll(framed))).toEqual([1]);
      stream.push(frameWithBody(100, 2));
      expect(tagsOf(takeAll(framed))).toEqual([2]);
      expect(events.framingError).not.toHaveBeenCalled();
      stream.push(frameWithBody(101, 3));
      expect(events.framingError).toHaveBeenCalledTimes(1);
      expect(events.framingError.mock.calls[0]![0].code).toBe('frame_too_large');
      expect(framed.hasFrame).toBe(false);
    });

    it('refuses a maxFrame above the configured one', () => {
      const { framed } = setup();
      expect(() => {
        framed.maxFrame = LIMITS.maxFrame + 1;
      }).toThrow(RangeError);
      expect(() => {
        framed.maxFrame = LIMITS.maxFrame;
      }).not.toThrow();
    });

    it('reports the half-close, and the frames sent before it are still there', () => {
      const { stream, framed, events } = setup();
      stream.push(frameWithBody(20, 7));
      stream.emit('end');
      expect(events.ended).toHaveBeenCalledTimes(1);
      expect(framed.inputEnded).toBe(true);
      expect(tagsOf(takeAll(framed))).toEqual([7]);
      expect(events.closed).not.toHaveBeenCalled();
    });
  });

  describe('mid-frame stall', () => {
    it('drops a peer that leaves a frame unfinished for frameStallTimeoutMs', () => {
      const { stream, events } = setup();
      stream.push(frameWithBody(100).subarray(0, 30));
      jest.advanceTimersByTime(LIMITS.frameStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledWith('stalled mid-frame', true);
      expect(stream.destroyed).toBe(true);
    });

    it('drops a peer that sends only part of a length prefix', () => {
      const { stream, events } = setup();
      stream.push(Buffer.from([0, 0]));
      jest.advanceTimersByTime(LIMITS.frameStallTimeoutMs);
      expect(events.closed).toHaveBeenCalledWith('stalled mid-frame', true);
    });

    it('forgets the stall once the frame completes', () => {
      const { stream, framed, events } = setup();
      const frame = frameWithBody(100);
      stream.push(frame.subarray(0, 30));
      jest.advanceTimersByTime(LIMITS.frameStallTimeoutMs - 1);
      stream.push(frame.subarray(30));
      takeAll(framed);
      jest.advanceTimersByTime(10 * LIMITS.frameStallTimeoutMs);
      expect(events.closed).not.toHaveBeenCalled();
    });

    it('does not count complete frames waiting to be taken as a stall', () => {
      const { stream, framed, events } = setup();
      const partial = frameWithBody(100, 9).subarray(0, 40);
      // More whole frames than may be cut, then the start of another: all of it waits on us.
      const whole = Array.from({ length: 2 * LIMITS.maxInboundFrames }, (_, i) =>
        frameWithBody(20, i),
      );
      stream.push(Buffer.concat([...whole, partial]));
      jest.advanceTimersByTime(10 * LIMITS.frameStallTimeoutMs);
      expect(events.closed).not.toHaveBeenCalled();
      // Once we took them, the unfinished one is the peer's: its clock starts now.
      expect(takeAll(framed)).toHaveLength(whole.length);
      jest.advanceTimersByTime(LIMITS.frameStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledWith('stalled mid-frame', true);
    });

    it('does not time out a connection with nothing half-sent', () => {
      const { stream, framed, events } = setup();
      stream.push(frameWithBody(100));
      takeAll(framed);
      jest.advanceTimersByTime(100 * LIMITS.frameStallTimeoutMs);
      expect(events.closed).not.toHaveBeenCalled();
    });
  });

  describe('output', () => {
    it('corks the writes of one turn into one flush', async () => {
      const { stream, framed } = setup();
      const records = [frameOf({ a: 1 }), frameOf({ b: 2 }), frameOf({ c: 3 })];
      for (const record of records) framed.write(record);
      expect(stream.corked).toBe(true);
      expect(stream.acceptable).toBe(0);
      expect(framed.outboundBytes).toBe(Buffer.concat(records).length);
      await flush();
      expect(stream.corked).toBe(false);
      expect(stream.uncorkCalls).toBe(1);
      stream.accept();
      expect(stream.receivedBytes.equals(Buffer.concat(records))).toBe(true);
      expect(framed.outboundBytes).toBe(0);
    });

    it('hands corked bytes to the kernel at CORK_FLUSH_BYTES without waiting for the turn to end', () => {
      const { stream, framed } = setup();
      framed.write(Buffer.alloc(CORK_FLUSH_BYTES - 1));
      expect(stream.corked).toBe(true);
      framed.write(Buffer.alloc(1));
      expect(stream.corked).toBe(false);
      expect(stream.acceptable).toBe(CORK_FLUSH_BYTES);
    });

    it('drops a reader that takes nothing for writeStallTimeoutMs while bytes wait', async () => {
      const { stream, framed, events } = setup();
      framed.write(frameOf({ hello: 'world' }));
      await flush();
      jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledTimes(1);
      expect(events.closed).toHaveBeenCalledWith(expect.stringMatching(/^slow reader/), true);
      expect(stream.destroyed).toBe(true);
    });

    it('holds no stall timer while nothing waits, and arms one again for the next write', async () => {
      const { stream, framed, events } = setup();
      framed.write(frameOf({ hello: 'world' }));
      await flush();
      expect(jest.getTimerCount()).toBe(1); // bytes wait: the stall is watched
      stream.accept();
      await flush();
      // An idle connection keeps no timer of its own (the idle timeout is the socket's).
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(10 * LIMITS.writeStallTimeoutMs);
      framed.write(frameOf({ again: true }));
      await flush();
      jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledWith(expect.stringMatching(/^slow reader/), true);
    });

    it('measures the stall from the last bytes taken, not from the first write', async () => {
      const { stream, framed, events } = setup();
      const record = Buffer.alloc(100, 1);
      framed.write(record);
      framed.write(record);
      await flush();
      jest.advanceTimersByTime(600);
      stream.accept(record.length);
      jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledWith(expect.stringMatching(/^slow reader/), true);
    });

    it('measures the wait of output written after an idle spell from when it was written', async () => {
      const { stream, framed, events } = setup();
      const record = Buffer.alloc(100, 1);
      framed.write(record);
      await flush();
      jest.advanceTimersByTime(100);
      stream.accept(); // all taken: nothing waits
      jest.advanceTimersByTime(800);
      framed.write(record); // waits from now on, not from the last bytes taken
      await flush();
      jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs - 1);
      expect(events.closed).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(events.closed).toHaveBeenCalledWith(expect.stringMatching(/^slow reader/), true);
    });

    it('never drops a reader that takes bytes every half stall timeout, however much is queued', async () => {
      const { stream, framed, events } = setup();
      const record = Buffer.alloc(1024, 7);
      const queued = 4096; // 4 MiB waiting, far past anything a count of bytes would allow
      for (let i = 0; i < queued; i++) framed.write(record);
      await flush();
      expect(framed.outboundBytes).toBe(queued * record.length);
      let rounds = 0;
      while (stream.writableLength > 0) {
        jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs / 2);
        expect(stream.accept(record.length)).toBeGreaterThan(0);
        // It keeps being written to meanwhile.
        if (rounds++ < 500) framed.write(Buffer.alloc(512, 8));
        await flush();
      }
      expect(events.closed).not.toHaveBeenCalled();
      expect(stream.receivedBytes.length).toBe(queued * record.length + 500 * 512);
      // Idle output is no stall either.
      jest.advanceTimersByTime(100 * LIMITS.writeStallTimeoutMs);
      expect(events.closed).not.toHaveBeenCalled();
    });

    it('resolves drained() once no more than OUTPUT_LOW_WATER_BYTES wait', async () => {
      const { stream, framed } = setup();
      await expect(framed.drained()).resolves.toBeUndefined();
      const record = Buffer.alloc(1024);
      for (let i = 0; i < 40; i++) framed.write(record);
      await flush();
      let resolved = false;
      void framed.drained().then(() => {
        resolved = true;
      });
      await flush();
      expect(resolved).toBe(false);
      stream.accept(40 * 1024 - OUTPUT_LOW_WATER_BYTES - 1024);
      await flush();
      expect(resolved).toBe(false);
      stream.accept(1024);
      await flush();
      expect(framed.outboundBytes).toBe(OUTPUT_LOW_WATER_BYTES);
      expect(resolved).toBe(true);
    });

    it('resolves drained() when the connection closes with bytes still waiting', async () => {
      const { framed } = setup();
      framed.write(Buffer.alloc(4 * OUTPUT_LOW_WATER_BYTES));
      let resolved = false;
      void framed.drained().then(() => {
        resolved = true;
      });
      await flush();
      expect(resolved).toBe(false);
      framed.close('bye');
      await flush();
      expect(resolved).toBe(true);
      await expect(framed.drained()).resolves.toBeUndefined();
    });
  });

  describe('closing', () => {
    it('drops a connection idle for idleTimeoutMs', () => {
      const { stream, events } = setup();
      stream.fireIdle();
      expect(events.closed).toHaveBeenCalledWith('idle timeout', true);
      expect(stream.destroyed).toBe(true);
      expect(stream.idleTimeoutMs).toBe(0); // disarmed
    });

    it('closes once: later closes, peer events and timers report nothing more', async () => {
      const { stream, framed, events } = setup();
      framed.write(frameOf({ last: true }));
      framed.close('bye');
      framed.close('again');
      framed.close('destroyed', true);
      expect(events.closed).toHaveBeenCalledTimes(1);
      expect(events.closed).toHaveBeenCalledWith('bye', false);
      expect(framed.closed).toBe(true);
      // A graceful close lets the last bytes go: end, not destroy, and the cork is released.
      expect(stream.endCalls).toBe(1);
      expect(stream.destroyCalls).toBe(0);
      expect(stream.corked).toBe(false);
      expect(stream.acceptable).toBeGreaterThan(0);
      // Nothing more is written, read or timed out.
      framed.write(frameOf({ late: true }));
      expect(stream.written).toHaveLength(1);
      stream.push(frameWithBody(20));
      expect(framed.hasFrame).toBe(false);
      expect(events.readable).not.toHaveBeenCalled();
      stream.emit('end');
      expect(events.ended).not.toHaveBeenCalled();
      stream.emit('error', new Error('late'));
      jest.advanceTimersByTime(LIMITS.writeStallTimeoutMs * 10);
      await flush();
      expect(events.closed).toHaveBeenCalledTimes(1);
    });

    it('destroys a closed socket whose peer does not take its last bytes within the linger time', async () => {
      const { stream, framed, events } = setup();
      framed.write(frameOf({ last: true }));
      framed.close('bye');
      jest.advanceTimersByTime(4_999);
      expect(stream.destroyed).toBe(false);
      jest.advanceTimersByTime(1);
      expect(stream.destroyed).toBe(true);
      await flush(); // the stream's own `close` follows
      expect(events.closed).toHaveBeenCalledTimes(1);
    });

    it('destroys at once on close(reason, true), and says it was not a drop', () => {
      const { stream, framed, events } = setup();
      framed.close('shutting down', true);
      expect(stream.destroyed).toBe(true);
      expect(events.closed).toHaveBeenCalledWith('shutting down', false);
    });

    it('reports the peer leaving and socket errors as closes that are not drops', () => {
      const first = setup();
      first.stream.emit('close');
      expect(first.events.closed).toHaveBeenCalledWith('socket closed', false);
      expect(first.framed.closed).toBe(true);

      const second = setup();
      second.stream.emit('error', new Error('ECONNRESET'));
      second.stream.emit('close');
      expect(second.events.closed).toHaveBeenCalledTimes(1);
      expect(second.events.closed).toHaveBeenCalledWith('socket error: ECONNRESET', false);
    });

    it('forgets waiting frames when closed', () => {
      const { stream, framed } = setup();
      stream.push(Buffer.concat([frameWithBody(20), frameWithBody(20)]));
      expect(framed.hasFrame).toBe(true);
      framed.close('bye');
      expect(framed.next()).toBeUndefined();
    });
  });
});
