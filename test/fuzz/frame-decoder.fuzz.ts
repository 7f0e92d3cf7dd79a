/**
 * Target `frame-decoder`: libs/protocol's FrameDecoder (PROTOCOL.md §2 framing) fed any byte
 * stream, in any chunking, through both of its interfaces.
 *
 * Input: `config | chunking | stream`.
 * - config bits 0–2 pick max_frame (2, 3, 16, 255, 1024, 24 KiB, 64 KiB, 2^31-1), bit 3 the
 *   interface (`push`, or `append` + `next` one frame at a time), bit 4 a change of max_frame
 *   halfway through the stream (the server tightens it before login, PROTOCOL.md §9);
 * - chunking: how the stream is cut into chunks (see harness `chunk`).
 *
 * Invariants: only ProtocolError `bad_frame`/`frame_too_large`, and the same error again on
 * every later call; frames are `u32(N) || N bytes` with 2 ≤ N ≤ the bound checked at their
 * prefix, back to back from the start of the stream; the decoder never holds a whole frame
 * it could have returned (so at most 4 + max_frame bytes, PROTOCOL.md §9); `end()` fails exactly
 * when a frame was cut short; and the frames, or the error, do not depend on the chunking (the same
 * stream decoded in one piece gives the same result).
 */
import { FrameDecoder, MIN_FRAME, ProtocolError, type RawFrame } from '@securechat/protocol';

import { chunk, expectTyped, fuzzEntry, type FuzzTarget, InputReader, invariant } from './harness';

const MAX_FRAMES = [2, 3, 16, 255, 1024, 24 * 1024, 65536, 0x7fff_ffff];

interface Outcome {
  readonly frames: RawFrame[];
  readonly error?: ProtocolError;
}

function decode(
  stream: Buffer,
  chunks: readonly Buffer[],
  options: { maxFrame: number; laterMaxFrame?: number; oneByOne: boolean },
): Outcome {
  const decoder = new FrameDecoder({ maxFrame: options.maxFrame });
  const frames: RawFrame[] = [];
  let appended = 0;
  let consumed = 0;
  // The bound each frame's prefix was checked against: the largest in force so far.
  let bound = options.maxFrame;
  const take = (frame: RawFrame): void => {
    const n = frame.bytes.readUInt32BE(0);
    invariant(frame.bytes.length === n + 4, 'frame bytes are not prefix + body');
    invariant(
      frame.body.equals(frame.bytes.subarray(4)),
      'frame body is not the bytes after the prefix',
    );
    invariant(n >= MIN_FRAME && n <= bound, `frame of ${n} bytes outside ${MIN_FRAME}..${bound}`);
    invariant(
      frame.bytes.equals(stream.subarray(consumed, consumed + frame.bytes.length)),
      'frame is not the next bytes of the stream',
    );
    consumed += frame.bytes.length;
    frames.push(frame);
  };
  const fail = (error: unknown): Outcome => {
    const failure = expectTyped<ProtocolError>(error, [ProtocolError], 'FrameDecoder');
    invariant(
      failure.code === 'bad_frame' || failure.code === 'frame_too_large',
      `FrameDecoder failed with ${failure.code}`,
    );
    invariant(decoder.bufferedBytes === 0, 'a failed decoder still holds bytes');
    for (const again of [
      () => decoder.next(),
      () => decoder.append(Buffer.from([0])),
      () => decoder.end(),
    ]) {
      let repeated: unknown;
      try {
        again();
      } catch (error) {
        repeated = error;
      }
      invariant(repeated === failure, 'a failed decoder did not throw the same error again');
    }
    return { frames, error: failure };
  };

  for (const [index, piece] of chunks.entries()) {
    if (options.laterMaxFrame !== undefined && index === chunks.length >> 1) {
      decoder.maxFrame = options.laterMaxFrame;
      bound = Math.max(bound, options.laterMaxFrame);
    }
    try {
      if (options.oneByOne) {
        decoder.append(piece);
        appended += piece.length;
        for (let frame = decoder.next(); frame; frame = decoder.next()) take(frame);
      } else {
        const before = frames.length;
        const out = decoder.push(piece);
        appended += piece.length;
        for (const frame of out) take(frame);
        invariant(frames.length - before === out.length, 'push lost frames');
      }
    } catch (error) {
      if (error instanceof ProtocolError) return fail(error);
      throw error;
    }
    invariant(
      decoder.bufferedBytes === appended - consumed,
      `decoder holds ${decoder.bufferedBytes} bytes, ${appended - consumed} expected`,
    );
    invariant(
      decoder.midFrame === decoder.bufferedBytes > 0,
      'midFrame disagrees with bufferedBytes',
    );
    // Every complete frame was taken: what is left is less than one frame (PROTOCOL.md §9 memory
    // bound).
    invariant(
      decoder.bufferedBytes < 4 + bound,
      `decoder holds ${decoder.bufferedBytes} bytes with max_frame ${bound}`,
    );
  }
  try {
    decoder.end();
    invariant(decoder.bufferedBytes === 0, 'end() accepted a frame cut short');
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    invariant(appended > consumed, 'end() failed on a stream that ended between frames');
    return fail(error);
  }
  return { frames };
}

export const target: FuzzTarget = {
  name: 'frame-decoder',
  run(data: Buffer): Promise<void> {
    const input = new InputReader(data);
    const config = input.byte();
    const chunking = input.byte();
    const stream = input.rest();
    const maxFrame = MAX_FRAMES[config & 7]!;
    const laterMaxFrame = config & 16 ? MAX_FRAMES[(config >> 5) & 7]! : undefined;
    const oneByOne = (config & 8) !== 0;
    const chunked = decode(stream, chunk(stream, chunking), { maxFrame, laterMaxFrame, oneByOne });
    if (laterMaxFrame === undefined) {
      // Differential: any chunking, either interface, gives the same frames or the same error.
      // (Not the same frames before an error: `push` drops those it cut from the chunk that
      // held the bad prefix, by design; see docs/FUZZING.md.)
      const whole = decode(stream, [stream], { maxFrame, oneByOne: !oneByOne });
      invariant(whole.error?.code === chunked.error?.code, 'chunking changed the error');
      if (!whole.error) {
        invariant(whole.frames.length === chunked.frames.length, 'chunking changed the frames');
      }
    }
    return Promise.resolve();
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
