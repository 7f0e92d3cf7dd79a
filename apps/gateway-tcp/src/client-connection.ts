import { randomBytes } from 'node:crypto';

import { type LoggerService } from '@nestjs/common';
import {
  type MetricsRepository,
  type PendingQuery,
  type PendingResult,
  type SecureChatConfig,
  type StoredMessage,
} from '@securechat/core';
import {
  closesConnection,
  MAX_HANDSHAKE_FRAME,
  ProtocolError,
  type SendMessage,
  type ServerMessage,
  ServerSession,
} from '@securechat/protocol';

import { ConnectionHandshake } from './connection-handshake';
import { type ConnectionLimiter } from './connection-limiter';
import { ConnectionTranscript } from './connection-transcript';
import {
  DEFAULT_DELIVERY_SYNC_LIMITS,
  type DeliveryOutput,
  DeliverySync,
  type DeliverySyncLimits,
} from './delivery-sync';
import {
  type ByteStream,
  FramedSocket,
  type FramedSocketEvents,
  type FramedSocketLimits,
} from './framed-socket';
import { type ServerIdentityKey } from './identity-key.repository';
import { LoginGate } from './login-gate';
import { type RecordChecks, RecordReader, type RecordUnit } from './record-reader';
import {
  type CheckedSend,
  checkSend,
  errorFor,
  RequestHandler,
  toDeliver,
} from './request-handler';
import { type AuthClient, type RelayClient } from './service-clients';
import { type DeliveryTarget, type SessionRegistry } from './session-registry';
import { type TranscriptShipper } from './transcript-shipper';

export interface ConnectionDeps {
  readonly config: SecureChatConfig;
  readonly identity: ServerIdentityKey;
  readonly auth: Pick<AuthClient, 'login' | 'getKey'>;
  readonly relay: Pick<
    RelayClient,
    'sendBatch' | 'deliveredBatch' | 'pending' | 'join' | 'leave' | 'history'
  >;
  readonly registry: SessionRegistry;
  readonly limiter: Pick<ConnectionLimiter, 'tryStartSession' | 'endSession' | 'endHandshake'>;
  readonly transcripts: Pick<TranscriptShipper, 'open' | 'record' | 'close' | 'mode'>;
  readonly metrics: MetricsRepository;
  /**
   * This connection's logger: every line carries its id and remote address. Called once per
   * connection; what it returns lives as long as the connection.
   */
  readonly logger: (connectionId: string, remoteAddress: string) => LoggerService;
  readonly now: () => number;
  /** Called once the user is logged in and the session registered. */
  readonly onSessionStart: (connection: ClientConnection) => void;
  /** Called once when the connection is gone, whatever the reason. */
  readonly onClosed: (connection: ClientConnection) => void;
}

type Phase = 'handshake' | 'session' | 'closing' | 'closed';

/** How long a client has to countersign after the receipt. */
const COUNTERSIGN_TIMEOUT_MS = 10_000;
/** How long a shutdown waits for the request being handled before it sends the error anyway. */
const SHUTDOWN_DRAIN_MS = 2_000;
/** A frame started but not finished within this time is a stalled peer (PROTOCOL.md §9). */
export const FRAME_STALL_TIMEOUT_MS = 30_000;
/** Answers waiting for the peer above which no further request is handled until it reads. */
const REPLY_WRITE_AHEAD_BYTES = 64 * 1024;

/** What every connection given the same ConnectionDeps shares (see `sharedBy`). */
interface Shared {
  readonly framedLimits: FramedSocketLimits;
  readonly deliveryLimits: DeliverySyncLimits;
  readonly pending: (query: PendingQuery) => Promise<PendingResult>;
}

const shared = new WeakMap<ConnectionDeps, Shared>();

/**
 * One object of limits and one function for all the connections of a gateway (which gives
 * them all the same deps), not one each: a gateway holds thousands of connections, most of them
 * idle sessions, and keeps what each holds for as long as it lives.
 */
