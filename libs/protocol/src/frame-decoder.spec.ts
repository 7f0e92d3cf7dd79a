/**
 * Property tests of PROTOCOL.md §2 framing: FrameDecoder is incremental (any chunking gives the
 * same frames), bounded (never more than 4 + maxFrame bytes held) and fails for good on a bad
 * length prefix.
 */
import fc from 'fast-check';

import { DEFAULT_MAX_FRAME } from './constants';
import { ERROR_CODES } from './errors/error-codes';
import { ProtocolError } from './errors/protocol-error';
import { type RawFrame, FrameDecoder, encodeFrame } from './frame-decoder';

const RUNS = { numRuns: 1000 };

/** Characters of 1, 2, 3 and 4 UTF-8 bytes, and two that JSON escapes. */
const textUnit = fc.constantFrom('a', 'Z', '7', ' ', 'é', 'ß', '€', '中', '😀', '"', '\\');

/** A JSON object text of 2..~2000 bytes, mostly in the low hundreds. */
const frameObject: fc.Arbitrary<object> = fc.oneof(
  fc.constant({}),
  fc.record({ type: fc.string({ maxLength: 12 }) }),
  fc.record({
    type: fc.constantFrom('enc', 'client_hello', 'error'),
    pad: fc.string({ unit: textUnit, maxLength: 450 }),
  }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 40 }), {
    maxKeys: 6,
  }),
);

const frameBodies = fc.array(
  frameObject.map((o) => Buffer.from(JSON.stringify(o), 'utf8')),
  { maxLength: 8 },
);

/** How to cut a stream of `total` bytes: byte by byte, or at sorted cut points (repeats give empty chunks). */
type Chunking = { kind: 'bytes' } | { kind: 'cuts'; cuts: number[] };

function chunkingFor(total: number): fc.Arbitrary<Chunking> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant<Chunking>({ kind: 'bytes' }) },
    {
      weight: 4,
      arbitrary: fc
        .array(fc.integer({ min: 0, max: total }), { maxLength: 30 })
        .map((cuts): Chunking => ({ kind: 'cuts', cuts: cuts.sort((a, b) => a - b) })),
    },
  );
}

/**
 * Splits `stream` into views of it (with non-zero byteOffsets, as a socket's chunks have). With
 * `plain`, every other chunk is copied into a plain Uint8Array rather than a Buffer view.
 */
function split(stream: Buffer, chunking: Chunking, plain = false): Uint8Array[] {
  const bounds =
    chunking.kind === 'bytes'
      ? Array.from({ length: stream.length + 1 }, (_, i) => i)
      : [0, ...chunking.cuts, stream.length];
  const chunks: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const view = stream.subarray(bounds[i], bounds[i + 1]);
    chunks.push(plain && i % 2 === 1 ? new Uint8Array(view) : view);
  }
  return chunks;
}

function prefixBytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('FrameDecoder: any split or coalescing of a valid stream', () => {
  it('decodes to the same frames, in order, and ends clean', () => {
    fc.assert(
      fc.property(
        frameBodies.chain((bodies) => {
          const total = bodies.reduce((sum, b) => sum + 4 + b.length, 0);
          return fc.tuple(fc.constant(bodies), chunkingFor(total), fc.boolean());
        }),
        ([bodies, chunking, plain]) => {
          const encoded = bodies.map((body) => encodeFrame(body));
          const stream = Buffer.concat(encoded);
          const decoder = new FrameDecoder();
          const out: RawFrame[] = [];
          let mostBuffered = 0;
          let midFrameAgrees = true;
          for (const chunk of split(stream, chunking, plain)) {
            out.push(...decoder.push(chunk));
            mostBuffered = Math.max(mostBuffered, decoder.bufferedBytes);
            midFrameAgrees &&= decoder.midFrame === decoder.bufferedBytes > 0;
          }
          expect(mostBuffered).toBeLessThanOrEqual(4 + decoder.maxFrame);
          expect(midFrameAgrees).toBe(true);
          expect(out).toHaveLength(bodies.length);
          out.forEach((frame, i) => {
            expect(frame.bytes.equals(encoded[i]!)).toBe(true);
            expect(frame.body.equals(bodies[i]!)).toBe(true);
            expect(JSON.parse(frame.body.toString('utf8'))).toEqual(
              JSON.parse(bodies[i]!.toString('utf8')),
            );
          });
          expect(decoder.bufferedBytes).toBe(0);
          expect(decoder.midFrame).toBe(false);
          expect(() => decoder.end()).not.toThrow();
        },
      ),
      RUNS,
    );
  });

  it('returns frames that do not alias the pushed chunks', () => {
    fc.assert(
      fc.property(frameBodies, fc.nat(), (bodies, seed) => {
        const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
        const decoder = new FrameDecoder();
        const cut = stream.length === 0 ? 0 : seed % stream.length;
        const frames = [
          ...decoder.push(stream.subarray(0, cut)),
          ...decoder.push(stream.subarray(cut)),
        ];
        const copies = frames.map((f) => Buffer.from(f.bytes));
        stream.fill(0xa5);
        frames.forEach((f, i) => expect(f.bytes.equals(copies[i]!)).toBe(true));
      }),
      RUNS,
    );
  });
});

