/**
 * The client's outbox and the matching of answers to requests, without sockets or sealing:
 * sends are matched by their id (docs/PROTOCOL.md §7.2 `ack`, §9 `error.id`); the other requests
 * carry no id, so at most one is in flight and its answer is the next one of its type
 * (docs/PROTOCOL.md §10.1). Messages wait here in plain form until the connection takes them, so
 * a lost connection loses nothing that was not written, and what was written without an answer
 * goes out again on the next one. Timeouts run on injected timers: the unit specs drive them by
 * hand.
 */
import { type KeyObject, randomBytes } from 'node:crypto';

import {
  type ClientMessage,
  type ErrorMessage,
  type SendMessage,
  type ServerMessage,
  ROOM_PATTERN,
  USERNAME_PATTERN,
  closesConnection,
  signMessage,
} from '@securechat/protocol';

import {
  ClientClosedError,
  ClientRequestError,
  PendingLimitError,
  RequestTimeoutError,
} from './client-errors';
import { type TimerHandle, type Timers, systemTimers } from './timers';

export type RequestMessage = Extract<
  ClientMessage,
  { type: 'join' | 'leave' | 'get_key' | 'history' | 'ping' }
>;
export type AnswerType = 'joined' | 'left' | 'key' | 'history' | 'pong';
export type Answer = Extract<ServerMessage, { type: AnswerType }>;
/** What the outbox hands to the session; `bye` and `countersign` belong to the close. */
export type OutboxMessage = Exclude<ClientMessage, { type: 'bye' | 'countersign' }>;

export interface SendResult {
  /** The server's id for the message (docs/PROTOCOL.md §7.2 `ack`). */
  readonly msgId: string;
  readonly serverTs: number;
  /** Our client id (`send.id`). */
  readonly id: string;
}

interface PendingSend {
  readonly message: SendMessage;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
  /** Written on the current connection: sent again if it is lost before the `ack`. */
  written: boolean;
}

