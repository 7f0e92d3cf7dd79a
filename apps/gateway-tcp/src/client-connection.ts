import { randomBytes } from 'node:crypto';
import { type Socket } from 'node:net';

import { type LoggerService } from '@nestjs/common';
import {
  type HandshakeResult,
  type MetricsRepository,
  type SecureChatConfig,
  ServiceUnavailableError,
  type StoredMessage,
  type TranscriptView as TranscriptViewDto,
} from '@securechat/core';
import {
  type ClientMessage,
  closesConnection,
  type Deliver,
  FrameDecoder,
  HISTORY_LIMIT_DEFAULT,
  type LoginDecision,
  type LoginRequest,
  PeerError,
  ProtocolError,
  type RawFrame,
  type RecordEvent,
  type ServerHandshakeStep,
  ServerHandshake,
  ServerSession,
  serializeJson,
  toBase64,
} from '@securechat/protocol';

import { type ConnectionLimiter } from './connection-limiter';
import { type ServerIdentityKey } from './identity-key.repository';
import { protocolErrorFor, type ServiceFailure } from './request-errors';
import { type AuthClient, type RelayClient } from './service-clients';
import { type DeliveryTarget, type SessionRegistry } from './session-registry';
import { type TranscriptShipper } from './transcript-shipper';

/** Bytes gathered under cork before they are handed to the kernel without waiting for the turn's end. */
const CORK_FLUSH_BYTES = 16 * 1024;

export interface ConnectionDeps {
  readonly config: SecureChatConfig;
  readonly identity: ServerIdentityKey;
  readonly auth: AuthClient;
  readonly relay: RelayClient;
  readonly registry: SessionRegistry;
  readonly limiter: ConnectionLimiter;
  readonly transcripts: TranscriptShipper;
  readonly metrics: MetricsRepository;
  /** This connection's logger: every line carries its id and remote address. */
  readonly logger: (connectionId: string) => LoggerService;
  readonly now: () => number;
  /** Called once the user is logged in and the session registered. */
  readonly onSessionStart: (connection: ClientConnection) => void;
  /** Called once when the connection is gone, whatever the reason. */
  readonly onClosed: (connection: ClientConnection) => void;
}

type Phase = 'handshake' | 'syncing' | 'session' | 'closing' | 'closed';

/** Pending messages fetched per relay call after login. */
const PENDING_PAGE = 200;
/** How long a client has to countersign after the receipt. */
const COUNTERSIGN_TIMEOUT_MS = 10_000;
/** Frames read ahead of the one being handled before we stop reading the socket. */
const MAX_QUEUED_FRAMES = 32;
/** How long a shutdown waits for requests already read before it sends the error anyway. */
const SHUTDOWN_DRAIN_MS = 2_000;
/** A frame started but not finished within this time is a stalled peer (§9). */
const FRAME_STALL_TIMEOUT_MS = 30_000;

/**
 * One TCP connection: feeds bytes to the frame decoder, frames to the handshake and then the
 * session (libs/protocol does the protocol; this class does the I/O, the timers, the limits and
 * the calls to auth and relay). Requests are handled one at a time, in order; deliveries from
 * fan-out are written as they come.
 */
