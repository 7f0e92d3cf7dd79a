/**
 * SecureChatClient: the reference securechat/1 client over a real TCP socket, on the sans-I/O
 * client role of libs/protocol (docs/PROTOCOL.md). It pins the server like SSH
 * (docs/PROTOCOL.md §4.3), logs in or registers (docs/PROTOCOL.md §4.4), signs every message
 * (docs/PROTOCOL.md §7.3), verifies every delivery against its author's pinned key, answers
 * `delivered` once a message has been handed to the application (docs/PROTOCOL.md §7.4), drops
 * duplicates by `msg_id`, reconnects with backoff, rotates keys well before the
 * docs/PROTOCOL.md §5.3 limit, keeps a local transcript (docs/PROTOCOL.md §8.5) and closes with bye
 * → receipt → countersign (docs/PROTOCOL.md §8.4).
 *
 * This class is the facade and the glue. The state lives in pure parts with their own specs:
 * the outbox and request matching (RequestTracker), the reconnect policy (Reconnector), the
 * ordered verification of deliveries (DeliveryQueue) and the transcript glue (SessionLog); the
 * I/O in SocketDriver (TCP, frames, keep-alive) and dialSession (the handshake). Side effects
 * are injected: the known-servers store, the peer-key store and the transcript sink.
 */
import { EventEmitter } from 'node:events';

import {
  type ClientSession,
  type Deliver,
  type History,
  type Joined,
  type KeyAnswer,
  type Left,
  type LoginOk,
  PeerError,
  type Pong,
  type RawFrame,
  type ReceiptCheck,
  type ServerMessage,
  closesConnection,
} from '@securechat/protocol';

import {
  ClientClosedError,
  ClientRequestError,
  ConnectionClosedError,
  ReceiptCheckError,
} from './client-errors';
import {
  type ClientState,
  type CloseResult,
  type SecureChatClientEvents,
  type SecureChatClientOptions,
  type StateDetail,
  assertClientOptions,
  closeResult,
} from './client-options';
import { DeliveryQueue } from './delivery-queue';
import { serverAddress } from './known-servers';
import { PeerKeyVerifier, type VerificationResult } from './peer-keys';
import { Reconnector, isFinalFailure } from './reconnector';
import {
  type AnswerType,
  type RequestMessage,
  RequestTracker,
  type SendResult,
  signedSend,
} from './request-tracker';
import { resolveServerTrust } from './server-trust';
import { SessionLog } from './session-log';
import { type OpenedSession, dialSession } from './session-opener';
import { type SocketDriver, type SocketDriverHandlers } from './socket-driver';

/** Time for the server to close after `countersign`, and for the receipt after `bye`. */
const CLOSE_GRACE_MS = 5_000;

/** One TCP connection and, once the handshake is done, its session. */
interface Link {
  readonly driver: SocketDriver;
  readonly log: SessionLog;
  session?: ClientSession;
  byeSent: boolean;
  receipt?: ReceiptCheck;
}

export class SecureChatClient extends EventEmitter<SecureChatClientEvents> {
  readonly address: string;
  readonly #options: SecureChatClientOptions;
  /** Undefined with `reconnect: false`. */
  readonly #reconnector: Reconnector | undefined;
  readonly #tracker: RequestTracker;
  readonly #deliveries: DeliveryQueue;
  readonly #verifier: PeerKeyVerifier;
  readonly #requestTimeoutMs: number;

  #state: ClientState = 'idle';
  #link: Link | undefined;
  #registered = false;
  #establishing: Promise<unknown> | undefined;
  #closing = false;
  #closeResult: Promise<CloseResult> | undefined;
  /** close() waits here for the receipt (undefined: the connection ended without one). */
  #closeWaiter: ((check: ReceiptCheck | undefined) => void) | undefined;
  #lastTranscript: string | undefined;
  /** A session was up once: a final failure from now on is also reported as an 'error'. */
  #wasUp = false;