interface PendingRequest {
  readonly message: RequestMessage;
  readonly expect: AnswerType;
  readonly resolve: (answer: Answer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

const DEFAULT_MAX_PENDING_SENDS = 1024;

/** A client id matching `^[A-Za-z0-9_-]{1,64}$` (docs/PROTOCOL.md §7.5), unique per message. */
export function newClientId(): string {
  return `c${Date.now().toString(36)}-${randomBytes(12).toString('base64url')}`;
}

/**
 * A `send` from `from` to a user or `#room`, signed with `key` (docs/PROTOCOL.md §7.3), under a
 * fresh id. Throws a TypeError for a recipient that is neither, and e.g. on an unpaired surrogate
 * in `body`, which has no UTF-8 form (docs/PROTOCOL.md §10 item 4).
 */
export function signedSend(key: KeyObject, from: string, to: string, body: string): SendMessage {
  if (!USERNAME_PATTERN.test(to) && !ROOM_PATTERN.test(to)) {
    throw new TypeError('to must be a username or a #room');
  }
  const id = newClientId();
  const ts = Date.now();
  return { type: 'send', id, to, body, ts, sig: signMessage(key, { from, to, id, ts, body }) };
}

type OutboxItem =
  | { readonly kind: 'send'; readonly pending: PendingSend }
  | { readonly kind: 'request'; readonly request: PendingRequest }
  | { readonly kind: 'delivered'; readonly msgId: string };

/** Where `flush` puts messages: the session and connection of the moment. */
export interface OutboxWire {
  /**
   * False while the connection is over its high-water mark (docs/PROTOCOL.md §3.1 backpressure).
   */
  readonly writable: boolean;
  /** Seals a message into a record; may throw (the message then fails, not the others). */
  seal(message: OutboxMessage): Buffer;
  write(bytes: Buffer): void;
}

export interface RequestTrackerOptions {
  readonly requestTimeoutMs: number;
  /** Sends without `ack` beyond which `send` refuses with PendingLimitError (default 1024). */
  readonly maxPendingSends?: number;
  readonly timers?: Timers;
  /** Something may be writable now (a new message, or the in-flight slot came free). */
  readonly onWake: () => void;
  /**
   * An id-less request timed out in flight: its answer may still come and would be matched to
   * the next request, so only a fresh connection restores certainty (docs/PROTOCOL.md §10.1).
   */
  readonly onDesync: (error: RequestTimeoutError) => void;
  /** A `delivered` could not be sealed: nobody waits for it, so the client reports it. */
  readonly onError: (error: Error) => void;
}

export class RequestTracker {
  readonly #options: RequestTrackerOptions;
  readonly #timers: Timers;
  readonly #sends = new Map<string, PendingSend>();
  #requests: PendingRequest[] = [];
  #inFlight: PendingRequest | undefined;
  #outbound: OutboxItem[] = [];
  #closing = false;

  constructor(options: RequestTrackerOptions) {
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  /**
   * An id-less request is in flight (or about to be written): its answer is owed on the
   * connection, so the connection must go on reading for it.
   */
  get awaitingAnswer(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Sends still waiting for their `ack`. */
  get pendingSends(): number {
    return this.#sends.size;
  }

  /**
   * Queues a send; `prepare` (which signs) runs only when the pending limit allows it, so a
   * full outbox costs no signature.
   */
  send(prepare: () => SendMessage): Promise<SendResult> {
    const limit = this.#options.maxPendingSends ?? DEFAULT_MAX_PENDING_SENDS;
    if (this.#sends.size >= limit) return Promise.reject(new PendingLimitError(limit));
    let message: SendMessage;
    try {
      message = prepare();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return new Promise<SendResult>((resolve, reject) => {
      const timeoutMs = this.#options.requestTimeoutMs;
      const timer = this.#timers.set(() => {
        this.#sends.delete(message.id);
        reject(new RequestTimeoutError('send', timeoutMs));
      }, timeoutMs);
      const pending: PendingSend = { message, resolve, reject, timer, written: false };
      this.#sends.set(message.id, pending);
      this.#outbound.push({ kind: 'send', pending });
      this.#options.onWake();
    });
  }

  /** Queues an id-less request; it goes out once every earlier one is answered. */
  request(message: RequestMessage, expect: AnswerType): Promise<Answer> {
    if (this.#closing) return Promise.reject(new ClientClosedError('the client is closing'));
    return new Promise<Answer>((resolve, reject) => {
      const timeoutMs = this.#options.requestTimeoutMs;
      const timer = this.#timers.set(() => {
        const error = new RequestTimeoutError(message.type, timeoutMs);
        if (this.#inFlight === request) {
          this.#inFlight = undefined;
          this.#options.onDesync(error);
        } else {
          this.#requests = this.#requests.filter((r) => r !== request);
        }
        reject(error);
      }, timeoutMs);
      const request: PendingRequest = { message, expect, resolve, reject, timer };
      this.#requests.push(request);
      this.#promote();
    });
  }

  /** Queues the `delivered` for a message handed to the application (docs/PROTOCOL.md §7.4). */
  confirm(msgId: string): void {
    this.#outbound.push({ kind: 'delivered', msgId });
    this.#options.onWake();
  }

  /**
   * Seals and writes queued messages while the wire takes them. Nothing is sealed while it is
   * over its high-water mark: what waits here is plain, so a lost connection loses nothing that
   * was not written. Sends and requests that ended meanwhile are skipped.
   */
  flush(wire: OutboxWire): void {
    while (wire.writable) {
      const item = this.#outbound.shift();
      if (item === undefined) return;
      const message = this.#current(item);
      if (message === undefined) continue;
      let bytes: Buffer;
      try {
        bytes = wire.seal(message);
      } catch (error) {
        this.#failed(item, error as Error);
        continue;
      }
      if (item.kind === 'send') item.pending.written = true;
      wire.write(bytes);
    }
  }

  #current(item: OutboxItem): OutboxMessage | undefined {
    switch (item.kind) {
      case 'send':
        return this.#sends.get(item.pending.message.id) === item.pending
          ? item.pending.message
          : undefined;
      case 'request':
        return this.#inFlight === item.request ? item.request.message : undefined;
      case 'delivered':
        return { type: 'delivered', msg_id: item.msgId };
    }
  }

  /** A message could not be sealed: its caller gets the error. */
  #failed(item: OutboxItem, error: Error): void {
    switch (item.kind) {
      case 'send':
        this.#sends.delete(item.pending.message.id);
        this.#timers.clear(item.pending.timer);
        item.pending.reject(error);
        return;
      case 'request':
        this.#inFlight = undefined;
        this.#timers.clear(item.request.timer);
        item.request.reject(error);
        this.#promote();
        return;
      case 'delivered':
        this.#options.onError(error);
        return;
    }
  }

  /** Matches an `ack`; false when nobody waits for it (timed out, or repeated after a resend). */
  onAck(ack: Extract<ServerMessage, { type: 'ack' }>): boolean {
    const pending = this.#sends.get(ack.id);
    if (pending === undefined) return false;
    this.#sends.delete(ack.id);
    this.#timers.clear(pending.timer);
    pending.resolve({ msgId: ack.msg_id, serverTs: ack.server_ts, id: ack.id });
    return true;
  }

  /** Matches an answer to the request in flight; false when it is not what that one expects. */
  onAnswer(answer: Answer): boolean {
    const request = this.#inFlight;
    if (request === undefined || request.expect !== answer.type) return false;
    this.#inFlight = undefined;
    this.#timers.clear(request.timer);
    request.resolve(answer);
    this.#promote();
    return true;
  }

  /**
   * Matches an `error` to a send (by id) or to the request in flight; false when it answers
   * nothing of ours (a connection-level error, docs/PROTOCOL.md §9).
   */
  onError(error: ErrorMessage): boolean {
    if (error.id !== undefined) {
      const pending = this.#sends.get(error.id);
      if (pending !== undefined) {
        this.#sends.delete(error.id);
        this.#timers.clear(pending.timer);
        pending.reject(requestError(error, 'send'));
        return true;
      }
    }
    if (!closesConnection(error.code) && error.id === undefined && this.#inFlight !== undefined) {
      const request = this.#inFlight;
      this.#inFlight = undefined;
      this.#timers.clear(request.timer);
      request.reject(requestError(error, request.message.type));
      this.#promote();
      return true;
    }
    return false;
  }

  /**
   * The connection is gone. What was written but not answered goes out again on the next one:
   * a repeated send is stored once (docs/PROTOCOL.md §7.4); id-less requests restart from the head
   * of the queue. Nothing is promoted until `resume()`.
   */
  connectionLost(): void {
    const resend: OutboxItem[] = [];
    for (const pending of this.#sends.values()) {
      if (pending.written) {
        pending.written = false;
        resend.push({ kind: 'send', pending });
      }
    }
    this.#outbound = [...resend, ...this.#outbound.filter((item) => item.kind !== 'request')];
    if (this.#inFlight !== undefined) {
      this.#requests.unshift(this.#inFlight);
      this.#inFlight = undefined;
    }
  }

  /** A connection is up: the next request may go out. */
  resume(): void {
    this.#promote();
  }

  /**
   * close() began: requests not yet sent are refused; what is queued or in flight still
   * completes before `bye` (see `byeDue`).
   */
  startClosing(): void {
    this.#closing = true;
    for (const request of this.#requests) {
      this.#timers.clear(request.timer);
      request.reject(new ClientClosedError('the client is closing'));
    }
    this.#requests = [];
  }

  /**
   * Closing, nothing left to write and the last answer in: `bye` may go (docs/PROTOCOL.md §8.4).
   */
  get byeDue(): boolean {
    return this.#closing && this.#outbound.length === 0 && this.#inFlight === undefined;
  }

  /** The client is done: everything still waiting fails with `error`. */
  failAll(error: Error): void {
    for (const pending of this.#sends.values()) {
      this.#timers.clear(pending.timer);
      pending.reject(error);
    }
    this.#sends.clear();
    const requests =
      this.#inFlight === undefined ? this.#requests : [this.#inFlight, ...this.#requests];
    for (const request of requests) {
      this.#timers.clear(request.timer);
      request.reject(error);
    }
    this.#inFlight = undefined;
    this.#requests = [];
    this.#outbound = [];
  }

  /**
   * At most one id-less request in flight (docs/PROTOCOL.md §10.1); none is started once closing.
   */
  #promote(): void {
    if (this.#inFlight === undefined && !this.#closing) {
      const next = this.#requests.shift();
      if (next !== undefined) {
        this.#inFlight = next;
        this.#outbound.push({ kind: 'request', request: next });
      }
    }
    this.#options.onWake(); // also lets a pending bye go once the last answer is in
  }
}

function requestError(error: ErrorMessage, request: string): ClientRequestError {
  return new ClientRequestError(error.code, error.message, request, error.id, error.retry_after);
}