export class ClientConnection implements DeliveryTarget {
  readonly id = randomBytes(6).toString('hex');
  readonly sessionId = `s-${randomBytes(12).toString('base64url')}`;
  readonly remoteAddress: string;
  readonly #logger: LoggerService;
  readonly #decoder: FrameDecoder;
  readonly #handshake: ServerHandshake;
  #session: ServerSession | undefined;
  #phase: Phase = 'handshake';
  #queue: Promise<void> = Promise.resolve();
  #handshakeTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #countersignTimer: NodeJS.Timeout | undefined;
  #inHandshakeSlot = true;
  /** Whether writes of this event-loop turn are being gathered (see #write). */
  #corked = false;
  /** When the login record arrived (auth's decision is about the account as it was then). */
  #loginStartedAt = 0;
  /** The user whose session slot this connection holds (ConnectionLimiter), once logged in. */
  #sessionSlotUser: string | undefined;
  /** Records seen before the transcript row is opened (login_ok comes out of the handshake). */
  #earlyRecords: RecordEvent[] = [];
  #transcriptOpen = false;
  #position = 0;
  /** Live deliveries that arrive while the pending backlog is being sent (§6 order). */
  #heldDeliveries: StoredMessage[] = [];
  #sentDuringSync = new Set<string>();
  #finalStatus: 'agreed' | 'disputed' | undefined;
  #queued = 0;
  /** Why reading is paused: our output backed up, too many requests waiting, or shutting down. */
  readonly #pausedFor = new Set<'output' | 'queue' | 'shutdown'>();
  #shuttingDown = false;
  #clientView: TranscriptViewDto | undefined;
  #countersignature: string | undefined;
  /** How the handshake ended, when it ended otherwise than by a protocol failure. */
  #handshakeResult: HandshakeResult | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#logger = deps.logger(this.id);
    const { config } = deps;
    this.#decoder = new FrameDecoder({ maxFrame: config.limits.maxFrame });
    this.#handshake = new ServerHandshake({
      identity: { privateKey: deps.identity.privateKey },
      sessionId: this.sessionId,
      now: deps.now,
      maxFrame: config.limits.maxFrame,
      limits: { maxBodyBytes: config.limits.maxBodyBytes },
      verifyLogin: (request) => this.#verifyLogin(request),
      session: { onRecord: (event) => this.#onRecord(event) },
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
    return this.#sessionSlotUser !== undefined || this.#transcriptOpen;
  }