function sharedBy(deps: ConnectionDeps): Shared {
  let found = shared.get(deps);
  if (!found) {
    const { limits } = deps.config;
    found = {
      framedLimits: {
        maxFrame: limits.maxFrame,
        maxInboundFrames: limits.maxInboundFrames,
        maxInboundBytes: limits.maxInboundBytes,
        writeStallTimeoutMs: limits.writeStallTimeoutMs,
        frameStallTimeoutMs: FRAME_STALL_TIMEOUT_MS,
        idleTimeoutMs: limits.idleTimeoutMs,
      },
      deliveryLimits: {
        ...DEFAULT_DELIVERY_SYNC_LIMITS,
        maxOutboundBytes: limits.maxOutboundBytes,
      },
      pending: (query) => deps.relay.pending(query),
    };
    shared.set(deps, found);
  }
  return found;
}

/**
 * One client connection, in phases: handshake (ConnectionHandshake, the login
 * decided through LoginGate), session, closing (receipt sent, countersign awaited), closed.
 * The parts do the work — FramedSocket the bytes and their bounds, RecordReader the records in
 * order and in runs, RequestHandler the rules of each request, DeliverySync the backlog and
 * live fan-out, ConnectionTranscript the records — and this class orders them.
 *
 * Requests are handled in arrival order, one unit at a time; a run of consecutive `send`s is
 * one unit, stored by the relay in one batch while the next sends are read, so a client with
 * many sends in flight pays one round trip per batch, not per message (PROTOCOL.md §6 order per
 * sender holds: one batch of a connection is with the relay at a time).
 */
export class ClientConnection implements DeliveryTarget {
  /**
   * What FramedSocket, DeliverySync and RecordReader call back: one small object per
   * connection with its methods on a shared prototype, where arrow functions would keep
   * ~0.8 KiB of closures per connection for its whole life. Declared in this class to reach
   * its private members.
   */
  static readonly #Callbacks = class implements FramedSocketEvents, DeliveryOutput, RecordChecks {
    constructor(private readonly connection: ClientConnection) {}

    readable(): void {
      this.connection.#onReadable();
    }

    framingError(error: ProtocolError): void {
      this.connection.#protocolFailure(error);
    }

    ended(): void {
      void this.connection.#pump();
    }

    closed(reason: string, dropped: boolean): void {
      if (dropped) this.connection.#logger.warn(`dropped: ${reason}`);
      this.connection.#close(reason);
    }

    send(message: StoredMessage): boolean {
      return this.connection.#sendDeliver(message);
    }

    get outboundBytes(): number {
      return this.connection.#framed.outboundBytes;
    }

    drained(): Promise<void> {
      return this.connection.#framed.drained();
    }

    checkSend(message: SendMessage): CheckedSend {
      return checkSend(this.connection.#session!, message);
    }

    judged(refused: boolean): void {
      this.connection.#transcript.judged(refused);
    }
  };

  readonly id = randomBytes(6).toString('hex');
  readonly sessionId = `s-${randomBytes(12).toString('base64url')}`;
  readonly remoteAddress: string;
  readonly #deps: ConnectionDeps;
  readonly #logger: LoggerService;
  readonly #framed: FramedSocket;
  readonly #callbacks: FramedSocketEvents & DeliveryOutput & RecordChecks;
  /** Until the session starts: its timers, keys and frames are not needed after. */
  #handshake: ConnectionHandshake | undefined;
  readonly #transcript: ConnectionTranscript;
  readonly #login: LoginGate;
  #session: ServerSession | undefined;
  #reader: RecordReader | undefined;
  #delivery: DeliverySync | undefined;
  #phase: Phase = 'handshake';
  /** The pump's current run, while one is going (see #pump). */
  #pumping: Promise<void> | undefined;
  #countersignTimer: NodeJS.Timeout | undefined;
  #inHandshakeSlot = true;
  #shuttingDown = false;

