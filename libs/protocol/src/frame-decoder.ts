/**
 * PROTOCOL.md §2 framing: `u32(N) || N bytes of JSON`. The decoder is incremental (any chunking of
 * the stream gives the same frames) and bounded: it rejects a length above `maxFrame` as soon as
 * the 4 prefix bytes are in, before it buffers a byte of the body (PROTOCOL.md §2, §9).
 */
import { DEFAULT_MAX_FRAME, LENGTH_PREFIX_BYTES, MIN_FRAME } from './constants';
import { ProtocolError } from './errors/protocol-error';

/** One frame as it crossed the wire. */
export interface RawFrame {
  /** Length prefix and body: the bytes PROTOCOL.md §2 says to hash. */
  readonly bytes: Buffer;
  /** The N bytes after the prefix. */
  readonly body: Buffer;
}

export interface FrameDecoderOptions {
  /** Largest N accepted; 65536 unless configured otherwise (PROTOCOL.md §2). */
  readonly maxFrame?: number;
}

function checkMaxFrame(maxFrame: number): number {
  if (!Number.isInteger(maxFrame) || maxFrame < MIN_FRAME || maxFrame > 0x7fff_ffff) {
    throw new RangeError('maxFrame must be an integer in 2..2^31-1');
  }
  return maxFrame;
}

/**
 * Frames a JSON text (PROTOCOL.md §2). Refuses a body outside 2..maxFrame: the peer would reject
 * it.
 */
export function encodeFrame(body: Uint8Array, maxFrame = DEFAULT_MAX_FRAME): Buffer {
  checkMaxFrame(maxFrame);
  if (body.length < MIN_FRAME || body.length > maxFrame) {
    throw new RangeError(`frame body of ${body.length} bytes is outside ${MIN_FRAME}..${maxFrame}`);
  }
  const frame = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, LENGTH_PREFIX_BYTES);
  return frame;
}

export class FrameDecoder {
  #maxFrame: number;
  /** Received bytes not yet returned as frames, in arrival order. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Body length of the frame being received, once its prefix is in. */
  #expected: number | undefined;
  #failure: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#maxFrame = checkMaxFrame(options.maxFrame ?? DEFAULT_MAX_FRAME);
  }

  /** Largest N accepted from the next length prefix on. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  /**
   * Changes the bound for the length prefixes still to come (a server keeps it small until
   * login completes, since no handshake frame is large: PROTOCOL.md §9 "bound what a connection may
   * hold"). A frame whose prefix is already in keeps the bound it was checked against.
   */
  set maxFrame(value: number) {
    this.#maxFrame = checkMaxFrame(value);
  }

  /**
   * Bytes appended and not yet taken as frames. With `push` this is never more than
   * `4 + maxFrame`; with `append` the caller bounds it.
   */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * True while part of a frame has arrived and the rest has not (for stall timeouts, PROTOCOL.md
   * §9). With `append`/`next`, true also while complete frames wait to be taken: ask after `next`
   * said undefined.
   */
  get midFrame(): boolean {
    return this.#buffered > 0;
  }

  /**
   * Feeds bytes in; returns the frames they complete, in order. Throws ProtocolError
   * (`frame_too_large` or `bad_frame`) on a bad length prefix, and again on every later call.
   * Returned frames are copies; bytes of an incomplete frame are kept by reference until they
   * complete, so do not reuse `chunk`'s memory (node's sockets never do).
   */
  push(chunk: Uint8Array): RawFrame[] {
    this.append(chunk);
    const frames: RawFrame[] = [];
    for (let frame = this.next(); frame; frame = this.next()) frames.push(frame);
    return frames;
  }

  /**
   * Buffers bytes without cutting frames out of them: with `next`, a reader takes frames only
   * as fast as it handles them, so a chunk of many small frames costs its bytes and no more
   * (PROTOCOL.md §9: bound what one connection may hold).
   */
  append(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (!(chunk instanceof Uint8Array)) throw new TypeError('append: expected bytes');
    if (chunk.length === 0) return;
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.length;
  }

  /**
   * The next complete frame of the bytes appended so far, or undefined until more arrive.
   * Throws ProtocolError on a bad length prefix (PROTOCOL.md §2), as `push` does.
   */
  next(): RawFrame | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#expected === undefined) {
      if (this.#buffered < LENGTH_PREFIX_BYTES) return undefined;
      this.#expected = this.#readLength();
    }
    const total = LENGTH_PREFIX_BYTES + this.#expected;
    if (this.#buffered < total) return undefined;
    const bytes = this.#take(total);
    this.#expected = undefined;
    return { bytes, body: bytes.subarray(LENGTH_PREFIX_BYTES) };
  }

  /** Call at end of stream: a frame cut short is `bad_frame`. */
  end(): void {
    if (this.#failure) throw this.#failure;
    if (this.#buffered > 0)
      this.#fail(new ProtocolError('bad_frame', 'stream ended inside a frame'));
  }

  #readLength(): number {
    const head = this.#peek(LENGTH_PREFIX_BYTES);
    const length = head.readUInt32BE(0);
    if (length > this.#maxFrame) {
      this.#fail(new ProtocolError('frame_too_large', `frame length exceeds ${this.#maxFrame}`));
    }
    if (length < MIN_FRAME) {
      this.#fail(new ProtocolError('bad_frame', `frame length below ${MIN_FRAME}`));
    }
    return length;
  }

  #fail(error: ProtocolError): never {
    this.#failure = error;
    this.#chunks = [];
    this.#buffered = 0;
    throw error;
  }

  /** The first `n` buffered bytes, without consuming them. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const parts: Buffer[] = [];
    let have = 0;
    for (const chunk of this.#chunks) {
      parts.push(chunk);
      have += chunk.length;
      if (have >= n) break;
    }
    return Buffer.concat(parts, have).subarray(0, n);
  }

  /** Removes and returns the first `n` buffered bytes as one buffer of their own. */
  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.#chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        this.#chunks[0] = chunk.subarray(want);
        filled += want;
      }
    }
    this.#buffered -= n;
    // Emptied: let go of the array's backing store too (shift keeps it), since a server's
    // decoders sit empty between the records of mostly idle sessions.
    if (this.#chunks.length === 0) this.#chunks.length = 0;
    return out;
  }
}
