import { EventEmitter } from 'node:events';
import { type Socket } from 'node:net';

import { ProtocolError } from '@securechat/protocol';
import { type WebSocket } from 'ws';

import { type ByteStream } from './framed-socket';

/** The WebSocket subprotocol of securechat/1 (PROTOCOL.md §11). */
export const WEBSOCKET_SUBPROTOCOL = 'securechat.v1';

const LENGTH_PREFIX_BYTES = 4;

/**
 * Why a WebSocket message is not one securechat/1 frame (PROTOCOL.md §11), or undefined when it
 * is: a binary message holding a 4-byte length prefix N and exactly N more bytes.
 */
export function messageFramingProblem(data: Buffer, isBinary: boolean): string | undefined {
  if (!isBinary) return 'a text message; frames travel as binary messages';
  if (data.length < LENGTH_PREFIX_BYTES) return 'a message shorter than the length prefix';
  const declared = data.readUInt32BE(0);
  if (declared + LENGTH_PREFIX_BYTES !== data.length) {
    return `a message of ${data.length} bytes whose prefix announces ${declared}`;
  }
  return undefined;
}

/**
 * One accepted WebSocket seen as the ByteStream FramedSocket reads, so that a browser's
 * connection is handled by the very code, limits and timers of a TCP one (PROTOCOL.md §11):
 * - each binary message is checked to be exactly one frame, then passed on as bytes (the
 *   frame decoder then applies maxFrame as on TCP); anything else is `bad_frame`, reported
 *   through the `framingError` event FramedSocket listens for;
 * - each write is one frame (the gateway never writes anything else) and leaves as one binary
 *   message;
 * - flow control, corking, `drain` and the idle timeout are the underlying TCP socket's: `ws`
 *   writes to it directly, so its `writableLength` is what waits for the kernel, plus what `ws`
 *   itself still holds (`bufferedAmount` covers both).
 *
 * There is no half-close in WebSocket: the peer's close frame ends the connection.
 */
export class WebSocketByteStream extends EventEmitter implements ByteStream {
  readonly remoteAddress: string;
  readonly #ws: WebSocket;
  readonly #socket: Socket;
  readonly #stallTimeoutMs: number;
  #destroyed = false;
  /** Bytes read from the socket since the last whole message (a message `ws` still assembles). */
  #partialBytes = 0;
  #stallTimer: NodeJS.Timeout | undefined;
  /** After `end()`: what the peer still sends is dropped unread. */
  #ending = false;

  /**
   * `stallTimeoutMs`: a message started and not finished for this long drops the peer, as a
   * frame started and not finished does on TCP (FramedSocket sees nothing of a message until
   * `ws` has all of it). WebSocket pings are no progress: they could otherwise keep such a
   * message open forever.
   */
  constructor(ws: WebSocket, socket: Socket, remoteAddress: string, stallTimeoutMs: number) {
    super();
    this.#ws = ws;
    this.#socket = socket;
    this.remoteAddress = remoteAddress;
    this.#stallTimeoutMs = stallTimeoutMs;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('close', () => {
      this.#destroyed = true;
      this.#disarmStall();
      this.emit('close');
    });
    // `ws` reports a broken WebSocket framing (too large, too many fragments, unmasked, …) and
    // then waits up to 30 s for the peer's close: FramedSocket takes 'error' as the end of the
    // socket, as on TCP, so the socket must end here and now.
    ws.on('error', (error: Error) => {
      this.destroy();
      this.emit('error', error);
    });
    // Before `ws`'s own listener: a chunk is counted, then `ws` turns it into messages (events
    // are synchronous: allowSynchronousEvents), which clear the count.
    socket.prependListener('data', (chunk: Buffer) => this.#onBytes(chunk.length));
    socket.on('drain', () => this.emit('drain'));
    socket.on('timeout', () => this.emit('timeout'));
  }

  /**
   * The largest frame body from now on (FramedSocket's maxFrame: small until login, PROTOCOL.md
   * §9): `ws` refuses a longer message while it reads it, before it holds all of it. `ws` has no
   * public setter for this; the receiver's field is set directly (websocket-listener.int-spec
   * checks that it takes effect with the `ws` version installed).
   */
  setMaxFrame(maxFrame: number): void {
    const receiver = (this.#ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
    if (receiver !== undefined && typeof receiver._maxPayload === 'number') {
      receiver._maxPayload = maxFrame + LENGTH_PREFIX_BYTES;
    }
  }

  get writableLength(): number {
    return this.#ws.bufferedAmount;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** While we do not read, a message waiting in `ws` is not the peer's stall. */
  pause(): void {
    this.#ws.pause();
    this.#disarmStall();
  }

  resume(): void {
    this.#ws.resume();
    if (this.#partialBytes > 0 && !this.#destroyed) {
      this.#stallTimer ??= setTimeout(() => this.#onStall(), this.#stallTimeoutMs);
    }
  }

  cork(): void {
    this.#socket.cork();
  }

  uncork(): void {
    this.#socket.uncork();
  }

  write(bytes: Buffer, done: (error?: Error | null) => void): boolean {
    this.#ws.send(bytes, { binary: true }, done);
    return this.#socket.writableLength === 0;
  }

  /**
   * A graceful close: what was written goes first, then the close frame. Reading resumes (it is
   * often paused by now): the peer's answering close frame must be read for the close to finish.
   */
  end(): void {
    this.#ending = true;
    this.#ws.close(1000);
    this.#ws.resume();
  }

  destroy(): void {
    this.#destroyed = true;
    this.#disarmStall();
    this.#ws.terminate();
  }

  setTimeout(ms: number): void {
    this.#socket.setTimeout(ms);
  }

  #onBytes(length: number): void {
    this.#partialBytes += length;
    if (!this.#ws.isPaused) {
      this.#stallTimer ??= setTimeout(() => this.#onStall(), this.#stallTimeoutMs);
    }
  }

  #onStall(): void {
    this.#stallTimer = undefined;
    if (this.#partialBytes === 0 || this.#destroyed) return;
    this.destroy();
    this.emit('error', new Error('stalled mid-message'));
  }

  #disarmStall(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    // A whole message: what was read so far is accounted for (a chunk that also began the next
    // message is forgiven; the next chunk arms the timer again).
    this.#partialBytes = 0;
    this.#disarmStall();
    if (this.#ending) return;
    const problem = messageFramingProblem(data, isBinary);
    if (problem === undefined) {
      this.emit('data', data);
      return;
    }
    // After one bad message nothing more is read: the connection answers `bad_frame` and closes.
    this.#ws.pause();
    this.emit('framingError', new ProtocolError('bad_frame', `WebSocket binding: ${problem}`));
  }
}
