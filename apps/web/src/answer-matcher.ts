/**
 * Which request a server message answers, without sockets (docs/PROTOCOL.md §10.1), as
 * libs/client's request-tracker.ts does for the CLI: `ack` and `error` with an `id` go to the
 * `send` of that id (an `error` whose id is no pending send is dropped); the other requests carry
 * no id, so one at a time is in flight and its answer must be the expected type *for what was
 * asked* (`key.user`, `history.with`, `joined.room`, `left.room`) — anything else is dropped,
 * never taken for the answer. An id-less `error` (the gateway sends one when a `delivered` batch
 * fails) fails the request in flight, the only one outstanding, instead of shifting later answers.
 * Also: the incoming side's framing (PROTOCOL.md §11.2: one WebSocket message, exactly one frame).
 */
import {
  type ClientMessage,
  closesConnection,
  LENGTH_PREFIX_BYTES,
  MIN_FRAME,
  PeerError,
  ProtocolError,
  type RawFrame,
  type ServerMessage,
} from '@securechat/protocol';

export type RequestMessage = Extract<
  ClientMessage,
  { type: 'join' | 'leave' | 'get_key' | 'history' | 'ping' }
>;

/** The answer type each request expects. */
const EXPECT = { join: 'joined', leave: 'left', get_key: 'key', history: 'history', ping: 'pong' };

/** True when `answer` is the answer to `request`: its type and what it names. */
export function answers(request: RequestMessage, answer: ServerMessage): boolean {
  if (answer.type !== EXPECT[request.type]) return false;
  switch (request.type) {
    case 'get_key':
      return answer.type === 'key' && answer.user === request.user;
    case 'history':
      return answer.type === 'history' && answer.with === request.with;
    case 'join':
      return answer.type === 'joined' && answer.room === request.room;
    case 'leave':
      return answer.type === 'left' && answer.room === request.room;
    case 'ping':
      return true;
  }
}

interface Waiting {
  resolve(message: ServerMessage): void;
  reject(error: Error): void;
}

interface QueuedRequest extends Waiting {
  readonly message: RequestMessage;
}

export class AnswerMatcher {
  readonly #sends = new Map<string, Waiting>();
  #queue: QueuedRequest[] = [];
  #inFlight: QueuedRequest | undefined;

  /** `write` seals and sends a request; it may throw (the request then fails). */
  constructor(private readonly write: (message: RequestMessage) => void) {}

  /** Nothing is waiting for an answer. */
  get idle(): boolean {
    return this.#sends.size === 0 && this.#inFlight === undefined && this.#queue.length === 0;
  }

  /** Waits for the `ack` (or `error`) of the send with this id; write the send after calling. */
  expectAck(id: string): Promise<ServerMessage> {
    return new Promise((resolve, reject) => this.#sends.set(id, { resolve, reject }));
  }

  /** Forgets a send that could not be written. */
  cancelSend(id: string, error: Error): void {
    this.#sends.get(id)?.reject(error);
    this.#sends.delete(id);
  }

  /** Queues an id-less request; it is written once every earlier one is answered. */
  request(message: RequestMessage): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      this.#promote();
    });
  }

  /**
   * Takes a server message that may answer something; false when it answers nothing (dropped).
   * `deliver`, `receipt` and `key_update` are not answers: the caller handles them.
   */
  onMessage(message: ServerMessage): boolean {
    switch (message.type) {
      case 'ack':
        return this.#settleSend(message.id, message);
      case 'error':
        if (message.id !== undefined) return this.#settleSend(message.id, message);
        if (closesConnection(message.code) || this.#inFlight === undefined) return false;
        this.#settleRequest(message);
        return true;
      case 'joined':
      case 'left':
      case 'key':
      case 'history':
      case 'pong':
        if (this.#inFlight === undefined || !answers(this.#inFlight.message, message)) return false;
        this.#settleRequest(message);
        return true;
      default:
        return false;
    }
  }

  /** The connection is gone: everything waiting fails. */
  failAll(error: Error): void {
    const requests = this.#inFlight ? [this.#inFlight, ...this.#queue] : this.#queue;
    for (const waiting of [...this.#sends.values(), ...requests]) waiting.reject(error);
    this.#sends.clear();
    this.#queue = [];
    this.#inFlight = undefined;
  }

  #settleSend(id: string, message: ServerMessage): boolean {
    const pending = this.#sends.get(id);
    if (pending === undefined) return false;
    this.#sends.delete(id);
    pending.resolve(message);
    return true;
  }

  #settleRequest(message: ServerMessage): void {
    const request = this.#inFlight!;
    this.#inFlight = undefined;
    request.resolve(message);
    this.#promote();
  }

  #promote(): void {
    while (this.#inFlight === undefined) {
      const next = this.#queue.shift();
      if (next === undefined) return;
      this.#inFlight = next;
      try {
        this.write(next.message);
      } catch (error) {
        this.#inFlight = undefined;
        next.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}

/** An `error` answer as the exception its caller gets. */
export function answerError(message: Extract<ServerMessage, { type: 'error' }>): PeerError {
  return new PeerError(message.code, message.message, message.retry_after, message.id);
}

/**
 * The frame one WebSocket message holds (PROTOCOL.md §11.2): its length prefix must account for
 * exactly the rest of the message — a partial frame or several frames are `bad_frame`.
 */
export function singleFrame(message: Uint8Array, maxFrame: number): RawFrame {
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  if (bytes.length < LENGTH_PREFIX_BYTES) {
    throw new ProtocolError('bad_frame', 'a message shorter than a length prefix');
  }
  const length = bytes.readUInt32BE(0);
  if (length > maxFrame) throw new ProtocolError('frame_too_large', `a frame of ${length} bytes`);
  if (length < MIN_FRAME || length !== bytes.length - LENGTH_PREFIX_BYTES) {
    throw new ProtocolError('bad_frame', 'a message that is not exactly one frame');
  }
  return { bytes, body: bytes.subarray(LENGTH_PREFIX_BYTES) };
}