  constructor(socket: ByteStream & { readonly remoteAddress?: string }, deps: ConnectionDeps) {
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#deps = deps;
    this.#logger = deps.logger(this.id, this.remoteAddress);
    const { limits, gatewayId } = deps.config;
    this.#framed = new FramedSocket(socket, sharedBy(deps).framedLimits, deps.now);
    this.#callbacks = new ClientConnection.#Callbacks(this);
    this.#transcript = new ConnectionTranscript({
      sessionId: this.sessionId,
      gateway: gatewayId,
      shipper: deps.transcripts,
      now: deps.now,
    });
    // Named members, not `...deps`: a spread of that many members gives each connection's
    // object a hidden class of its own (~0.5 KiB), kept as long as the connection.
    this.#login = new LoginGate({
      auth: deps.auth,
      limiter: deps.limiter,
      metrics: deps.metrics,
      now: deps.now,
      logger: this.#logger,
      remoteAddress: this.remoteAddress,
      closed: () => this.#phase === 'closed',
    });
    this.#handshake = new ConnectionHandshake({
      identity: deps.identity,
      sessionId: this.sessionId,
      limits,
      login: this.#login,
      metrics: deps.metrics,
      now: deps.now,
      onRecord: (event) => this.#transcript.record(event),
      output: this.#framed,
      established: (session) => this.#startSession(session),
      failed: (reason) => this.#close(reason),
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
    return this.#login.startedAt;
  }

  /** The credential generation auth decided the login with (DeliveryTarget; SessionRecheck). */
  get credentialsVersion(): number | undefined {
    return this.#login.credentialsVersion;
  }

  /** Whether the user logged in on this connection (presence needs to know on close). */
  get hadSession(): boolean {
    return this.#login.holdsSlot || this.#transcript.opened;
  }

  start(): void {
    const { limits } = this.#deps.config;
    this.#logger.debug?.('accepted');
    // Nothing before login is large (PROTOCOL.md §9: bound what a connection may hold).
    this.#framed.maxFrame = Math.min(MAX_HANDSHAKE_FRAME, limits.maxFrame);
    this.#framed.start(this.#callbacks);
    this.#handshake!.start();
  }

  /**
   * Fan-out (PROTOCOL.md §6): a `deliver` for this session, written or held by the delivery sync.
   */
  deliver(message: StoredMessage): void {
    this.#delivery?.deliver(message);
  }

  /**
   * Sends every message still pending for this user again. Called when the fan-out channel
   * came back from an outage (it is at most once); recipients drop duplicates by msg_id
   * (PROTOCOL.md §6).
   */
  async resync(): Promise<void> {
    if (this.#phase === 'session') await this.#delivery?.resync();
  }

  /** Ends the connection from our side with an error the client can read (e.g. shutting_down). */
  shutdown(code: 'shutting_down' | 'internal', message: string): void {
    if (this.#phase === 'handshake') {
      this.#handshake!.abort(code, message);
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
    if (this.#phase === 'handshake' && this.#handshake!.verifying) {
      this.#handshake!.earlyFrame();
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
    // Set before the run starts: records must be opened strictly in order (PROTOCOL.md §5), by one
    // reader.
    let finished!: () => void;
    this.#pumping = new Promise((resolve) => (finished = resolve));
    void this.#runPump().finally(() => {
      this.#pumping = undefined;
      finished();
      // The peer finished sending (half-close) and all it sent is answered: close.
      const idle = this.#reader?.idle ?? !this.#framed.hasFrame;
      if (this.#framed.inputEnded && idle && this.#phase !== 'closed') this.#close('peer ended');
    });
    return this.#pumping;
  }

  async #runPump(): Promise<void> {
    try {
      while (this.#phase !== 'closed' && !this.#shuttingDown) {
        if (this.#phase === 'handshake') {
          // No local for the frame: this function is suspended while auth decides, and would
          // keep it (see ServerHandshake.receive).
          if (!this.#framed.hasFrame) return;
          await this.#handshake!.receive(this.#framed.next()!, () => this.#framed.hasFrame);
          continue;
        }
        if (this.#framed.outboundBytes > REPLY_WRITE_AHEAD_BYTES) await this.#framed.drained();
        const unit = this.#reader!.next();
        if (!unit) return;
        await this.#handle(unit);
      }
    } catch (error) {
      this.#logger.error(`unexpected failure: ${(error as Error).stack ?? String(error)}`);
      this.#close('internal error', true);
    }
  }

  async #handle(unit: RecordUnit): Promise<void> {
    // Stateless, so made per unit of work rather than kept by every (mostly idle) session.
    const requests = new RequestHandler(this.#session!, this.#deps, this.#logger);
    switch (unit.kind) {
      case 'sends':
        // One relay call for the run, while the next sends are read (PROTOCOL.md §6 order kept).
        // The gateway's own checks ran as each send was read (RecordReader), so that its
        // transcript knew a refused one before shipping it (ConnectionTranscript).
        return this.#replyAll(await requests.sendBatch(unit.checked));
      case 'delivered':
        return this.#replyAll(await requests.delivered(unit.msgIds));
      case 'request':
        return this.#replyAll([await requests.handle(unit.message)]);
      case 'bye':
        return this.#bye();
      case 'countersign':
        this.#transcript.countersigned(unit.check);
        return this.#close(`closed: transcript ${unit.check.outcome}`);
      case 'failure':
        return this.#requestFailure(unit.error);
    }
  }

  /**
   * PROTOCOL.md §7: nothing follows `bye` but the receipt; the client has a while to countersign.
   */
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

  /** PROTOCOL.md §6: the session is live; its backlog goes out while requests are handled. */
  #startSession(session: ServerSession): void {
    const deps = this.#deps;
    this.#session = session;
    this.#handshake = undefined;
    this.#releaseHandshakeSlot();
    this.#phase = 'session';
    this.#framed.maxFrame = deps.config.limits.maxFrame;
    this.#transcript.open(session);
    this.#reader = new RecordReader(
      this.#framed,
      session,
      deps.config.limits.maxInboundFrames,
      this.#callbacks,
    );
    const { pending, deliveryLimits } = sharedBy(deps);
    this.#delivery = new DeliverySync(
      session.username,
      pending,
      this.#callbacks,
      deliveryLimits,
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

  /**
   * A failure while reading a request: answer it, and close when PROTOCOL.md §2 says so. Once the
   * receipt is sent nothing more is said (PROTOCOL.md §6, §7): any failure then just closes the
   * connection, and the transcript still recomputes the receipt.
   */
  #requestFailure(error: unknown): void {
    const session = this.#session!;
    const afterReceipt = session.sentReceipt !== undefined;
    if (!(error instanceof ProtocolError)) {
      this.#logger.error(`request failed: ${(error as Error).stack ?? String(error)}`);
      if (afterReceipt) this.#close('internal error after the receipt');
      else this.#reply(ServerSession.errorMessage('internal', 'internal error'));
      return;
    }
    const fatal =
      error.silent || closesConnection(error.code) || session.state === 'closed' || afterReceipt;
    if (!fatal) {
      this.#reply(errorFor(error, session));
      return;
    }
    // PROTOCOL.md §2: a fatal error is said once, as a record, then the connection closes
    // (PROTOCOL.md §5: silently when the record layer itself failed; PROTOCOL.md §7: silently after
    // the receipt, see finalError).
    const last = session.finalError(error);
    if (last) this.#framed.write(last);
    this.#close(`protocol error: ${error.code} (${error.message})`);
  }

  /** A framing failure (PROTOCOL.md §2): tell the peer in the current encoding, then close. */
  #protocolFailure(error: ProtocolError): void {
    if (this.#phase === 'handshake') {
      this.#handshake!.abort(error.code, error.message);
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
    if (this.#phase === 'handshake') this.#handshake!.closed();
    this.#phase = 'closed';
    clearTimeout(this.#countersignTimer);
    this.#releaseHandshakeSlot();
    this.#login.release();
    deps.registry.remove(this);
    this.#delivery?.stop();
    this.#reader?.clear();
    if (this.#session) this.#transcript.close(this.#session);
    this.#framed.close(reason, destroy);
    this.#logger.debug?.({ msg: 'closed', reason });
    deps.onClosed(this);
  }
}
