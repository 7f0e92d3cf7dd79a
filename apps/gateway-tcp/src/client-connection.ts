import { randomBytes } from 'node:crypto';

import { type LoggerService } from '@nestjs/common';
import {
  type HandshakeResult,
  type MetricsRepository,
  type SecureChatConfig,
  type StoredMessage,
} from '@securechat/core';
import {
  closesConnection,
  type LoginDecision,
  type LoginRequest,
  MAX_HANDSHAKE_FRAME,
  PeerError,
  ProtocolError,
  type ServerHandshakeStep,
  ServerHandshake,
  type ServerMessage,
  type ServerReceived,
  ServerSession,
  toBase64,
} from '@securechat/protocol';

import { type ConnectionLimiter } from './connection-limiter';
import { ConnectionTranscript } from './connection-transcript';
import { DEFAULT_DELIVERY_SYNC_LIMITS, DeliverySync } from './delivery-sync';
import { type ByteStream, FramedSocket } from './framed-socket';
import { type ServerIdentityKey } from './identity-key.repository';
import { type CheckedSend, errorFor, RequestHandler, toDeliver } from './request-handler';
import { type AuthClient, type RelayClient } from './service-clients';
import { type DeliveryTarget, type SessionRegistry } from './session-registry';
import { type TranscriptShipper } from './transcript-shipper';

export interface ConnectionDeps {
  readonly config: SecureChatConfig;
  readonly identity: ServerIdentityKey;
  readonly auth: Pick<AuthClient, 'login' | 'getKey'>;
  readonly relay: Pick<
    RelayClient,
    'sendBatch' | 'delivered' | 'pending' | 'join' | 'leave' | 'history'
  >;
  readonly registry: SessionRegistry;
  readonly limiter: Pick<ConnectionLimiter, 'tryStartSession' | 'endSession' | 'endHandshake'>;
  readonly transcripts: Pick<TranscriptShipper, 'open' | 'record' | 'close' | 'mode'>;
  readonly metrics: MetricsRepository;
  /** This connection's logger: every line carries its id and remote address. */
  readonly logger: (connectionId: string) => LoggerService;
  readonly now: () => number;
  /** Called once the user is logged in and the session registered. */
  readonly onSessionStart: (connection: ClientConnection) => void;
  /** Called once when the connection is gone, whatever the reason. */
  readonly onClosed: (connection: ClientConnection) => void;
}

type Phase = 'handshake' | 'session' | 'closing' | 'closed';

/** One record read from the client, or why it could not be read; in arrival order. */
type Received = ServerReceived | { readonly failure: unknown };

/** How long a client has to countersign after the receipt. */
const COUNTERSIGN_TIMEOUT_MS = 10_000;
/** How long a shutdown waits for the request being handled before it sends the error anyway. */
const SHUTDOWN_DRAIN_MS = 2_000;
/** A frame started but not finished within this time is a stalled peer (§9). */
const FRAME_STALL_TIMEOUT_MS = 30_000;
/** Answers waiting for the peer above which no further request is handled until it reads. */
const REPLY_WRITE_AHEAD_BYTES = 64 * 1024;

/**
 * One client connection, in phases: handshake (libs/protocol's ServerHandshake, with the
 * login decided by auth), session, closing (receipt sent, countersign awaited), closed. The
 * parts do the work — FramedSocket the bytes and their bounds, RequestHandler the rules of
 * each request, DeliverySync the backlog and live fan-out, ConnectionTranscript the records —
 * and this class orders them.
 *
 * Requests are handled in arrival order, one unit at a time; a run of consecutive `send`s is
 * one unit, stored by the relay in one batch while the next sends are read, so a client with
 * many sends in flight pays one round trip per batch, not per message (§6 order per sender
 * holds: one batch of a connection is with the relay at a time).
 */