  start(): void {
    const { socket, deps } = this;
    this.#logger.debug?.('accepted');
    socket.setNoDelay(true);
    socket.setTimeout(deps.config.limits.idleTimeoutMs, () => this.#close('idle timeout'));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // The peer finished sending (half-close): answer what it sent, then close.
    socket.on('end', () => {
      void this.#queue.then(() => this.#close('peer ended'));
    });
    socket.on('error', (error) => this.#close(`socket error: ${error.message}`));
    socket.on('close', () => this.#close('socket closed'));
    socket.on('drain', () => this.#setReading('output', true));
    this.#handshakeTimer = setTimeout(() => {
      if (this.#phase === 'handshake') {
        this.#handshakeResult = 'timeout';
        this.deps.metrics.authFailure('timeout');
        this.#finishHandshakeStep(
          this.#handshake.abort('handshake_timeout', 'login not received in time'),
        );
      }
    }, deps.config.limits.handshakeTimeoutMs);
  }

  /** Fan-out (§6): write a `deliver` to this session, or hold it while the backlog goes out. */
  deliver(message: StoredMessage): void {
    if (this.#phase === 'syncing') {
      this.#heldDeliveries.push(message);
      return;
    }
    if (this.#phase !== 'session' || this.#session?.state !== 'open') return;
    this.#sendDeliver(message);
  }

  /** Ends the connection from our side with an error the client can read (e.g. shutting_down). */
  shutdown(code: 'shutting_down' | 'internal', message: string): void {
    if (this.#phase === 'handshake') {
      this.#finishHandshakeStep(this.#handshake.abort(code, message));
      return;
    }
    if (this.#phase === 'closed' || this.#shuttingDown) return;
    this.#shuttingDown = true;
    // Requests already read are answered first — a send being stored gets its ack, which the
    // client is owed — but nothing more is read. Bounded: a stuck service call must not hold
    // the error back (the client then resends unacked messages; sends are idempotent).
    this.#setReading('shutdown', false);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_DRAIN_MS);
    });
    void Promise.race([this.#queue, bound]).then(() => {
      clearTimeout(timer);
      if (this.#session?.state === 'open') {
        this.#write(this.#session.send(ServerSession.errorMessage(code, message)));
      }
      this.#close(code);
    });
  }

  // ------------------------------------------------------------------ input

  #onData(chunk: Buffer): void {
    if (this.#phase === 'closed') return;
    let frames: RawFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#protocolFailure(error);
      return;
    }
    this.#watchStall();
    for (const frame of frames) {
      this.#queued += 1;
      this.#queue = this.#queue
        .then(() => this.#onFrame(frame))
        .catch((error: unknown) => {
          this.#logger.error(`unexpected failure: ${(error as Error).stack ?? String(error)}`);
          this.#close('internal error', true);
        })
        .finally(() => {
          this.#queued -= 1;
          if (this.#queued === 0) this.#setReading('queue', true);
        });
    }
    // Requests are handled one at a time; stop reading while some wait, so one client cannot
    // park an unbounded backlog in our memory (§9: bound what a connection may hold).
    if (this.#queued >= MAX_QUEUED_FRAMES) this.#setReading('queue', false);
  }

  /** Drops a peer that starts a frame and never finishes it (§9). */
  #watchStall(): void {
    if (!this.#decoder.midFrame) {
      if (this.#stallTimer) clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    } else if (!this.#stallTimer) {
      this.#stallTimer = setTimeout(() => this.#close('stalled mid-frame'), FRAME_STALL_TIMEOUT_MS);
    }
  }

  async #onFrame(frame: RawFrame): Promise<void> {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'handshake') {
      if (this.#handshake.state === 'expect_login') {
        // §3: the timeout runs until `login` arrives; verification has its own deadline.
        clearTimeout(this.#handshakeTimer);
      }
      const step = await this.#handshake.receive(frame);
      // The peer may have gone while auth was deciding: never resurrect a closed connection.
      if (this.#phase !== 'handshake') return;
      this.#finishHandshakeStep(step);
      if (this.#session) await this.#afterLogin();
      return;
    }
    try {
      const received = this.#session!.receive(frame);
      if (received.countersign) {
        const check = received.countersign;
        this.#finalStatus = check.outcome;
        this.#clientView = {
          c2sCount: check.clientView.c2sCount,
          c2sChain: toBase64(check.clientView.c2sChain),
          s2cCount: check.clientView.s2cCount,
          s2cChain: toBase64(check.clientView.s2cChain),
        };
        this.#countersignature = toBase64(check.clientSignature);
        this.#close(`closed: transcript ${check.outcome}`);
        return;
      }
      await this.#handle(received.message);
    } catch (error) {
      this.#requestFailure(error);
    }
  }

  // ------------------------------------------------------------------ handshake

  async #verifyLogin(request: LoginRequest): Promise<LoginDecision> {
    this.#loginStartedAt = this.deps.now();
    try {
      const result = await this.deps.auth.login({
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
        const slot = this.deps.limiter.tryStartSession(request.username);
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
    this.deps.metrics.authFailure(reason);
  }

  #finishHandshakeStep(step: ServerHandshakeStep): void {
    for (const bytes of step.send) this.#write(bytes);
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

  /** §6: right after login_ok, every undelivered message, in order; then live fan-out. */
  async #afterLogin(): Promise<void> {
    const session = this.#session!;
    clearTimeout(this.#handshakeTimer);
    this.#releaseHandshakeSlot();
    this.#phase = 'syncing';
    this.deps.metrics.handshake('ok');
    this.deps.transcripts.open({
      sessionId: this.sessionId,
      username: session.username,
      gateway: this.deps.config.gatewayId,
      mode: this.deps.transcripts.mode,
      h2: toBase64(session.h2),
      startedAt: this.deps.now(),
    });
    this.#transcriptOpen = true;
    for (const event of this.#earlyRecords.splice(0)) this.#onRecord(event);
    this.deps.registry.add(this);
    this.deps.onSessionStart(this);
    this.#logger.log({ msg: 'logged in', user: session.username, session: this.sessionId });

    await this.#sendPending(() => this.#phase === 'syncing', this.#sentDuringSync);
    if (this.#phase !== 'syncing') return;
    this.#phase = 'session';
    for (const message of this.#heldDeliveries.splice(0)) {
      if (!this.#sentDuringSync.has(message.msg_id)) this.#sendDeliver(message);
    }
    this.#sentDuringSync.clear();
  }

  /**
   * Sends every message still pending for this user again. Called when the fan-out channel
   * came back from an outage (it is at most once); recipients drop duplicates by msg_id (§6).
   */
  async resync(): Promise<void> {
    if (this.#phase !== 'session') return;
    await this.#sendPending(() => this.#phase === 'session' && this.#session?.state === 'open');
  }

  /** Pages through the relay's pending list and delivers it, oldest first, while `stillWanted`. */
  async #sendPending(stillWanted: () => boolean, sent?: Set<string>): Promise<void> {
    const username = this.#session!.username;
    try {
      let after: string | undefined;
      for (;;) {
        const page = await this.deps.relay.pending({
          username,
          limit: PENDING_PAGE,
          ...(after === undefined ? {} : { after }),
        });
        for (const message of page.messages) {
          if (!stillWanted()) return;
          sent?.add(message.msg_id);
          this.#sendDeliver(message);
        }
        if (page.messages.length < PENDING_PAGE) return;
        after = page.messages.at(-1)!.msg_id;
      }
    } catch (error) {
      // The session stays usable; what was not sent stays pending for the next login.
      this.#logger.warn(`pending messages not loaded: ${(error as Error).message}`);
    }
  }

  // ------------------------------------------------------------------ requests (§6)

  async #handle(message: ClientMessage): Promise<void> {
    const session = this.#session!;
    const { relay, auth } = this.deps;
    switch (message.type) {
      case 'ping':
        this.#reply({ type: 'pong', ...(message.n === undefined ? {} : { n: message.n }) });
        return;
      case 'key_update':
        return; // the session already switched its receiving key (§4)
      case 'send': {
        if (message.body.includes('\u0000')) {
          // PostgreSQL text cannot hold U+0000 (docs/PROTOCOL.md §10): refuse it here, alone,
          // rather than fail the relay's whole batch.
          throw new ProtocolError('bad_request', 'body: U+0000 is not supported', {
            id: message.id,
          });
        }
        const widest = toDeliver({ ...WIDEST_STORED, ...message, from: session.username });
        if (!session.fits(widest)) {
          // It would be stored but could never be delivered (docs/PROTOCOL.md §10).
          throw new ProtocolError('too_large', 'body: the message would not fit one frame', {
            id: message.id,
          });
        }
        if (!session.verifySendSignature(message)) {
          throw new ProtocolError('bad_request', 'sig: does not verify with your key', {
            id: message.id,
          });
        }
        const result = await this.#call(
          () =>
            relay.send({
              from: session.username,
              id: message.id,
              to: message.to,
              body: message.body,
              ts: message.ts,
              sig: message.sig,
            }),
          message.id,
        );
        if (!result.ok) return this.#refuse(result.code, message.id);
        this.#reply({
          type: 'ack',
          id: message.id,
          msg_id: result.msgId,
          server_ts: result.serverTs,
        });
        return;
      }
      case 'delivered':
        await this.#call(() => relay.delivered(session.username, message.msg_id));
        return;
      case 'join': {
        const result = await this.#call(() =>
          relay.join({ username: session.username, room: message.room }),
        );
        const joined = { type: 'joined' as const, room: result.room, members: result.members };
        // A room too large to list in one frame (docs/PROTOCOL.md §10): list as many as fit.
        while (!session.fits(joined)) {
          joined.members = joined.members.slice(0, Math.floor(joined.members.length * 0.9));
        }
        this.#reply(joined);
        return;
      }
      case 'leave': {
        const result = await this.#call(() =>
          relay.leave({ username: session.username, room: message.room }),
        );
        if (!result.ok) return this.#refuse(result.code);
        this.#reply({ type: 'left', room: result.room });
        return;
      }
      case 'get_key': {
        const result = await this.#call(() => auth.getKey(message.user));
        if (!result.ok) return this.#refuse(result.code);
        this.#reply({
          type: 'key',
          user: result.user,
          public_key: result.publicKey,
          fingerprint: result.fingerprint,
        });
        return;
      }
      case 'history': {
        const result = await this.#call(() =>
          relay.history({
            username: session.username,
            with: message.with,
            limit: message.limit ?? HISTORY_LIMIT_DEFAULT,
            ...(message.before === undefined ? {} : { before: message.before }),
          }),
        );
        if (!result.ok) return this.#refuse(result.code);
        const messages = this.#newestThatFit(result.with, result.messages);
        this.#reply({ type: 'history', with: result.with, messages });
        return;
      }
      case 'bye': {
        this.#phase = 'closing';
        this.deps.registry.remove(this);
        this.#write(session.receipt());
        this.#countersignTimer = setTimeout(
          () => this.#close('no countersign'),
          COUNTERSIGN_TIMEOUT_MS,
        );
        return;
      }
      case 'countersign':
        return; // handled in #onFrame, before requests
    }
  }

  /**
   * The newest messages of a history page that fit one frame, oldest first (docs/PROTOCOL.md
   * §10: 200 bodies of 16 KiB cannot). Linear: each entry is measured once. A message too
   * large to fit even alone is skipped, not allowed to empty the page.
   */
  #newestThatFit(withWhom: string, messages: StoredMessage[]): Deliver[] {
    const room = this.#session!.maxPlaintextBytes;
    const envelope = serializeJson({ type: 'history', with: withWhom, messages: [] }).length;
    let budget = room - envelope;
    const kept: Deliver[] = [];
    for (let i = messages.length - 1; i >= 0; i--) {
      const deliver = toDeliver(messages[i]!);
      const size = serializeJson(deliver).length + (kept.length > 0 ? 1 : 0); // and a comma
      if (size > room - envelope) continue;
      if (size > budget) break;
      budget -= size;
      kept.push(deliver);
    }
    return kept.reverse();
  }

  /** Runs a service call; an unreachable service becomes `internal` for this request only. */
  async #call<T>(fn: () => Promise<T>, id?: string): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof ServiceUnavailableError) {
        this.#logger.error(
          `${error.message}: ${String((error.cause as Error | undefined)?.message)}`,
        );
        const { code, message } = protocolErrorFor('unavailable');
        throw new ProtocolError(code, message, id === undefined ? {} : { id });
      }
      throw error;
    }
  }

  #refuse(failure: ServiceFailure, id?: string): void {
    const { code, message } = protocolErrorFor(failure);
    this.#reply(ServerSession.errorMessage(code, message, id === undefined ? {} : { id }));
  }

  #reply(message: Parameters<ServerSession['send']>[0]): void {
    if (this.#phase === 'closed' || this.#session?.state !== 'open') return;
    this.#write(this.#session.send(message));
  }

  #sendDeliver(message: StoredMessage): void {
    const deliver = toDeliver(message);
    if (!this.#session!.fits(deliver)) {
      this.#logger.error(`message ${message.msg_id} does not fit max_frame; left pending`);
      return;
    }
    this.#write(this.#session!.send(deliver));
    this.deps.metrics.messageDelivered(this.deps.now() - message.server_ts);
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
    if (!fatal && session.state === 'open') {
      const extra = error.id === undefined ? {} : { id: error.id };
      this.#write(session.send(ServerSession.errorMessage(error.code, error.message, extra)));
      return;
    }
    // §2: a fatal error is said once, as a record, then the connection closes (§5: silently
    // when the record layer itself failed).
    const last = session.finalError(error);
    if (last) this.#write(last);
    this.#close(`protocol error: ${error.code}`);
  }

  /** A framing failure (§2): tell the peer in the current encoding, then close. */
  #protocolFailure(error: unknown): void {
    const protocolError =
      error instanceof ProtocolError ? error : new ProtocolError('internal', 'internal error');
    if (this.#phase === 'handshake') {
      this.#finishHandshakeStep(this.#handshake.abort(protocolError.code, protocolError.message));
      return;
    }
    this.#requestFailure(protocolError);
    this.#close(`protocol error: ${protocolError.code}`);
  }

  // ------------------------------------------------------------------ output and teardown

  /** Writes, honouring backpressure; a reader too slow to keep up is dropped (its messages stay pending). */
  #write(bytes: Buffer): void {
    if (this.#phase === 'closed' || this.socket.destroyed) return;
    // Records written in one turn of the event loop (an ack and a deliver, a pending sync, a
    // room's fan-out) leave in one writev instead of one system call each.
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      process.nextTick(() => this.#uncork());
    }
    const flushed = this.socket.write(bytes);
    // Hand a large gathering to the kernel at once: corked bytes count in writableLength, and
    // the slow-reader bound below is about bytes the peer has not taken, not bytes we held.
    if (this.socket.writableLength >= CORK_FLUSH_BYTES) this.#uncork();
    if (this.socket.writableLength > this.deps.config.limits.maxOutboundBytes) {
      this.#logger.warn(
        `outbound queue over ${this.deps.config.limits.maxOutboundBytes} bytes; dropping slow reader`,
      );
      this.#close('slow reader', true);
      return;
    }
    if (!flushed) this.#setReading('output', false); // until the peer reads our answers
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.socket.uncork();
  }

  #setReading(reason: 'output' | 'queue' | 'shutdown', allowed: boolean): void {
    if (allowed) this.#pausedFor.delete(reason);
    else this.#pausedFor.add(reason);
    if (this.#phase === 'closed') return;
    if (this.#pausedFor.size === 0) this.socket.resume();
    else this.socket.pause();
  }

  #onRecord(event: RecordEvent): void {
    if (!this.#transcriptOpen) {
      this.#earlyRecords.push(event);
      return;
    }
    this.deps.transcripts.record({
      sessionId: this.sessionId,
      position: this.#position++,
      direction: event.direction,
      chained: event.chained,
      plaintext: toBase64(event.plaintext),
    });
  }

  #releaseHandshakeSlot(): void {
    if (this.#inHandshakeSlot) {
      this.#inHandshakeSlot = false;
      this.deps.limiter.endHandshake(this.remoteAddress);
    }
  }

  #close(reason: string, destroy = false): void {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'handshake') {
      this.#handshake.abort('internal', 'connection closed');
      this.deps.metrics.handshake(this.#handshakeResult ?? 'failed');
    }
    const wasInSession = this.#session !== undefined && this.#transcriptOpen;
    this.#phase = 'closed';
    for (const timer of [this.#handshakeTimer, this.#stallTimer, this.#countersignTimer]) {
      if (timer) clearTimeout(timer);
    }
    this.#releaseHandshakeSlot();
    if (this.#sessionSlotUser !== undefined) {
      this.deps.limiter.endSession(this.#sessionSlotUser);
      this.#sessionSlotUser = undefined;
    }
    this.deps.registry.remove(this);
    if (wasInSession) this.#closeTranscript();
    if (destroy) this.socket.destroy();
    else this.socket.end();
    this.socket.setTimeout(0);
    // A peer that never reads its last bytes must not hold the socket open.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
    this.#logger.debug?.({ msg: 'closed', reason });
    this.deps.onClosed(this);
  }

  #closeTranscript(): void {
    const session = this.#session!;
    const receipt = session.sentReceipt;
    const view = receipt?.view ?? session.view();
    this.deps.transcripts.close({
      sessionId: this.sessionId,
      endedAt: this.deps.now(),
      status: this.#finalStatus ?? 'incomplete',
      serverView: {
        c2sCount: view.c2sCount,
        c2sChain: toBase64(view.c2sChain),
        s2cCount: view.s2cCount,
        s2cChain: toBase64(view.s2cChain),
      },
      ...(receipt ? { receiptSignature: toBase64(receipt.signature) } : {}),
      ...(this.#clientView ? { clientView: this.#clientView } : {}),
      ...(this.#countersignature ? { countersignature: this.#countersignature } : {}),
    });
  }
}

/** The widest ids a stored message can carry, to size a `send` before it is stored. */
const WIDEST_STORED = { msg_id: '9'.repeat(20), server_ts: Number.MAX_SAFE_INTEGER };

function toDeliver(message: StoredMessage): Deliver {
  return {
    type: 'deliver',
    msg_id: message.msg_id,
    id: message.id,
    from: message.from,
    to: message.to,
    body: message.body,
    ts: message.ts,
    server_ts: message.server_ts,
    sig: message.sig,
  };
}