/**
 * A stream of random bytes built mostly from well-formed frames with random bodies, so that
 * frames do complete, mixed with stray bytes and length prefixes of every kind.
 */
function noisyStream(maxFrame: number): fc.Arbitrary<Buffer> {
  const length = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 2, max: maxFrame }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, maxFrame, maxFrame + 1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
  );
  const frame = fc.tuple(length, fc.uint8Array({ maxLength: maxFrame + 8 })).map(([n, bytes]) => {
    const body = Buffer.alloc(Math.min(n, maxFrame + 8));
    body.set(bytes.subarray(0, body.length));
    return Buffer.concat([prefixBytes(n), body]);
  });
  const segment = fc.oneof(
    { weight: 8, arbitrary: frame },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxFrame + 8 }).map((a) => Buffer.from(a)) },
  );
  return fc.array(segment, { maxLength: 10 }).map((parts) => Buffer.concat(parts));
}

interface Model {
  /** Frames the whole stream holds before any bad prefix: [start, end) offsets. */
  frames: Array<{ start: number; end: number }>;
  /** The error, and the stream offset of the prefix byte that completes the bad length. */
  failure?: { code: 'frame_too_large' | 'bad_frame'; at: number };
  /** Bytes after the last frame, when there is no failure. */
  leftover: number;
}

/** A one-shot reference decoder of PROTOCOL.md §2 over a whole stream. */
function referenceDecode(stream: Buffer, maxFrame: number): Model {
  const frames: Model['frames'] = [];
  let pos = 0;
  while (stream.length - pos >= 4) {
    const n = stream.readUInt32BE(pos);
    if (n > maxFrame)
      return { frames, failure: { code: 'frame_too_large', at: pos + 3 }, leftover: 0 };
    if (n < 2) return { frames, failure: { code: 'bad_frame', at: pos + 3 }, leftover: 0 };
    if (stream.length - pos < 4 + n) break;
    frames.push({ start: pos, end: pos + 4 + n });
    pos += 4 + n;
  }
  return { frames, leftover: stream.length - pos };
}

describe('FrameDecoder: arbitrary bytes', () => {
  it('throws only ProtocolError, fails for good, stays bounded and matches a reference', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 300 })
          .chain((maxFrame) =>
            noisyStream(maxFrame).chain((stream) =>
              fc.tuple(fc.constant(maxFrame), fc.constant(stream), chunkingFor(stream.length)),
            ),
          ),
        fc.boolean(),
        ([maxFrame, stream, chunking], plain) => {
          const model = referenceDecode(stream, maxFrame);
          const decoder = new FrameDecoder({ maxFrame });
          const out: RawFrame[] = [];
          let failure: unknown;
          let offset = 0;
          let failedChunkStart = -1;
          let sameFailureAfter = true;
          let mostBuffered = 0;
          let midFrameAgrees = true;
          for (const chunk of split(stream, chunking, plain)) {
            if (failure !== undefined) {
              sameFailureAfter &&= catchError(() => decoder.push(chunk)) === failure;
              continue;
            }
            try {
              out.push(...decoder.push(chunk));
            } catch (error) {
              expect(error).toBeInstanceOf(ProtocolError);
              failure = error;
              failedChunkStart = offset;
              // The failing push is the one holding the byte that completes the bad prefix.
              expect(model.failure).toBeDefined();
              expect((error as ProtocolError).code).toBe(model.failure!.code);
              expect(model.failure!.at).toBeGreaterThanOrEqual(offset);
              expect(model.failure!.at).toBeLessThan(offset + chunk.length);
            }
            mostBuffered = Math.max(mostBuffered, decoder.bufferedBytes);
            midFrameAgrees &&= decoder.midFrame === decoder.bufferedBytes > 0;
            offset += chunk.length;
          }
          expect(sameFailureAfter).toBe(true);
          expect(mostBuffered).toBeLessThanOrEqual(4 + maxFrame);
          expect(midFrameAgrees).toBe(true);

          // Frames out are a prefix of the reference frames, each one exact.
          expect(out.length).toBeLessThanOrEqual(model.frames.length);
          out.forEach((frame, i) => {
            const { start, end } = model.frames[i]!;
            expect(frame.bytes.equals(stream.subarray(start, end))).toBe(true);
            expect(frame.body.equals(stream.subarray(start + 4, end))).toBe(true);
            expect(frame.body.length).toBeGreaterThanOrEqual(2);
            expect(frame.body.length).toBeLessThanOrEqual(maxFrame);
          });

          if (failure !== undefined) {
            // Every frame that ended before the failing push began was returned.
            const before = model.frames.filter((f) => f.end <= failedChunkStart).length;
            expect(out.length).toBeGreaterThanOrEqual(before);
            expect(decoder.bufferedBytes).toBe(0);
            expect(catchError(() => decoder.end())).toBe(failure);
            expect(catchError(() => decoder.push(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d])))).toBe(
              failure,
            );
            return;
          }
          expect(model.failure).toBeUndefined();
          expect(out).toHaveLength(model.frames.length);
          expect(decoder.bufferedBytes).toBe(model.leftover);
          if (model.leftover === 0) {
            expect(() => decoder.end()).not.toThrow();
            return;
          }
          const ended = catchError(() => decoder.end());
          expect(ended).toBeInstanceOf(ProtocolError);
          expect((ended as ProtocolError).code).toBe('bad_frame');
          expect(ERROR_CODES).toContain((ended as ProtocolError).code);
          expect(catchError(() => decoder.push(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d])))).toBe(ended);
          expect(catchError(() => decoder.end())).toBe(ended);
        },
      ),
      RUNS,
    );
  });
});

