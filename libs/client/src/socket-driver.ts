/**
 * The client's one piece of TCP: dials, cuts the byte stream into frames (docs/PROTOCOL.md §3.1),
 * writes with backpressure, pauses reading on request, and says when the connection was idle long
 * enough for a keep-alive `ping` (docs/PROTOCOL.md §7.1). It knows nothing of sessions: the client
 * reacts to its events.
 */
import { connect as netConnect, type Socket } from 'node:net';

import { FrameDecoder, type RawFrame } from '@securechat/protocol';

import { HandshakeTimeoutError } from './client-errors';

export interface SocketDriverHandlers {
  /** The frames completed by one chunk, in order. */
  frames(frames: RawFrame[]): void;
  /**
   * The socket took everything written so far after refusing more (docs/PROTOCOL.md §3.1
   * backpressure).
   */
  drain(): void;
  /** The connection is gone; `failure` is why, when known. */
  close(failure: Error | undefined): void;
}

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** Largest frame body accepted (docs/PROTOCOL.md §3.1). */
  readonly maxFrame?: number;
}

const IGNORE: SocketDriverHandlers = {
  frames: () => undefined,
  drain: () => undefined,
  close: () => undefined,
};

export class SocketDriver {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly closed: Promise<void>;
  #handlers = IGNORE;
  #failure: Error | undefined;
  #needsDrain = false;
  #keepAlive: NodeJS.Timeout | undefined;
  /** Last frame read or bytes written (ms since the epoch). */
  #lastActivity = Date.now();

  /** Connects, or rejects with the socket's error or HandshakeTimeoutError. */
  static dial(options: DialOptions): Promise<SocketDriver> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new HandshakeTimeoutError(options.timeoutMs));
      }, options.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        resolve(new SocketDriver(socket, options.maxFrame));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private constructor(socket: Socket, maxFrame: number | undefined) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder(maxFrame === undefined ? {} : { maxFrame });
    socket.on('error', (error) => {
      this.#failure ??= error;
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        clearInterval(this.#keepAlive);
        this.#handlers.close(this.#failure);
        resolve();
      });
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** Who hears the events: the handshake first, then the session. */
  setHandlers(handlers: SocketDriverHandlers): void {
    this.#handlers = handlers;
  }

  get destroyed(): boolean {
    return this.#socket.destroyed;
  }

  /** False while the socket is over its high-water mark: wait for `drain`. */
  get writable(): boolean {
    return !this.#needsDrain;
  }

  /** Why the connection ended, when known. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  write(bytes: Buffer): void {
    this.#lastActivity = Date.now();
    if (!this.#socket.write(bytes) && !this.#needsDrain) {
      this.#needsDrain = true;
      this.#socket.once('drain', () => {
        this.#needsDrain = false;
        this.#handlers.drain();
      });
    }
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /**
   * The server said why it ends the connection (docs/PROTOCOL.md §9): that outranks the socket's
   * own error.
   */
  blame(reason: Error): void {
    this.#failure = reason;
  }

  /** Ends the connection; `reason`, when the first given, is what `close` reports. */
  destroy(reason?: Error): void {
    if (reason !== undefined) this.#failure ??= reason;
    this.#socket.destroy();
  }

  /** Waits for the peer to close, destroying the connection after `ms` at the latest. */
  async closedWithin(ms: number): Promise<void> {
    const timer = setTimeout(() => this.destroy(), ms);
    await this.closed;
    clearTimeout(timer);
  }

  /** Calls `onIdle` whenever nothing crossed the connection for `everyMs` (0: never). */
  startKeepAlive(everyMs: number, onIdle: () => void): void {
    this.stopKeepAlive();
    if (everyMs <= 0 || this.destroyed) return;
    this.#keepAlive = setInterval(() => {
      if (Date.now() - this.#lastActivity >= everyMs) onIdle();
    }, everyMs);
    this.#keepAlive.unref();
  }

  stopKeepAlive(): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  #onData(chunk: Buffer): void {
    let frames: RawFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      // A framing error is fatal (docs/PROTOCOL.md §3.1): nothing after it can be trusted.
      this.destroy(error as Error);
      return;
    }
    if (frames.length === 0) return;
    this.#lastActivity = Date.now();
    this.#handlers.frames(frames);
  }
}
