import { FrameDecoder, ProtocolError, type RawFrame } from '@securechat/protocol';

/**
 * What FramedSocket needs of a byte stream. node's `net.Socket` has all of it; the unit specs
 * use a fake that shows what was written and when the kernel "took" it. Listeners are called
 * with the stream as `this`, as every EventEmitter does (FramedSocket's are shared by all
 * streams).
 */
export interface ByteStream {
  readonly writableLength: number;
  readonly destroyed: boolean;
  on(event: 'data', listener: (this: ByteStream, chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close' | 'drain', listener: (this: ByteStream) => void): unknown;
  on(event: 'error', listener: (this: ByteStream, error: Error) => void): unknown;
  /** After `setTimeout(ms)`: no traffic either way for `ms`. */
  on(event: 'timeout', listener: (this: ByteStream) => void): unknown;
  /**
   * A transport that carries frames in messages of its own (the WebSocket binding, PROTOCOL.md
   * §11) reports a message that is not exactly one frame; a byte stream never emits it.
   */
  on(event: 'framingError', listener: (this: ByteStream, error: ProtocolError) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  cork(): void;
  uncork(): void;
  /** `done` runs once the kernel took the bytes (or the write failed). */
  write(bytes: Buffer, done: (error?: Error | null) => void): boolean;
  end(): unknown;
  destroy(): unknown;
  /** Emits `timeout` after `ms` without traffic either way; 0 disarms it. */
  setTimeout(ms: number): unknown;
  /**
   * The largest frame body from now on, for a transport that holds whole messages before they
   * become bytes here (the WebSocket binding): it must refuse longer ones while reading them.
   */
  setMaxFrame?(maxFrame: number): void;
}

export interface FramedSocketLimits {
  /** Largest frame body accepted from the next length prefix on (PROTOCOL.md §2); changeable. */
  readonly maxFrame: number;
  /** Frames cut out of the input ahead of the one being handled; reading pauses there. */
  readonly maxInboundFrames: number;
  /** Input held (frames waiting plus bytes not yet cut into frames); a peer past it is closed. */
  readonly maxInboundBytes: number;
  /** A peer that takes none of our bytes for this long, while some wait for it, is dropped. */
  readonly writeStallTimeoutMs: number;
  /**
   * A peer that starts a frame and sends no more of it for this long is dropped (PROTOCOL.md §9).
   */
  readonly frameStallTimeoutMs: number;
  /** No traffic either way for this long closes the connection (clients `ping`). */
  readonly idleTimeoutMs: number;
}

export interface FramedSocketEvents {
  /** Frames are waiting: take them with `next()`. Called again whenever more arrive. */
  readable(): void;
  /**
   * The byte stream broke PROTOCOL.md §2 framing (a bad length prefix): say so if possible, then
   * close.
   */
  framingError(error: ProtocolError): void;
  /** The peer finished sending (half-close); what it sent is still to be handled. */
  ended(): void;
  /**
   * The connection is gone (once): the peer left, we closed it, or it was `dropped` for
   * breaking a limit (idle, stalled, too slow a reader, past the inbound bound).
   */
  closed(reason: string, dropped: boolean): void;
}

/**
 * Bytes gathered under cork before they go to the kernel without waiting for the turn's end:
 * a burst then leaves as a few large writes instead of one system call per record.
 */
export const CORK_FLUSH_BYTES = 16 * 1024;
/** `drained()` resolves once no more than this is waiting for the kernel. */
export const OUTPUT_LOW_WATER_BYTES = 16 * 1024;
/**
 * The most one `data` event can carry (libuv reads into 64 KiB): reading pauses this far below
 * `maxInboundBytes`, so a well-behaved stream never crosses the limit, even with one more read.
 */
const READ_CHUNK_BYTES = 64 * 1024;
/** How long a closed connection may take to flush its last bytes before it is destroyed. */
const LINGER_MS = 5_000;

/**
 * A socket seen as PROTOCOL.md §2 frames, with every buffer bounded (PROTOCOL.md §9):
 * - input: bytes are kept as bytes and cut into frames only while fewer than
 *   `maxInboundFrames` wait, so a chunk of thousands of tiny frames costs its bytes, not an
 *   object per frame; reading pauses before `maxInboundBytes` and a peer past it is closed;
 * - output: writes of one event-loop turn are corked into one writev; `drained()` lets a
 *   producer wait for the peer; a peer is dropped for *time without progress* (no bytes taken
 *   by the kernel for `writeStallTimeoutMs`), never for how much we queued ourselves;
 * - a frame started and never finished, and a silent connection, are timed out.
 */
export class FramedSocket {
  /**
   * Each stream's FramedSocket, for the stream listeners below: one set of functions for every
   * connection instead of six closures per connection (a gateway holds thousands, mostly idle).
   */
  static readonly #owners = new WeakMap<ByteStream, FramedSocket>();

  /** The FramedSocket a listener was called for (set in `start`, before any listener). */
  static #of(stream: ByteStream): FramedSocket {
    return FramedSocket.#owners.get(stream)!;
  }

  static #onSocketData(this: ByteStream, chunk: Buffer): void {
    FramedSocket.#of(this).#onData(chunk);
  }

  static #onSocketEnd(this: ByteStream): void {
    FramedSocket.#of(this).#onEnd();
  }