/** Splits the 4 prefix bytes into 1..4 pushes. */
const prefixSplits = fc.subarray([1, 2, 3]).map((cuts) => [0, ...cuts, 4]);

describe('FrameDecoder: bad length prefixes', () => {
  const maxFrameArb = fc.oneof(
    fc.integer({ min: 2, max: 300 }),
    fc.integer({ min: 2, max: 0x7fff_ffff }),
    fc.constant(DEFAULT_MAX_FRAME),
  );

  /**
   * Pushes some valid frames, then `prefix` in pieces (the last piece possibly with body bytes),
   * and returns what the completing push threw.
   */
  function feedPrefix(
    decoder: FrameDecoder,
    leading: Buffer[],
    prefix: Buffer,
    bounds: number[],
    tail: Buffer,
  ): unknown {
    const frames = leading.length ? decoder.push(Buffer.concat(leading)) : [];
    expect(frames).toHaveLength(leading.length);
    for (let i = 0; i + 2 < bounds.length; i++) {
      expect(decoder.push(prefix.subarray(bounds[i], bounds[i + 1]))).toEqual([]);
      expect(decoder.bufferedBytes).toBe(bounds[i + 1]);
    }
    const last = Buffer.concat([prefix.subarray(bounds[bounds.length - 2]), tail]);
    return catchError(() => decoder.push(last));
  }

  const leadingFrames = fc.array(
    fc.string({ minLength: 0, maxLength: 20 }).map((s) => Buffer.from(JSON.stringify({ s }))),
    { maxLength: 3 },
  );

  it('rejects a length above maxFrame on the push completing the prefix, buffering nothing', () => {
    fc.assert(
      fc.property(
        maxFrameArb.chain((maxFrame) =>
          fc.tuple(
            fc.constant(maxFrame),
            fc.oneof(
              fc.constant(maxFrame + 1),
              fc.integer({ min: maxFrame + 1, max: 0xffff_ffff }),
              fc.constant(0xffff_ffff),
            ),
          ),
        ),
        leadingFrames,
        prefixSplits,
        fc.uint8Array({ maxLength: 16 }),
        ([maxFrame, n], leading, bounds, tail) => {
          const decoder = new FrameDecoder({ maxFrame });
          const usable = maxFrame >= 64 ? leading.map((b) => encodeFrame(b, maxFrame)) : [];
          const error = feedPrefix(decoder, usable, prefixBytes(n), bounds, Buffer.from(tail));
          expect(error).toBeInstanceOf(ProtocolError);
          expect((error as ProtocolError).code).toBe('frame_too_large');
          expect(decoder.bufferedBytes).toBe(0);
          expect(decoder.midFrame).toBe(false);
          expect(catchError(() => decoder.push(Buffer.from([0])))).toBe(error);
          expect(catchError(() => decoder.end())).toBe(error);
        },
      ),
      RUNS,
    );
  });

  it('rejects a length of 0 or 1 as bad_frame on the push completing the prefix', () => {
    fc.assert(
      fc.property(
        maxFrameArb,
        fc.constantFrom(0, 1),
        leadingFrames,
        prefixSplits,
        fc.uint8Array({ maxLength: 16 }),
        (maxFrame, n, leading, bounds, tail) => {
          const decoder = new FrameDecoder({ maxFrame });
          const usable = maxFrame >= 64 ? leading.map((b) => encodeFrame(b, maxFrame)) : [];
          const error = feedPrefix(decoder, usable, prefixBytes(n), bounds, Buffer.from(tail));
          expect(error).toBeInstanceOf(ProtocolError);
          expect((error as ProtocolError).code).toBe('bad_frame');
          expect(decoder.bufferedBytes).toBe(0);
          expect(catchError(() => decoder.end())).toBe(error);
        },
      ),
      RUNS,
    );
  });

  it('accepts lengths 2 and exactly maxFrame', () => {
    for (const maxFrame of [2, 3, 300, DEFAULT_MAX_FRAME]) {
      const decoder = new FrameDecoder({ maxFrame });
      const body = Buffer.alloc(maxFrame, 0x20);
      body[0] = 0x7b;
      body[maxFrame - 1] = 0x7d;
      const frames = decoder.push(
        Buffer.concat([encodeFrame(Buffer.from('{}'), maxFrame), encodeFrame(body, maxFrame)]),
      );
      expect(frames.map((f) => f.body.length)).toEqual([2, maxFrame]);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('reports a stream cut inside a frame as bad_frame at end()', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(Buffer.from([0, 0, 0, 5, 0x7b]))).toEqual([]);
    expect(decoder.midFrame).toBe(true);
    const error = catchError(() => decoder.end());
    expect(error).toMatchObject({ code: 'bad_frame' });
    expect(decoder.bufferedBytes).toBe(0);
    expect(catchError(() => decoder.push(Buffer.from('x')))).toBe(error);
  });
});

describe('encodeFrame and FrameDecoder arguments', () => {
  it('frames bodies of 2..maxFrame bytes with a big-endian u32 prefix', () => {
    expect(encodeFrame(Buffer.from('{}'))).toEqual(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]));
    expect(encodeFrame(Buffer.alloc(DEFAULT_MAX_FRAME)).readUInt32BE(0)).toBe(DEFAULT_MAX_FRAME);
    expect(encodeFrame(Buffer.alloc(300), 300).subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 44]));
    const big = encodeFrame(Buffer.alloc(70_000), 0x7fff_ffff);
    expect(big.subarray(0, 4)).toEqual(Buffer.from([0, 1, 0x11, 0x70]));
    expect(big).toHaveLength(70_004);
    // a plain Uint8Array body works too
    expect(encodeFrame(new Uint8Array([0x7b, 0x7d]), 2)).toEqual(
      Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]),
    );
  });

  it('refuses a body outside 2..maxFrame', () => {
    expect(() => encodeFrame(Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(1))).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(DEFAULT_MAX_FRAME + 1))).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(11), 10)).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(3), 2)).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(2), 2)).not.toThrow();
  });

  it('refuses a maxFrame outside 2..2^31-1 or not an integer', () => {
    for (const maxFrame of [1, 0, -1, 1.5, 2 ** 31, NaN, Infinity]) {
      expect(() => encodeFrame(Buffer.alloc(2), maxFrame)).toThrow(RangeError);
      expect(() => new FrameDecoder({ maxFrame })).toThrow(RangeError);
    }
    expect(new FrameDecoder({ maxFrame: 2 ** 31 - 1 }).maxFrame).toBe(2 ** 31 - 1);
    expect(new FrameDecoder().maxFrame).toBe(DEFAULT_MAX_FRAME);
  });

  it('agrees with the decoder for random sizes and maxFrame', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 4096 })
          .chain((maxFrame) =>
            fc.tuple(fc.constant(maxFrame), fc.integer({ min: 0, max: maxFrame + 2 })),
          ),
        ([maxFrame, size]) => {
          const body = Buffer.alloc(size, 0x61);
          if (size < 2 || size > maxFrame) {
            expect(() => encodeFrame(body, maxFrame)).toThrow(RangeError);
            return;
          }
          const frame = encodeFrame(body, maxFrame);
          expect(frame.readUInt32BE(0)).toBe(size);
          const [decoded, ...rest] = new FrameDecoder({ maxFrame }).push(frame);
          expect(rest).toEqual([]);
          expect(decoded!.bytes.equals(frame)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('refuses a push of something other than bytes', () => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push('abcd' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => decoder.push([0, 0, 0, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(decoder.push(new Uint8Array(0))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });
});