export class ClientConnection implements DeliveryTarget {
  readonly id = randomBytes(6).toString('hex');
  readonly sessionId = `s-${randomBytes(12).toString('base64url')}`;
  readonly remoteAddress: string;
  readonly #deps: ConnectionDeps;
  readonly #logger: LoggerService;
  readonly #framed: FramedSocket;
  readonly #handshake: ServerHandshake;
  readonly #transcript: ConnectionTranscript;
  #session: ServerSession | undefined;
  #requests: RequestHandler | undefined;
  #delivery: DeliverySync | undefined;
  #phase: Phase = 'handshake';
  /** The pump's current run, while one is going (see #pump). */
  #pumping: Promise<void> | undefined;
  /** A record read past the end of a batch, handled next. */
  #lookahead: Received | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #countersignTimer: NodeJS.Timeout | undefined;
  #inHandshakeSlot = true;
  /** When the login record arrived (auth's decision is about the account as it was then). */
  #loginStartedAt = 0;
  /** The user whose session slot this connection holds (ConnectionLimiter), once logged in. */
  #sessionSlotUser: string | undefined;
  #shuttingDown = false;
  /** How the handshake ended, when it ended otherwise than by a protocol failure. */
  #handshakeResult: HandshakeResult | undefined;

  constructor(socket: ByteStream & { readonly remoteAddress?: string }, deps: ConnectionDeps) {
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#deps = deps;
    this.#logger = deps.logger(this.id);
    const { limits, gatewayId } = deps.config;
    this.#framed = new FramedSocket(
      socket,
      {
        maxFrame: limits.maxFrame,
        maxInboundFrames: limits.maxInboundFrames,
        maxInboundBytes: limits.maxInboundBytes,
        writeStallTimeoutMs: limits.writeStallTimeoutMs,
        frameStallTimeoutMs: FRAME_STALL_TIMEOUT_MS,
        idleTimeoutMs: limits.idleTimeoutMs,
      },
      deps.now,
    );
    this.#transcript = new ConnectionTranscript({
      sessionId: this.sessionId,
      gateway: gatewayId,
      shipper: deps.transcripts,
      now: deps.now,
    });
    this.#handshake = new ServerHandshake({
      identity: { privateKey: deps.identity.privateKey },
      sessionId: this.sessionId,
      now: deps.now,
      maxFrame: limits.maxFrame,
      limits: { maxBodyBytes: limits.maxBodyBytes },
      verifyLogin: (request) => this.#verifyLogin(request),
      session: { onRecord: (event) => this.#transcript.record(event) },
    });
  }

  /** The logged-in user (DeliveryTarget); empty before login. */
  get username(): string {
    return this.#session?.username ?? '';
  }

  get phase(): Phase {
    return this.#phase;
  }

  get loginStartedAt(): number {
    return this.#loginStartedAt;
  }

  /** Whether the user logged in on this connection (presence needs to know on close). */
  get hadSession(): boolean {
    return this.#sessionSlotUser !== undefined || this.#transcript.opened;
  }

  start(): void {
    const { limits } = this.#deps.config;
    this.#logger.debug?.('accepted');
    // Nothing before login is large (§9: bound what a connection may hold).
    this.#framed.maxFrame = Math.min(MAX_HANDSHAKE_FRAME, limits.maxFrame);
    this.#framed.start({
      readable: () => this.#onReadable(),
      framingError: (error) => this.#protocolFailure(error),
      ended: () => void this.#pump(),
      closed: (reason, dropped) => {
        if (dropped) this.#logger.warn(`dropped: ${reason}`);
        this.#close(reason);
      },
    });
    // No key is made or signed for a peer that does not say client_hello soon (§3).
    this.#helloTimer = setTimeout(
      () => this.#handshakeTimedOut('client_hello not received in time'),
      limits.helloTimeoutMs,
    );
    this.#handshakeTimer = setTimeout(
      () => this.#handshakeTimedOut('login not received in time'),
      limits.handshakeTimeoutMs,
    );
  }

  /** Fan-out (§6): a `deliver` for this session, written or held by the delivery sync. */
  deliver(message: StoredMessage): void {
    this.#delivery?.deliver(message);
  }

  /**
   * Sends every message still pending for this user again. Called when the fan-out channel
   * came back from an outage (it is at most once); recipients drop duplicates by msg_id (§6).
   */
  async resync(): Promise<void> {
    if (this.#phase === 'session') await this.#delivery?.resync();
  }

  /** Ends the connection from our side with an error the client can read (e.g. shutting_down). */
  shutdown(code: 'shutting_down' | 'internal', message: string): void {
    if (this.#phase === 'handshake') {
      this.#finishHandshakeStep(this.#handshake.abort(code, message));
      return;
    }
    if (this.#phase === 'closed' || this.#shuttingDown) return;
    this.#shuttingDown = true;
    // The request being handled is answered first — a send being stored gets its ack, which
    // the client is owed — but nothing more is read. Bounded: a stuck service call must not
    // hold the error back (the client then resends unacked messages; sends are idempotent).
    this.#framed.pauseReading();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_DRAIN_MS);
    });
    void Promise.race([this.#pumping ?? Promise.resolve(), bound]).then(() => {
      clearTimeout(timer);
      this.#reply(ServerSession.errorMessage(code, message));
      this.#close(code);
    });
  }

  // ------------------------------------------------------------------ the pump

  #onReadable(): void {
    if (this.#phase === 'handshake' && this.#handshake.state === 'verifying') {
      this.#earlyFrame();
      return;
    }
    void this.#pump();
  }

  /**
   * Handles what has arrived, one unit of work at a time, until nothing is left; one run at
   * a time. Between units it waits while the peer has not read our answers (backpressure:
   * the inbound bound then pauses reading).
   */
  #pump(): Promise<void> {
    if (this.#pumping) return this.#pumping;
    // Set before the run starts: records must be opened strictly in order (§5), by one reader.
    let finished!: () => void;
    this.#pumping = new Promise((resolve) => (finished = resolve));
    void this.#runPump().finally(() => {
      this.#pumping = undefined;
      finished();
      // The peer finished sending (half-close) and all it sent is answered: close.
      const idle = !this.#framed.hasFrame && this.#lookahead === undefined;
      if (this.#framed.inputEnded && idle && this.#phase !== 'closed') this.#close('peer ended');
    });
    return this.#pumping;
  }

  async #runPump(): Promise<void> {
    try {
      while (this.#phase !== 'closed' && !this.#shuttingDown) {
        if (this.#phase === 'handshake') {
          const frame = this.#framed.next();
          if (!frame) return;
          await this.#handshakeStep(frame);
          continue;
        }
        if (this.#framed.outboundBytes > REPLY_WRITE_AHEAD_BYTES) await this.#framed.drained();
        const received = this.#read();
        if (!received) return;
        await this.#handleRecord(received);
      }
    } catch (error) {
      this.#logger.error(`unexpected failure: ${(error as Error).stack ?? String(error)}`);
      this.#close('internal error', true);
    }
  }

  /** The next record from the client, opened by the session (§5), or why not. */
  #read(): Received | undefined {
    const ahead = this.#lookahead;
    if (ahead) {
      this.#lookahead = undefined;
      return ahead;
    }
    const frame = this.#framed.next();
    if (!frame) return undefined;
    try {
      return this.#session!.receive(frame);
    } catch (failure) {
      return { failure };
    }
  }

  async #handleRecord(received: Received): Promise<void> {
    if ('failure' in received) {
      this.#requestFailure(received.failure);
      return;
    }
    if (received.countersign) {
      this.#transcript.countersigned(received.countersign);
      this.#close(`closed: transcript ${received.countersign.outcome}`);
      return;
    }
    const { message } = received;
    switch (message.type) {
      case 'send':
        return this.#sendBatch(this.#requests!.checkSend(message));
      case 'delivered':
        return this.#delivered(message.msg_id);
      case 'bye':
        return this.#bye();
      case 'countersign':
        return; // ServerSession answers it with `countersign` above, after the receipt
      default:
        this.#replyAll([await this.#requests!.handle(message)]);
    }
  }

  /**
   * A run of consecutive sends, gathered from what has already arrived (at most one inbound
   * bound's worth: no new queue), stored in one relay call, answered in request order.
   */
  async #sendBatch(first: CheckedSend): Promise<void> {
    const batch = [first];
    while (batch.length < this.#deps.config.limits.maxInboundFrames) {
      const next = this.#read();
      if (!next) break;
      if ('failure' in next || next.message.type !== 'send') {
        this.#lookahead = next;
        break;
      }
      batch.push(this.#requests!.checkSend(next.message));
    }
    this.#replyAll(await this.#requests!.sendBatch(batch));
  }

  /** A run of consecutive `delivered`, confirmed together. */
  async #delivered(first: string): Promise<void> {
    const ids = [first];
    while (ids.length < this.#deps.config.limits.maxInboundFrames) {
      const next = this.#read();
      if (!next) break;
      if ('failure' in next || next.message.type !== 'delivered') {
        this.#lookahead = next;
        break;
      }
      ids.push(next.message.msg_id);
    }
    this.#replyAll(await this.#requests!.delivered(ids));
  }

  /** §7: nothing follows `bye` but the receipt; the client has a while to countersign. */
  #bye(): void {
    this.#phase = 'closing';
    this.#deps.registry.remove(this);
    this.#delivery?.stop();
    this.#framed.write(this.#session!.receipt());
    this.#countersignTimer = setTimeout(
      () => this.#close('no countersign'),
      COUNTERSIGN_TIMEOUT_MS,
    );
  }

  // ------------------------------------------------------------------ handshake (§3)

  async #handshakeStep(frame: Parameters<ServerHandshake['receive']>[0]): Promise<void> {
    const handshake = this.#handshake;
    if (handshake.state === 'expect_client_hello') clearTimeout(this.#helloTimer);
    // §10.10: the timeout runs until `login` arrives; the decision has its own deadline.
    else if (handshake.state === 'expect_login') clearTimeout(this.#handshakeTimer);
    const decided = handshake.receive(frame);
    // A frame that came with the login is already one too many (§10.14).
    if (handshake.state === 'verifying' && this.#framed.hasFrame) this.#earlyFrame();
    const step = await decided;
    // The peer may have gone while auth was deciding: never resurrect a closed connection.
    if (this.#phase !== 'handshake') return;
    this.#finishHandshakeStep(step);
    if (this.#session) this.#startSession(this.#session);
  }

  /** §10.14: nothing may come before the login decision; we hold none of it. */
  #earlyFrame(): void {
    this.#framed.pauseReading();
    this.#finishHandshakeStep(
      this.#handshake.abort('unexpected_message', 'nothing may be sent before the login decision'),
    );
  }

  #handshakeTimedOut(message: string): void {
    if (this.#phase !== 'handshake') return;
    const state = this.#handshake.state;
    if (state !== 'expect_client_hello' && state !== 'expect_login') return;
    this.#handshakeResult = 'timeout';
    this.#deps.metrics.authFailure('timeout');
    this.#finishHandshakeStep(this.#handshake.abort('handshake_timeout', message));
  }

  async #verifyLogin(request: LoginRequest): Promise<LoginDecision> {
    const { auth, limiter, now } = this.#deps;
    this.#loginStartedAt = now();
    try {
      const result = await auth.login({
        action: request.action,
        username: request.username,
        password: request.password,
        signature: toBase64(request.signature),
        ...(request.publicKey ? { publicKey: toBase64(request.publicKey) } : {}),
        h2: toBase64(request.h2),
        sourceAddress: this.remoteAddress,
      });
      if (result.ok) {
        if (this.#phase === 'closed') return { ok: false, code: 'internal' }; // peer left meanwhile
        // Take the session slot before login_ok goes out, so a full server says so properly.
        const slot = limiter.tryStartSession(request.username);
        if (slot !== 'ok') {
          // Both are "come back later" (§9 rate_limited); a user at its cap frees a slot by
          // closing one of its sessions, which takes longer than a busy server.
          this.#refused(slot);
          return { ok: false, code: 'rate_limited', retryAfter: slot === 'server_full' ? 5 : 30 };
        }
        this.#sessionSlotUser = request.username;
        return { ok: true, publicKey: Buffer.from(result.publicKey, 'base64') };
      }
      this.#refused(result.code);
      return {
        ok: false,
        code: result.code,
        ...(result.retryAfter ? { retryAfter: result.retryAfter } : {}),
      };
    } catch (error) {
      this.#logger.error(`auth service unavailable: ${(error as Error).message}`);
      this.#refused('unavailable');
      return { ok: false, code: 'internal' };
    }
  }

  #refused(reason: Parameters<MetricsRepository['authFailure']>[0]): void {
    this.#handshakeResult = 'refused';
    this.#deps.metrics.authFailure(reason);
  }

  #finishHandshakeStep(step: ServerHandshakeStep): void {
    for (const bytes of step.send) this.#framed.write(bytes);
    if (step.error instanceof PeerError) {
      this.#close(`client sent error ${step.error.code}`);
    } else if (step.error) {
      this.#close(`handshake failed: ${step.error.code}`);
    } else if (step.close) {
      this.#close('handshake closed');
    } else if (step.session) {
      this.#session = step.session;
    }
  }

  /** §6: the session is live; its backlog goes out while requests are handled. */
  #startSession(session: ServerSession): void {
    const deps = this.#deps;
    const framed = this.#framed;
    clearTimeout(this.#handshakeTimer);
    this.#releaseHandshakeSlot();
    this.#phase = 'session';
    framed.maxFrame = deps.config.limits.maxFrame;
    deps.metrics.handshake('ok');
    this.#transcript.open(session);
    this.#requests = new RequestHandler(session, deps, this.#logger);
    this.#delivery = new DeliverySync(
      session.username,
      (query) => deps.relay.pending(query),
      {
        send: (message) => this.#sendDeliver(message),
        get outboundBytes() {
          return framed.outboundBytes;
        },
        drained: () => framed.drained(),
      },
      { ...DEFAULT_DELIVERY_SYNC_LIMITS, maxOutboundBytes: deps.config.limits.maxOutboundBytes },
      this.#logger,
    );
    deps.registry.add(this);
    deps.onSessionStart(this);
    this.#logger.log({ msg: 'logged in', user: session.username, session: this.sessionId });
    void this.#delivery.start();
  }

  // ------------------------------------------------------------------ output

  #sendDeliver(message: StoredMessage): boolean {
    const session = this.#session!;
    if (this.#phase !== 'session' || session.state !== 'open') return false;
    const deliver = toDeliver(message);
    if (!session.fits(deliver)) {
      this.#logger.error(`message ${message.msg_id} does not fit max_frame; left pending`);
      return false;
    }
    this.#framed.write(session.send(deliver));
    this.#deps.metrics.messageDelivered(this.#deps.now() - message.server_ts);
    return true;
  }

  #replyAll(messages: readonly (ServerMessage | undefined)[]): void {
    for (const message of messages) if (message) this.#reply(message);
  }

  /** An answer to a request; also between reading `bye` and the receipt (ServerSession.send). */
  #reply(message: ServerMessage): void {
    const state = this.#session?.state;
    if (this.#phase === 'closed' || (state !== 'open' && state !== 'closing')) return;
    this.#framed.write(this.#session!.send(message));
  }

  // ------------------------------------------------------------------ errors

  /** A failure while reading a request: answer it, and close when §2 says so. */
  #requestFailure(error: unknown): void {
    if (!(error instanceof ProtocolError)) {
      this.#logger.error(`request failed: ${(error as Error).stack ?? String(error)}`);
      this.#reply(ServerSession.errorMessage('internal', 'internal error'));
      return;
    }
    const session = this.#session!;
    const fatal = error.silent || closesConnection(error.code) || session.state === 'closed';
    if (!fatal) {
      this.#reply(errorFor(error));
      return;
    }
    // §2: a fatal error is said once, as a record, then the connection closes (§5: silently
    // when the record layer itself failed).
    const last = session.finalError(error);
    if (last) this.#framed.write(last);
    this.#close(`protocol error: ${error.code} (${error.message})`);
  }

  /** A framing failure (§2): tell the peer in the current encoding, then close. */
  #protocolFailure(error: ProtocolError): void {
    if (this.#phase === 'handshake') {
      this.#finishHandshakeStep(this.#handshake.abort(error.code, error.message));
      return;
    }
    this.#requestFailure(error);
    this.#close(`protocol error: ${error.code}`);
  }

  // ------------------------------------------------------------------ teardown

  #releaseHandshakeSlot(): void {
    if (this.#inHandshakeSlot) {
      this.#inHandshakeSlot = false;
      this.#deps.limiter.endHandshake(this.remoteAddress);
    }
  }

  #close(reason: string, destroy = false): void {
    if (this.#phase === 'closed') return;
    const deps = this.#deps;
    if (this.#phase === 'handshake') {
      this.#handshake.abort('internal', 'connection closed');
      deps.metrics.handshake(this.#handshakeResult ?? 'failed');
    }
    this.#phase = 'closed';
    for (const timer of [this.#helloTimer, this.#handshakeTimer, this.#countersignTimer]) {
      clearTimeout(timer);
    }
    this.#releaseHandshakeSlot();
    if (this.#sessionSlotUser !== undefined) {
      deps.limiter.endSession(this.#sessionSlotUser);
      this.#sessionSlotUser = undefined;
    }
    deps.registry.remove(this);
    this.#delivery?.stop();
    this.#lookahead = undefined;
    if (this.#session) this.#transcript.close(this.#session);
    this.#framed.close(reason, destroy);
    this.#logger.debug?.({ msg: 'closed', reason });
    deps.onClosed(this);
  }
}