  constructor(options: SecureChatClientOptions) {
    super();
    assertClientOptions(options);
    this.#options = options;
    this.address = serverAddress(options.host, options.port);
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#reconnector =
      options.reconnect === false
        ? undefined
        : new Reconnector(options.reconnect, options.random, options.timers);
    this.#tracker = new RequestTracker({
      requestTimeoutMs: this.#requestTimeoutMs,
      maxPendingSends: options.maxPendingSends,
      timers: options.timers,
      onWake: () => {
        // A verification may wait for a `get_key` answer behind the deliveries that filled the
        // queue: reading goes on while an answer is owed (see DeliveryQueue).
        this.#deliveries.answerAwaited(this.#tracker.awaitingAnswer);
        this.#pump();
      },
      onDesync: (error) => this.#link?.driver.destroy(error),
      onError: (error) => this.#reportError(error),
    });
    this.#deliveries = new DeliveryQueue({
      seenMessageIds: options.seenMessageIds ?? 10_000,
      verify: (deliver) => this.#verifier.verify(deliver),
      accepting: () => !this.#closing && this.#state !== 'closed',
      handOver: (deliver, result) => this.emit('message', { ...result, deliver }),
      duplicate: (deliver) => this.emit('duplicate', deliver),
      confirm: (msgId) => this.#tracker.confirm(msgId),
      onError: (error) => this.#reportError(error),
    });
    this.#verifier = new PeerKeyVerifier(options.peerKeys, (user) =>
      this.getKey(user).catch((error: unknown) => {
        if (error instanceof ClientRequestError && error.code === 'not_found') return undefined;
        throw error;
      }),
    );
  }

  get state(): ClientState {
    return this.#state;
  }

  get username(): string {
    return this.#options.username;
  }

  /** The id of the current session, while connected. */
  get sessionId(): string | undefined {
    return this.#link?.session?.sessionId;
  }

  /** The transcript file of the current or last session. */
  get transcriptLocation(): string | undefined {
    return this.#link?.log.location ?? this.#lastTranscript;
  }

  /**
   * Connects, checks the server's key (docs/PROTOCOL.md §4.3), logs in or registers
   * (docs/PROTOCOL.md §4.4). Rejects with ServerIdentityError (refused server: nothing was sent),
   * PeerError (e.g. `auth_failed`), or a connection error. Not retried: reconnects are for
   * connections that were up.
   */
  async connect(): Promise<LoginOk> {
    if (this.#state !== 'idle') throw new Error(`connect() in state ${this.#state}`);
    this.#setState('connecting', {});
    try {
      return await this.#establish();
    } catch (error) {
      this.#finalize(error as Error);
      throw error;
    }
  }

  /** Signs (docs/PROTOCOL.md §7.3) and sends a chat message; resolves with the server's `ack`. */
  send(to: string, body: string): Promise<SendResult> {
    if (!this.#accepting) {
      return Promise.reject(new ClientClosedError('the client is not connected'));
    }
    // Signed only once the outbox has room for it.
    return this.#tracker.send(() => signedSend(this.#options.privateKey, this.username, to, body));
  }

  join(room: string): Promise<Joined> {
    return this.#request({ type: 'join', room }, 'joined') as Promise<Joined>;
  }

  leave(room: string): Promise<Left> {
    return this.#request({ type: 'leave', room }, 'left') as Promise<Left>;
  }

  /**
   * The server's answer for a user's key; it is not pinned here (deliveries pin,
   * docs/PROTOCOL.md §7.3).
   */
  getKey(user: string): Promise<KeyAnswer> {
    return this.#request({ type: 'get_key', user }, 'key') as Promise<KeyAnswer>;
  }

  /** docs/PROTOCOL.md §7.4 history; `limit` is always sent (docs/PROTOCOL.md §10.1), default 50. */
  history(withWhom: string, options: { before?: string; limit?: number } = {}): Promise<History> {
    const message: RequestMessage = {
      type: 'history',
      with: withWhom,
      limit: options.limit ?? 50,
      ...(options.before !== undefined ? { before: options.before } : {}),
    };
    return this.#request(message, 'history') as Promise<History>;
  }

  ping(n?: number): Promise<Pong> {
    return this.#request(
      n === undefined ? { type: 'ping' } : { type: 'ping', n },
      'pong',
    ) as Promise<Pong>;
  }

  /** Verifies a delivery (e.g. a history entry) like a live one, pinning on first use. */
  verifyDeliver(deliver: Deliver): Promise<VerificationResult> {
    return this.#verifier.verify(deliver);
  }

  /**
   * The orderly close (docs/PROTOCOL.md §8.4): everything queued is written, then `bye`; the
   * `receipt` is checked against our view and the pinned server key; `countersign` follows. Sends
   * still without `ack` are rejected. Safe to call more than once.
   */
  close(): Promise<CloseResult> {
    this.#closeResult ??= this.#close();
    return this.#closeResult;
  }

  get #accepting(): boolean {
    return !this.#closing && this.#state !== 'closed' && this.#state !== 'idle';
  }

  #request(message: RequestMessage, expect: AnswerType): Promise<ServerMessage> {
    if (!this.#accepting) {
      return Promise.reject(new ClientClosedError('the client is not connected'));
    }
    return this.#tracker.request(message, expect);
  }

  // ------------------------------------------------------------------ connection

  async #establish(): Promise<LoginOk> {
    const attempt = this.#establishOnce();
    this.#establishing = attempt;
    try {
      return await attempt;
    } finally {
      if (this.#establishing === attempt) this.#establishing = undefined;
    }
  }

  async #establishOnce(): Promise<LoginOk> {
    const client = this.#options;
    const { trust, pinAfterLogin } = await resolveServerTrust(this.address, client.trust);
    const action = this.#registered ? 'login' : (client.action ?? 'login');
    const log = new SessionLog(client.transcript, (error) => this.#reportError(error));
    return dialSession({
      client,
      trust,
      action,
      log,
      adopt: (opened, driver) =>
        this.#adopt({ driver, log, byeSent: false }, opened, action, pinAfterLogin),
    });
  }

  /** The handshake is done: this link is now the client's connection. */
  #adopt(
    link: Link,
    { session, serverFingerprint }: OpenedSession,
    action: 'login' | 'register',
    pinAfterLogin: string | undefined,
  ): SocketDriverHandlers {
    link.session = session;
    this.#link = link;
    this.#wasUp = true;
    if (action === 'register') this.#registered = true;
    this.#reconnector?.reset();
    if (pinAfterLogin !== undefined) {
      this.#options.trust.store
        .pin(this.address, pinAfterLogin)
        .catch((error: unknown) => this.#reportError(error));
    }
    link.log.open({
      sessionId: session.sessionId,
      server: this.address,
      serverFingerprint,
      username: session.username,
      h2: session.h2,
      startedAt: new Date(),
    });
    this.#lastTranscript = link.log.location ?? this.#lastTranscript;
    this.#setState('connected', { sessionId: session.sessionId });
    link.driver.startKeepAlive(this.#options.keepAliveMs ?? 60_000, () => {
      if (!this.#closing && this.#link === link) this.ping().catch(() => undefined);
    });
    // Whatever waited for the connection goes out now (and bye, if close() came meanwhile).
    this.#tracker.resume();
    return {
      frames: (frames) => {
        for (const frame of frames) if (!link.driver.destroyed) this.#onFrame(link, frame);
      },
      drain: () => {
        if (this.#link === link) this.#pump();
      },
      close: () => this.#onLinkLost(link),
    };
  }

  // ------------------------------------------------------------------ inbound

  #onFrame(link: Link, frame: RawFrame): void {
    let message: ServerMessage;
    try {
      const received = link.session!.receive(frame);
      message = received.message;
      if (received.receipt !== undefined) link.receipt = received.receipt;
    } catch (error) {
      // Always fatal inside a session (docs/PROTOCOL.md §6, §9): no resynchronisation, a new
      // handshake.
      link.driver.destroy(error as Error);
      return;
    }
    switch (message.type) {
      case 'ack':
        this.#tracker.onAck(message); // no match: timed out, or repeated after a resend
        return;
      case 'deliver':
        this.#deliveries.push(message, link.driver);
        return;
      case 'error': {
        const peerError = new PeerError(
          message.code,
          message.message,
          message.retry_after,
          message.id,
        );
        // The server closes after this (docs/PROTOCOL.md §9): remember why, then reconnect or give
        // up.
        if (closesConnection(message.code)) link.driver.blame(peerError);
        if (!this.#tracker.onError(message)) this.#reportError(peerError);
        return;
      }
      case 'joined':
      case 'left':
      case 'key':
      case 'history':
      case 'pong':
        if (!this.#tracker.onAnswer(message)) {
          this.#reportError(new Error(`an unexpected ${message.type} from the server was ignored`));
        }
        return;
      case 'key_update':
        return; // the session moved its receiving key (docs/PROTOCOL.md §5.3)
      case 'receipt':
        this.#answerReceipt(link);
        return;
    }
  }

  /**
   * Queued messages go out while the socket takes them; then `bye`, once due
   * (docs/PROTOCOL.md §8.4).
   */
  #pump(): void {
    const link = this.#link;
    const session = link?.session;
    if (link === undefined || session === undefined || session.state !== 'open') return;
    const { driver } = link;
    this.#tracker.flush({
      get writable() {
        return driver.writable;
      },
      // inserts key_update on schedule (docs/PROTOCOL.md §5.3)
      seal: (message) => session.send(message),
      write: (bytes) => driver.write(bytes),
    });
    if (driver.writable && !link.byeSent && this.#tracker.byeDue) {
      link.byeSent = true;
      driver.write(session.bye());
    }
  }

  // ------------------------------------------------------------------ loss, reconnect, close

  #onLinkLost(link: Link): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    const reason = link.driver.failure ?? new ConnectionClosedError('the connection was lost');
    if (this.#closing) {
      this.#closeWaiter?.(undefined);
      return;
    }
    void link.log.finish({ reason: 'connection_lost' });
    this.#tracker.connectionLost();
    this.#deliveries.answerAwaited(false);
    if (this.#reconnector === undefined || isFinalFailure(reason)) {
      this.#finalize(reason);
      return;
    }
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason: Error): void {
    const reconnector = this.#reconnector!;
    const next = reconnector.schedule(reason, () => {
      // The wait is over: dialling and the handshake take a while of their own.
      this.#setState('connecting', { attempt: reconnector.attempt });
      this.#establish().catch((error: unknown) => {
        if (this.#closing || this.#state === 'closed') return;
        if (isFinalFailure(error)) this.#finalize(error as Error);
        else this.#scheduleReconnect(error as Error);
      });
    });
    if (next === undefined) {
      this.#finalize(new ClientClosedError('gave up reconnecting', { cause: reason }));
      return;
    }
    const { maxAttempts } = reconnector.options;
    this.#setState('reconnecting', { ...next, maxAttempts, error: reason });
  }

  /** The client is done: every pending request fails, state `closed`. */
  #finalize(reason?: Error): void {
    this.#reconnector?.cancel();
    this.#tracker.failAll(ClientClosedError.because(reason));
    if (this.#state !== 'closed') {
      this.#setState('closed', reason === undefined ? {} : { error: reason });
      // A failed connect() is its own rejection; a reconnect's dial is `connecting` too.
      if (reason !== undefined && this.#wasUp && !this.#closing) this.#reportError(reason);
    }
  }

  async #close(): Promise<CloseResult> {
    this.#closing = true;
    this.#reconnector?.cancel();
    this.#link?.driver.stopKeepAlive();
    this.#tracker.startClosing();
    if (this.#establishing !== undefined) await this.#establishing.catch(() => undefined);

    const link = this.#link;
    const session = link?.session;
    if (link === undefined || session === undefined || this.#state !== 'connected') {
      this.#finalize();
      return { viewsMatch: false, signatureValid: false, receiptReceived: false };
    }
    const receipt = new Promise<ReceiptCheck | undefined>((resolve) => {
      this.#closeWaiter = resolve;
    });
    this.#pump(); // queued messages, then bye
    const grace = setTimeout(() => link.driver.destroy(), this.#requestTimeoutMs + CLOSE_GRACE_MS);
    const check = await receipt;
    clearTimeout(grace);
    // The server closes after countersign (docs/PROTOCOL.md §7.1).
    await link.driver.closedWithin(CLOSE_GRACE_MS);
    if (this.#link === link) this.#link = undefined;
    await link.log.finishWithReceipt(check);
    this.#finalize();
    return closeResult(check, session.sessionId, link.log.location);
  }

  /**
   * docs/PROTOCOL.md §8.4 step 3: countersign our own view, whatever the receipt said; then the
   * server closes.
   */
  #answerReceipt(link: Link): void {
    const check = link.receipt;
    if (check === undefined) return;
    try {
      link.driver.write(link.session!.countersign());
    } catch (error) {
      this.#reportError(error);
    }
    if (!check.signatureValid)
      this.#reportError(new ReceiptCheckError('receipt_signature_invalid'));
    else if (!check.viewsMatch) this.#reportError(new ReceiptCheckError('receipt_views_differ'));
    this.#closeWaiter?.(check);
  }

  // ------------------------------------------------------------------ events

  #setState(state: ClientState, detail: StateDetail): void {
    if (this.#state === state && state !== 'reconnecting') return;
    this.#state = state;
    this.emit('state', state, detail);
  }

  /** 'error' only reaches listeners: an unobserved client error must not crash the process. */
  #reportError(error: unknown): void {
    if (this.listenerCount('error') === 0) return;
    this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }
}