  static #onSocketError(this: ByteStream, error: Error): void {
    FramedSocket.#of(this).#finish(`socket error: ${error.message}`);
  }

  static #onSocketClose(this: ByteStream): void {
    FramedSocket.#of(this).#finish('socket closed');
  }

  static #onSocketDrain(this: ByteStream): void {
    FramedSocket.#of(this).#onProgress();
  }

  static #onSocketTimeout(this: ByteStream): void {
    FramedSocket.#of(this).#drop('idle timeout');
  }

  static #onStreamFramingError(this: ByteStream, error: ProtocolError): void {
    const framed = FramedSocket.#of(this);
    if (!framed.#closed) framed.#framingFailed(error);
  }

  readonly #socket: ByteStream;
  readonly #limits: FramedSocketLimits;
  readonly #now: () => number;
  readonly #decoder: FrameDecoder;
  #events: FramedSocketEvents | undefined;
  readonly #queue: RawFrame[] = [];
  #queuedBytes = 0;
  /** Why reading is paused (the inbound bounds, the owner); it resumes when neither is left. */
  #pausedForInbound = false;
  #pausedByOwner = false;
  #corked = false;
  /** Last time the kernel took bytes from us, or the time output started to wait. */
  #lastProgress = 0;
  #writeStallTimer: NodeJS.Timeout | undefined;
  #frameStallTimer: NodeJS.Timeout | undefined;
  /** Producers waiting in `drained()`; made on the first wait (most connections never wait). */
  #drainWaiters: (() => void)[] | undefined;
  #closed = false;
  #dropped = false;
  #inputEnded = false;

  constructor(socket: ByteStream, limits: FramedSocketLimits, now: () => number = Date.now) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`FramedSocket: ${name} must be a positive integer`);
      }
    }
    if (limits.maxInboundBytes < READ_CHUNK_BYTES + 4 + limits.maxFrame) {
      throw new RangeError('FramedSocket: maxInboundBytes must hold a read and a whole frame');
    }
    this.#socket = socket;
    this.#limits = limits;
    this.#now = now;
    this.#decoder = new FrameDecoder({ maxFrame: limits.maxFrame });
  }

  /** Starts reading; `events` hears about frames and the end of the connection. */
  start(events: FramedSocketEvents): void {
    if (this.#events) throw new Error('FramedSocket: already started');
    this.#events = events;
    const socket = this.#socket;
    FramedSocket.#owners.set(socket, this);
    socket.setTimeout(this.#limits.idleTimeoutMs);
    socket.on('timeout', FramedSocket.#onSocketTimeout);
    socket.on('data', FramedSocket.#onSocketData);
    socket.on('end', FramedSocket.#onSocketEnd);
    socket.on('error', FramedSocket.#onSocketError);
    socket.on('close', FramedSocket.#onSocketClose);
    socket.on('drain', FramedSocket.#onSocketDrain);
    socket.on('framingError', FramedSocket.#onStreamFramingError);
  }

  /**
   * The bound on frame bodies from the next length prefix on (small until login: PROTOCOL.md §9).
   */
  set maxFrame(value: number) {
    if (value > this.#limits.maxFrame) throw new RangeError('maxFrame above the configured one');
    this.#decoder.maxFrame = value;
    this.#socket.setMaxFrame?.(value);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The peer half-closed: no frame beyond those already waiting will come. */
  get inputEnded(): boolean {
    return this.#inputEnded;
  }

  /** Whether a frame is waiting. */
  get hasFrame(): boolean {
    return this.#queue.length > 0;
  }

  /** Input held: frames waiting plus bytes not yet cut into frames. */
  get inboundBytes(): number {
    return this.#queuedBytes + this.#decoder.bufferedBytes;
  }

  /** Bytes written and not yet taken by the kernel (corked ones included). */
  get outboundBytes(): number {
    return this.#socket.writableLength;
  }

  /**
   * Takes the oldest waiting frame; more are cut from the buffered bytes as room frees up.
   * Never calls `readable` (the caller is reading already: a nested read would take frames
   * out of order).
   */
  next(): RawFrame | undefined {
    const frame = this.#queue.shift();
    if (frame) {
      this.#queuedBytes -= frame.bytes.length;
      // Emptied: let go of the array's backing store too (shift keeps it), since most
      // connections sit idle with nothing queued.
      if (this.#queue.length === 0) this.#queue.length = 0;
      this.#fill(false);
    }
    return frame;
  }

  /** Stops reading for the owner's reason (the handshake waits for a decision; shutdown). */
  pauseReading(): void {
    this.#pausedByOwner = true;
    this.#applyPause();
  }

  resumeReading(): void {
    this.#pausedByOwner = false;
    this.#applyPause();
  }

  /** Queues bytes for the peer. Never drops the peer for volume: see `drained()`. */
  write(bytes: Buffer): void {
    if (this.#closed || this.#socket.destroyed) return;
    const socket = this.#socket;
    if (socket.writableLength === 0) this.#lastProgress = this.#now(); // the wait starts now
    // Records written in one turn of the event loop (an ack and a deliver, a page of pending
    // messages, a room's fan-out) leave in one writev instead of one system call each.
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(() => this.#uncork());
    }
    socket.write(bytes, this.#onWritten);
    if (socket.writableLength >= CORK_FLUSH_BYTES) this.#uncork();
    this.#armWriteStall();
  }

  /**
   * Resolves once at most OUTPUT_LOW_WATER_BYTES wait for the kernel, or the connection is
   * gone: producers await it between writes so that a slow reader slows them down instead of
   * growing our buffer. A reader that never reads is dropped by the stall timer meanwhile.
   */
  drained(): Promise<void> {
    if (this.#closed || this.#socket.writableLength <= OUTPUT_LOW_WATER_BYTES) {
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve));
  }

  /**
   * Ends the connection: a graceful end lets the bytes already written go out (bounded by a
   * linger timer); `destroy` drops them.
   */
  close(reason: string, destroy = false): void {
    if (this.#closed) return;
    const socket = this.#socket;
    this.#uncork();
    if (destroy) socket.destroy();
    else socket.end();
    socket.setTimeout(0);
    // A peer that never reads its last bytes must not hold the socket open.
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
    this.#finish(reason);
  }

  // ------------------------------------------------------------------ input

  #onEnd(): void {
    this.#inputEnded = true;
    if (!this.#closed) this.#events!.ended();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#decoder.append(chunk);
    } catch (error) {
      this.#framingFailed(error);
      return;
    }
    this.#fill(true);
  }

  /**
   * The decode loop: cuts frames while fewer than `maxInboundFrames` wait, then enforces the
   * byte bound on everything held and pauses or resumes reading.
   */
  #fill(announce: boolean): void {
    if (this.#closed) return;
    const limits = this.#limits;
    const before = this.#queue.length;
    while (this.#queue.length < limits.maxInboundFrames) {
      let frame: RawFrame | undefined;
      try {
        frame = this.#decoder.next();
      } catch (error) {
        this.#framingFailed(error);
        return;
      }
      if (!frame) break;
      this.#queue.push(frame);
      this.#queuedBytes += frame.bytes.length;
    }
    const held = this.inboundBytes;
    if (held > limits.maxInboundBytes) {
      // Only a peer that ignores flow control gets here (reading pauses well before): closed,
      // not queued.
      this.#drop(`inbound limit: ${held} bytes held`);
      return;
    }
    this.#pausedForInbound =
      this.#queue.length >= limits.maxInboundFrames ||
      held >= limits.maxInboundBytes - READ_CHUNK_BYTES;
    this.#applyPause();
    this.#watchFrameStall();
    if (announce && this.#queue.length > before) this.#events!.readable();
  }

  /** Drops a peer that starts a frame and never finishes it (PROTOCOL.md §9). */
  #watchFrameStall(): void {
    // Bytes left over while frames wait may be whole frames not cut yet: not the peer's fault.
    const midFrame = this.#queue.length === 0 && this.#decoder.bufferedBytes > 0;
    if (!midFrame) {
      if (this.#frameStallTimer) clearTimeout(this.#frameStallTimer);
      this.#frameStallTimer = undefined;
    } else if (!this.#frameStallTimer) {
      this.#frameStallTimer = setTimeout(
        () => this.#drop('stalled mid-frame'),
        this.#limits.frameStallTimeoutMs,
      );
    }
  }

  #framingFailed(error: unknown): void {
    this.#pausedForInbound = true;
    this.#applyPause();
    const failure =
      error instanceof ProtocolError ? error : new ProtocolError('internal', 'internal error');
    this.#events!.framingError(failure);
  }

  #applyPause(): void {
    if (this.#closed) return;
    if (this.#pausedForInbound || this.#pausedByOwner) this.#socket.pause();
    else this.#socket.resume();
  }

  // ------------------------------------------------------------------ output

  /** One function for every write's callback: no closure per record. */
  readonly #onWritten = (error?: Error | null): void => {
    if (!error) this.#onProgress();
  };

  #onProgress(): void {
    this.#lastProgress = this.#now();
    const waiting = this.#socket.writableLength;
    if (waiting === 0 && this.#writeStallTimer) {
      // Nothing waits, so nothing can stall: the next write arms the timer again, from its
      // own time. (Left running, it would only find nothing waiting when it fires; meanwhile
      // every connection that wrote in the last writeStallTimeoutMs would hold a timer.)
      clearTimeout(this.#writeStallTimer);
      this.#writeStallTimer = undefined;
    }
    if (this.#drainWaiters && waiting <= OUTPUT_LOW_WATER_BYTES) this.#releaseDrainWaiters();
  }

  #releaseDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    for (const resolve of waiters ?? []) resolve();
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  }

  #armWriteStall(): void {
    if (this.#writeStallTimer || this.#socket.writableLength === 0) return;
    this.#writeStallTimer = setTimeout(
      () => this.#checkWriteStall(),
      this.#limits.writeStallTimeoutMs,
    );
  }

  #checkWriteStall(): void {
    this.#writeStallTimer = undefined;
    if (this.#closed || this.#socket.writableLength === 0) return;
    const idle = this.#now() - this.#lastProgress;
    const timeout = this.#limits.writeStallTimeoutMs;
    if (idle >= timeout) {
      // Its messages stay pending for the next login (PROTOCOL.md §6).
      this.#drop(`slow reader: no bytes taken for ${idle} ms`);
      return;
    }
    this.#writeStallTimer = setTimeout(() => this.#checkWriteStall(), timeout - idle);
  }

  // ------------------------------------------------------------------ teardown

  #drop(reason: string): void {
    if (this.#closed) return;
    this.#dropped = true;
    this.close(reason, true);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of [this.#writeStallTimer, this.#frameStallTimer]) {
      if (timer) clearTimeout(timer);
    }
    this.#writeStallTimer = undefined;
    this.#frameStallTimer = undefined;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#releaseDrainWaiters();
    this.#events?.closed(reason, this.#dropped);
  }
}
