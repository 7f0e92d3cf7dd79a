/**
 * SecureChatClient: the reference securechat/1 client over a real TCP socket, on the sans-I/O
 * client role of libs/protocol (docs/PROTOCOL.md). It pins the server like SSH (§4.3), logs in
 * or registers (§4.4), signs every message (§7.3), verifies every delivery against its author's
 * pinned key, answers `delivered` once a message has been handed to the application (§7.4),
 * drops duplicates by `msg_id`, reconnects with backoff, rotates keys well before the §5.3
 * limit, keeps a local transcript (§8.5) and closes with bye → receipt → countersign (§8.4).
 *
 * Side effects are injected: the known-servers store, the peer-key store and the transcript
 * sink are interfaces with file and in-memory implementations.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';

import {
  ClientHandshake,
  type ClientMessage,
  type ClientSession,
  type Deliver,
  type ErrorMessage,
  FrameDecoder,
  type History,
  type Joined,
  type KeyAnswer,
  type Left,
  type LoginOk,
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  PeerError,
  type Pong,
  type RawFrame,
  type ReceiptCheck,
  type RecordEvent,
  ROOM_PATTERN,
  type SendMessage,
  type ServerMessage,
  type ServerTrust,
  ServerIdentityError,
  USERNAME_PATTERN,
  closesConnection,
  fingerprint as fingerprintOf,
  fromBase64,
  parseFrame,
  signMessage,
} from '@securechat/protocol';

import { BoundedLru } from './bounded-lru';
import {
  ClientClosedError,
  ClientRequestError,
  ConnectionClosedError,
  HandshakeTimeoutError,
  PendingLimitError,
  RequestTimeoutError,
  TrustConfigurationError,
} from './client-errors';
import { type KnownServersStore, isFingerprint, serverAddress } from './known-servers';
import {
  type MessageVerification,
  type PeerKeyStore,
  PeerKeyVerifier,
  type VerificationResult,
} from './peer-keys';
import { type TranscriptSessionLog, type TranscriptSink } from './transcript-log';

/** What the user is shown on first contact with a server (§4.3). */
export interface FirstContact {
  /** `host:port`. */
  readonly address: string;
  readonly fingerprint: string;
}

/**
 * How an unpinned server is trusted: `'tofu'` pins the first key that proves itself, `ask`
 * asks the user (like SSH's prompt), `fingerprint` is a fingerprint configured out of band.
 * Whatever the policy, a pinned key is enforced and never replaced.
 */
export type ServerTrustPolicy =
  | 'tofu'
  | { readonly ask: (contact: FirstContact) => boolean | Promise<boolean> }
  | { readonly fingerprint: string };

export interface ClientTrustOptions {
  readonly store: KnownServersStore;
  readonly policy: ServerTrustPolicy;
}

export interface ReconnectOptions {
  /** First delay (default 250 ms); doubled per attempt, with jitter. */
  readonly initialDelayMs: number;
  /** Largest delay (default 30 s). */
  readonly maxDelayMs: number;
  /** Attempts after a connection loss before giving up (default 10; Infinity allowed). */
  readonly maxAttempts: number;
}

export interface SecureChatClientOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** The user's Ed25519 or RSA (≥ 2048 bits) private key (§2.2). */
  readonly privateKey: KeyObject;
  /** `register` creates the account on the first connection; reconnects log in (§4.4). */
  readonly action?: 'login' | 'register';
  readonly trust: ClientTrustOptions;
  readonly peerKeys: PeerKeyStore;
  readonly transcript?: TranscriptSink;
  /** `false`: no reconnect. */
  readonly reconnect?: Partial<ReconnectOptions> | false;
  /** Records sent under one key before `key_update` (default 2^20, far below 2^24, §5.3). */
  readonly keyUpdateInterval?: number;
  /** Time for the server to answer a request (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Time from dialling to `login_ok` (default 15 s). */
  readonly handshakeTimeoutMs?: number;
  /** Largest frame body sent or accepted (§3.1); must match the server (default 65536). */
  readonly maxFrame?: number;
  /** A `ping` when the connection was idle this long (default 60 s; 0 disables), §7.1. */
  readonly keepAliveMs?: number;
  /**
   * Sends not yet acknowledged before `send` refuses more with PendingLimitError (default
   * 1024): the bound on memory when the server is slow or the connection is down.
   */
  readonly maxPendingSends?: number;
  /** How many delivered `msg_id`s are remembered to drop duplicates (default 10000). */
  readonly seenMessageIds?: number;
  /** Source of jitter in [0, 1) (tests). */
  readonly random?: () => number;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface StateDetail {
  /** Reconnect attempt number (1-based), with `reconnecting`. */
  readonly attempt?: number;
  /** Wait before the attempt, with `reconnecting`. */
  readonly delayMs?: number;
  /** Why the connection was lost or the client closed. */
  readonly error?: Error;
  /** The session's id, with `connected`. */
  readonly sessionId?: string;
}

/** A delivery handed to the application: verified, or flagged (never dropped silently). */
export interface IncomingMessage extends VerificationResult {
  readonly deliver: Deliver;
  readonly verification: MessageVerification;
}

export interface SendResult {
  /** The server's id for the message (§7.2 `ack`). */
  readonly msgId: string;
  readonly serverTs: number;
  /** Our client id (`send.id`). */
  readonly id: string;
}

export interface CloseResult {
  /** The receipt's view equals ours (§8.4). */
  readonly viewsMatch: boolean;
  /** The receipt is signed by the pinned server key. */
  readonly signatureValid: boolean;
  /** Whether a receipt was received at all (false when closed while disconnected). */
  readonly receiptReceived: boolean;
  readonly sessionId?: string;
  /** The transcript of the last session, when a sink was configured. */
  readonly transcript?: string;
  readonly receipt?: ReceiptCheck;
}

export interface SecureChatClientEvents {
  message: [IncomingMessage];
  /** A delivery dropped because its `msg_id` was already handed over (§7.4 "Duplicates"). */
  duplicate: [Deliver];
  state: [ClientState, StateDetail];
  error: [Error];
}

const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  maxAttempts: 10,
};
const DEFAULT_MAX_PENDING_SENDS = 1024;
/** 2^20: far below the 2^24 limit of §5.3, so a burst can never reach it. */
export const CLIENT_KEY_UPDATE_INTERVAL = 2 ** 20;
/** Deliveries waiting for verification before the socket stops reading (inbound bound). */
const INBOUND_HIGH_WATER = 512;
const INBOUND_LOW_WATER = 64;
/** Time for the server to close after `countersign`, and for the receipt after `bye`. */
const CLOSE_GRACE_MS = 5_000;

/** Exponential backoff with "equal jitter": half the capped delay, plus up to half again. */
export function backoffDelay(
  attempt: number,
  options: Pick<ReconnectOptions, 'initialDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Whether a failure ends the client instead of leading to a reconnect. */
export function isFinalFailure(error: unknown): boolean {
  if (error instanceof ServerIdentityError || error instanceof TrustConfigurationError) return true;
  if (error instanceof TypeError) return true; // our own configuration is wrong
  if (error instanceof PeerError) {
    switch (error.code) {
      case 'auth_failed':
      case 'forbidden':
      case 'conflict':
      case 'bad_request':
      case 'unsupported_protocol':
        return true;
      default:
        return false;
    }
  }
  return false;
}

/** A client id matching `^[A-Za-z0-9_-]{1,64}$` (§7.5), unique per message. */
function newClientId(): string {
  return `c${Date.now().toString(36)}-${randomBytes(12).toString('base64url')}`;
}

type RequestMessage = Extract<
  ClientMessage,
  { type: 'join' | 'leave' | 'get_key' | 'history' | 'ping' }
>;
type AnswerType = 'joined' | 'left' | 'key' | 'history' | 'pong';

interface PendingSend {
  readonly message: SendMessage;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** Sealed and written on the current connection, so unacked sends are resent after a loss. */
  written: boolean;
}

interface PendingRequest {
  readonly message: RequestMessage;
  readonly expect: AnswerType;
  readonly resolve: (answer: ServerMessage) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type OutboundItem =
  | { readonly kind: 'send'; readonly pending: PendingSend }
  | { readonly kind: 'request'; readonly request: PendingRequest }
  | { readonly kind: 'delivered'; readonly msgId: string };

/** One TCP connection and, once the handshake is done, its session. */
interface Link {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  session?: ClientSession;
  log?: TranscriptSessionLog;
  logFinished: boolean;
  /** Records seen before the log could be opened (login_ok, during the handshake). */
  preRecords: RecordEvent[];
  serverKey?: Buffer;
  needsDrain: boolean;
  byeSent: boolean;
  paused: boolean;
  /** Why the connection is ending, when we know better than the socket. */
  failure?: Error;
  receipt?: ReceiptCheck;
  lastActivity: number;
}

export class SecureChatClient extends EventEmitter<SecureChatClientEvents> {
  readonly address: string;
  readonly #options: SecureChatClientOptions;
  readonly #reconnect: ReconnectOptions | false;
  readonly #requestTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #verifier: PeerKeyVerifier;
  readonly #seen: BoundedLru<string, true>;

  #state: ClientState = 'idle';
  #link: Link | undefined;
  #registered = false;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #establishing: Promise<unknown> | undefined;

  readonly #sends = new Map<string, PendingSend>();
  #requests: PendingRequest[] = [];
  #inFlight: PendingRequest | undefined;
  #outbound: OutboundItem[] = [];

  #deliveries: Promise<void> = Promise.resolve();
  #deliveriesWaiting = 0;

  #closing = false;
  #closeResult: Promise<CloseResult> | undefined;
  #onReceipt: ((check: ReceiptCheck) => void) | undefined;
  #onLinkClosed: (() => void) | undefined;
  #lastTranscript: string | undefined;

  constructor(options: SecureChatClientOptions) {
    super();
    if (!USERNAME_PATTERN.test(options.username)) {
      throw new TypeError('username must match ^[a-z0-9_]{3,32}$');
    }
    const passwordBytes = Buffer.byteLength(options.password, 'utf8');
    if (passwordBytes < PASSWORD_MIN_BYTES || passwordBytes > PASSWORD_MAX_BYTES) {
      // Never quote the password, not even its length.
      throw new TypeError(
        `password must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8`,
      );
    }
    const { policy } = options.trust;
    if (
      typeof policy === 'object' &&
      'fingerprint' in policy &&
      !isFingerprint(policy.fingerprint)
    ) {
      throw new TypeError('trust.policy.fingerprint must look like sha256:<64 lowercase hex>');
    }
    this.#options = options;
    this.address = serverAddress(options.host, options.port);
    this.#reconnect =
      options.reconnect === false ? false : { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 15_000;
    this.#seen = new BoundedLru(options.seenMessageIds ?? 10_000);
    this.#verifier = new PeerKeyVerifier(options.peerKeys, (user) => this.#fetchPeerKey(user));
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

  /** The current socket: tests drop it to simulate a connection loss. */
  get socketForTests(): Socket | undefined {
    return this.#link?.socket;
  }

  /** The transcript file of the current or last session. */
  get transcriptLocation(): string | undefined {
    return this.#link?.log?.location ?? this.#lastTranscript;
  }

  /**
   * Connects, checks the server's key (§4.3), logs in or registers (§4.4). Rejects with
   * ServerIdentityError (refused server: nothing was sent), PeerError (e.g. `auth_failed`),
   * or a connection error. Not retried: reconnects are for connections that were up.
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

  /** Signs (§7.3) and sends a chat message; resolves with the server's `ack`. */
  send(to: string, body: string): Promise<SendResult> {
    if (this.#closing || this.#state === 'closed' || this.#state === 'idle') {
      return Promise.reject(new ClientClosedError('the client is not connected'));
    }
    if (!USERNAME_PATTERN.test(to) && !ROOM_PATTERN.test(to)) {
      return Promise.reject(new TypeError('to must be a username or a #room'));
    }
    const maxPending = this.#options.maxPendingSends ?? DEFAULT_MAX_PENDING_SENDS;
    if (this.#sends.size >= maxPending) {
      return Promise.reject(new PendingLimitError(maxPending));
    }
    const id = newClientId();
    const ts = Date.now();
    let sig: string;
    try {
      sig = signMessage(this.#options.privateKey, { from: this.username, to, id, ts, body });
    } catch (error) {
      // e.g. an unpaired surrogate, which has no UTF-8 form (§10 item 4)
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const message: SendMessage = { type: 'send', id, to, body, ts, sig };
    return new Promise<SendResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#sends.delete(id);
        reject(new RequestTimeoutError('send', this.#requestTimeoutMs));
      }, this.#requestTimeoutMs);
      const pending: PendingSend = { message, resolve, reject, timer, written: false };
      this.#sends.set(id, pending);
      this.#outbound.push({ kind: 'send', pending });
      this.#pump();
    });
  }

  join(room: string): Promise<Joined> {
    return this.#request({ type: 'join', room }, 'joined') as Promise<Joined>;
  }

  leave(room: string): Promise<Left> {
    return this.#request({ type: 'leave', room }, 'left') as Promise<Left>;
  }

  /** The server's answer for a user's key; it is not pinned here (deliveries pin, §7.3). */
  getKey(user: string): Promise<KeyAnswer> {
    return this.#request({ type: 'get_key', user }, 'key') as Promise<KeyAnswer>;
  }

  /** §7.4 history; `limit` is always sent (§10.1), default 50. */
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
   * The orderly close (§8.4): everything queued is written, then `bye`; the `receipt` is
   * checked against our view and the pinned server key; `countersign` follows. Sends still
   * without `ack` are rejected. Safe to call more than once.
   */
  close(): Promise<CloseResult> {
    this.#closeResult ??= this.#close();
    return this.#closeResult;
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
    const { trust, pinAfterLogin } = await this.#serverTrust();
    const action = this.#registered ? 'login' : (this.#options.action ?? 'login');
    const socket = await this.#dial();
    const link: Link = {
      socket,
      decoder: new FrameDecoder(
        this.#options.maxFrame === undefined ? {} : { maxFrame: this.#options.maxFrame },
      ),
      logFinished: false,
      preRecords: [],
      needsDrain: false,
      byeSent: false,
      paused: false,
      lastActivity: Date.now(),
    };
    const handshake = new ClientHandshake({
      trust,
      credentials: {
        action,
        username: this.#options.username,
        password: this.#options.password,
        privateKey: this.#options.privateKey,
      },
      ...(this.#options.maxFrame === undefined ? {} : { maxFrame: this.#options.maxFrame }),
      session: {
        keyUpdateInterval: this.#options.keyUpdateInterval ?? CLIENT_KEY_UPDATE_INTERVAL,
        onRecord: (event) => this.#onRecord(link, event),
      },
    });

    return new Promise<LoginOk>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new HandshakeTimeoutError(this.#handshakeTimeoutMs)),
        this.#handshakeTimeoutMs,
      );
      socket.on('error', (error) => {
        link.failure ??= error;
      });
      socket.once('close', () => {
        if (!settled) {
          fail(link.failure ?? new ConnectionClosedError('the connection closed in the handshake'));
        } else {
          this.#onLinkLost(link);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        if (link.session !== undefined && settled) {
          this.#onData(link, chunk);
          return;
        }
        if (settled) return;
        let frames: RawFrame[];
        try {
          frames = link.decoder.push(chunk);
        } catch (error) {
          fail(error as Error);
          return;
        }
        // The handshake is asynchronous (the user may be asked to trust the key): read no
        // more until these frames are through, so that order is kept.
        socket.pause();
        void (async () => {
          for (const frame of frames) {
            if (link.session !== undefined) {
              this.#onFrame(link, frame);
              continue;
            }
            this.#captureServerKey(link, frame);
            const step = await handshake.receive(frame);
            if (settled) return;
            for (const bytes of step.send) socket.write(bytes);
            if (step.error !== undefined) {
              fail(step.error);
              return;
            }
            if (step.session !== undefined && step.loginOk !== undefined) {
              settled = true;
              clearTimeout(timer);
              this.#adopt(link, step.session, step.serverFingerprint, action, pinAfterLogin);
              resolve(step.loginOk);
            }
          }
          socket.resume();
        })().catch((error: unknown) => fail(error as Error));
      });
      socket.write(handshake.start());
    });
  }

  #dial(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: this.#options.host, port: this.#options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new HandshakeTimeoutError(this.#handshakeTimeoutMs));
      }, this.#handshakeTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        resolve(socket);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /**
   * The trust for this attempt (§4.3): a pinned key is enforced; otherwise a configured
   * fingerprint, or first-use trust (automatic or asked). The first-use callback runs only
   * after `server_auth` verified (§10 item 19) and pins before the login record is sent.
   */
  async #serverTrust(): Promise<{ trust: ServerTrust; pinAfterLogin?: string }> {
    const { store, policy } = this.#options.trust;
    const pinned = await store.get(this.address);
    const configured =
      typeof policy === 'object' && 'fingerprint' in policy ? policy.fingerprint : undefined;
    if (pinned !== undefined) {
      if (configured !== undefined && configured !== pinned) {
        throw new TrustConfigurationError(this.address, pinned, configured);
      }
      return { trust: { fingerprint: pinned } };
    }
    if (configured !== undefined) {
      return { trust: { fingerprint: configured }, pinAfterLogin: configured };
    }
    const address = this.address;
    return {
      trust: {
        onFirstUse: async ({ fingerprint }) => {
          const accepted =
            policy === 'tofu'
              ? true
              : typeof policy === 'object' && 'ask' in policy
                ? await policy.ask({ address, fingerprint })
                : false;
          if (accepted) await store.pin(address, fingerprint);
          return accepted;
        },
      },
    };
  }

  /** The server's SPKI from `server_hello`, for the transcript header (checked in #adopt). */
  #captureServerKey(link: Link, frame: RawFrame): void {
    if (link.serverKey !== undefined) return;
    try {
      const parsed = parseFrame(frame.body);
      if (parsed.type === 'server_hello') {
        link.serverKey = fromBase64(parsed.server_key, 'server_key');
      }
    } catch {
      // The handshake reports the malformed frame itself.
    }
  }

  /** The handshake is done: this link is now the client's connection. */
  #adopt(
    link: Link,
    session: ClientSession,
    serverFingerprint: string | undefined,
    action: 'login' | 'register',
    pinAfterLogin: string | undefined,
  ): void {
    link.session = session;
    this.#link = link;
    if (action === 'register') this.#registered = true;
    this.#attempt = 0;
    if (pinAfterLogin !== undefined) {
      this.#options.trust.store
        .pin(this.address, pinAfterLogin)
        .catch((error: unknown) => this.#reportError(error));
    }
    this.#openLog(link, session, serverFingerprint);
    this.#setState('connected', { sessionId: session.sessionId });
    this.#startKeepAlive();
    // Whatever waited for the connection goes out now (and bye, if close() came meanwhile).
    this.#pumpRequests();
  }

  #openLog(link: Link, session: ClientSession, serverFingerprint: string | undefined): void {
    const sink = this.#options.transcript;
    if (sink === undefined) return;
    try {
      const serverKey = link.serverKey;
      if (serverKey === undefined || fingerprintOf(serverKey) !== serverFingerprint) {
        throw new Error('the server key of the handshake could not be recorded');
      }
      link.log = sink.open({
        sessionId: session.sessionId,
        server: this.address,
        serverKey,
        serverFingerprint: serverFingerprint,
        username: session.username,
        h2: session.h2,
        startedAt: new Date(),
      });
      this.#lastTranscript = link.log.location;
      for (const event of link.preRecords) link.log.record(event);
      link.preRecords = [];
    } catch (error) {
      this.#reportError(
        new Error('the transcript of this session could not be opened', { cause: error }),
      );
    }
  }

  #onRecord(link: Link, event: RecordEvent): void {
    if (link.log !== undefined) link.log.record(event);
    else if (link.session === undefined) link.preRecords.push(event);
  }

  #finishLog(link: Link, end: Parameters<TranscriptSessionLog['finish']>[0]): Promise<void> {
    if (link.log === undefined || link.logFinished) return Promise.resolve();
    link.logFinished = true;
    return link.log.finish(end).catch((error: unknown) => this.#reportError(error));
  }

  // ------------------------------------------------------------------ inbound

  #onData(link: Link, chunk: Buffer): void {
    let frames: RawFrame[];
    try {
      frames = link.decoder.push(chunk);
    } catch (error) {
      this.#breakLink(link, error as Error);
      return;
    }
    for (const frame of frames) {
      if (link.socket.destroyed) return;
      this.#onFrame(link, frame);
    }
  }

  #onFrame(link: Link, frame: RawFrame): void {
    const session = link.session!;
    let message: ServerMessage;
    try {
      const received = session.receive(frame);
      message = received.message;
      if (received.receipt !== undefined) link.receipt = received.receipt;
    } catch (error) {
      // Always fatal inside a session (§6, §9): no resynchronisation, a new handshake.
      this.#breakLink(link, error as Error);
      return;
    }
    link.lastActivity = Date.now();
    switch (message.type) {
      case 'ack': {
        const pending = this.#sends.get(message.id);
        if (pending === undefined) return; // timed out, or an ack repeated after a resend
        this.#sends.delete(message.id);
        clearTimeout(pending.timer);
        pending.resolve({ msgId: message.msg_id, serverTs: message.server_ts, id: message.id });
        return;
      }
      case 'deliver':
        this.#queueDelivery(link, message);
        return;
      case 'error':
        this.#onServerError(link, message);
        return;
      case 'joined':
      case 'left':
      case 'key':
      case 'history':
      case 'pong':
        this.#onAnswer(message);
        return;
      case 'key_update':
        return; // the session moved its receiving key (§5.3)
      case 'receipt':
        this.#answerReceipt(link);
        return;
    }
  }

  #onServerError(link: Link, error: ErrorMessage): void {
    if (closesConnection(error.code)) {
      // The server closes after this (§9): remember why, then reconnect or give up.
      link.failure = new PeerError(error.code, error.message, error.retry_after, error.id);
    }
    if (error.id !== undefined) {
      const pending = this.#sends.get(error.id);
      if (pending !== undefined) {
        this.#sends.delete(error.id);
        clearTimeout(pending.timer);
        pending.reject(this.#requestError(error, 'send'));
        return;
      }
    }
    if (!closesConnection(error.code) && error.id === undefined && this.#inFlight !== undefined) {
      // Only `send` carries an id; other answers are matched by order (§10.1).
      const request = this.#inFlight;
      this.#inFlight = undefined;
      clearTimeout(request.timer);
      request.reject(this.#requestError(error, request.message.type));
      this.#pumpRequests();
      return;
    }
    this.#reportError(new PeerError(error.code, error.message, error.retry_after, error.id));
  }

  #requestError(error: ErrorMessage, request: string): ClientRequestError {
    return new ClientRequestError(error.code, error.message, request, error.id, error.retry_after);
  }

  #onAnswer(answer: Extract<ServerMessage, { type: AnswerType }>): void {
    const request = this.#inFlight;
    if (request === undefined || request.expect !== answer.type) {
      this.#reportError(new Error(`an unexpected ${answer.type} from the server was ignored`));
      return;
    }
    this.#inFlight = undefined;
    clearTimeout(request.timer);
    request.resolve(answer);
    this.#pumpRequests();
  }

  /**
   * Deliveries are verified (which may need a `get_key` round trip) one after another, so
   * the application sees them in the server's order (§7.4). Past a bound the socket stops
   * reading until the queue shrinks.
   */
  #queueDelivery(link: Link, deliver: Deliver): void {
    this.#deliveriesWaiting += 1;
    if (this.#deliveriesWaiting >= INBOUND_HIGH_WATER && !link.paused) {
      link.paused = true;
      link.socket.pause();
    }
    this.#deliveries = this.#deliveries
      .then(() => this.#handleDelivery(deliver))
      .catch((error: unknown) => this.#reportError(error))
      .finally(() => {
        this.#deliveriesWaiting -= 1;
        if (link.paused && this.#deliveriesWaiting <= INBOUND_LOW_WATER) {
          link.paused = false;
          link.socket.resume();
        }
      });
  }

  async #handleDelivery(deliver: Deliver): Promise<void> {
    if (this.#seen.has(deliver.msg_id)) {
      // Delivery is at least once (§7.4): drop the duplicate, but confirm it again so the
      // server stops resending it.
      this.#confirm(deliver.msg_id);
      this.emit('duplicate', deliver);
      return;
    }
    const result = await this.#verifier.verify(deliver);
    // After bye nothing but countersign may be sent (§8.4): the message cannot be confirmed
    // and will be delivered again at the next login, so it is not handed over now.
    if (this.#closing || this.#state === 'closed') return;
    try {
      this.emit('message', { ...result, deliver });
    } catch (error) {
      // The application did not take it: leave it unconfirmed, the server keeps it pending.
      this.#reportError(error);
      return;
    }
    this.#seen.set(deliver.msg_id, true);
    this.#confirm(deliver.msg_id);
  }

  #confirm(msgId: string): void {
    if (this.#closing || this.#state === 'closed') return;
    this.#outbound.push({ kind: 'delivered', msgId });
    this.#pump();
  }

  async #fetchPeerKey(user: string): Promise<KeyAnswer | undefined> {
    try {
      return await this.getKey(user);
    } catch (error) {
      if (error instanceof ClientRequestError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  // ------------------------------------------------------------------ outbound

  #request(message: RequestMessage, expect: AnswerType): Promise<ServerMessage> {
    if (this.#closing || this.#state === 'closed' || this.#state === 'idle') {
      return Promise.reject(new ClientClosedError('the client is not connected'));
    }
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#inFlight === request) {
          // The answer may still come and would then be matched to the next request; only a
          // fresh connection restores certainty (§10.1).
          this.#inFlight = undefined;
          if (this.#link !== undefined) {
            this.#breakLink(
              this.#link,
              new RequestTimeoutError(message.type, this.#requestTimeoutMs),
            );
          }
        } else {
          this.#requests = this.#requests.filter((r) => r !== request);
        }
        reject(new RequestTimeoutError(message.type, this.#requestTimeoutMs));
      }, this.#requestTimeoutMs);
      const request: PendingRequest = { message, expect, resolve, reject, timer };
      this.#requests.push(request);
      this.#pumpRequests();
    });
  }

  /** At most one id-less request in flight (§10.1): the next goes out once this is answered. */
  #pumpRequests(): void {
    if (this.#inFlight === undefined && !this.#closing) {
      const next = this.#requests.shift();
      if (next !== undefined) {
        this.#inFlight = next;
        this.#outbound.push({ kind: 'request', request: next });
      }
    }
    this.#pump(); // also sends a pending bye once the last answer is in
  }

  /**
   * Seals and writes queued messages while the socket takes them. Nothing is sealed while the
   * socket is over its high-water mark (§3.1 backpressure): the queue holds plain messages, so
   * a lost connection loses nothing that was not written.
   */
  #pump(): void {
    const link = this.#link;
    const session = link?.session;
    if (link === undefined || session === undefined || session.state !== 'open') return;
    while (!link.needsDrain && this.#outbound.length > 0) {
      const item = this.#outbound.shift()!;
      let message: Exclude<ClientMessage, { type: 'bye' | 'countersign' }>;
      switch (item.kind) {
        case 'send':
          if (this.#sends.get(item.pending.message.id) !== item.pending) continue;
          message = item.pending.message;
          break;
        case 'request':
          if (this.#inFlight !== item.request) continue;
          message = item.request.message;
          break;
        case 'delivered':
          message = { type: 'delivered', msg_id: item.msgId };
          break;
      }
      let bytes: Buffer;
      try {
        bytes = session.send(message); // inserts key_update on schedule (§5.3)
      } catch (error) {
        this.#failItem(item, error as Error);
        continue;
      }
      if (item.kind === 'send') item.pending.written = true;
      this.#write(link, bytes);
    }
    if (this.#closing && !link.needsDrain && this.#outbound.length === 0 && !link.byeSent) {
      if (this.#inFlight !== undefined) return; // its answer first, then bye
      link.byeSent = true;
      this.#write(link, session.bye());
    }
  }

  #failItem(item: OutboundItem, error: Error): void {
    switch (item.kind) {
      case 'send':
        this.#sends.delete(item.pending.message.id);
        clearTimeout(item.pending.timer);
        item.pending.reject(error);
        return;
      case 'request':
        this.#inFlight = undefined;
        clearTimeout(item.request.timer);
        item.request.reject(error);
        this.#pumpRequests();
        return;
      case 'delivered':
        this.#reportError(error);
        return;
    }
  }

  #write(link: Link, bytes: Buffer): void {
    link.lastActivity = Date.now();
    if (!link.socket.write(bytes)) {
      link.needsDrain = true;
      link.socket.once('drain', () => {
        link.needsDrain = false;
        if (this.#link === link) this.#pump();
      });
    }
  }

  #startKeepAlive(): void {
    clearInterval(this.#keepAliveTimer);
    const every = this.#options.keepAliveMs ?? 60_000;
    if (every <= 0) return;
    this.#keepAliveTimer = setInterval(() => {
      const link = this.#link;
      if (link === undefined || this.#closing || Date.now() - link.lastActivity < every) return;
      this.ping().catch(() => undefined);
    }, every);
    this.#keepAliveTimer.unref();
  }

  // ------------------------------------------------------------------ loss, reconnect, close

  /** Ends a connection we can no longer trust; the socket's close event does the rest. */
  #breakLink(link: Link, error: Error): void {
    link.failure ??= error;
    link.socket.destroy();
  }

  #onLinkLost(link: Link): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    clearInterval(this.#keepAliveTimer);
    const reason = link.failure ?? new ConnectionClosedError('the connection was lost');
    if (this.#closing) {
      this.#onLinkClosed?.();
      return;
    }
    void this.#finishLog(link, { reason: 'connection_lost' });
    // What was written but not answered goes out again on the next connection: a repeated
    // send is stored once (§7.4); id-less requests are repeated from the start of the queue.
    const resend: OutboundItem[] = [];
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
    if (this.#reconnect === false || isFinalFailure(reason)) {
      this.#finalize(reason);
      return;
    }
    this.#scheduleReconnect(reason);
  }

  #scheduleReconnect(reason: Error): void {
    const options = this.#reconnect;
    if (options === false) return;
    this.#attempt += 1;
    if (this.#attempt > options.maxAttempts) {
      this.#finalize(new ClientClosedError('gave up reconnecting', { cause: reason }));
      return;
    }
    let delayMs = backoffDelay(this.#attempt, options, this.#options.random);
    if (reason instanceof PeerError && reason.retryAfter !== undefined) {
      delayMs = Math.max(delayMs, reason.retryAfter * 1000); // rate_limited (§9)
    }
    this.#setState('reconnecting', { attempt: this.#attempt, delayMs, error: reason });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#establish().then(
        () => undefined,
        (error: unknown) => {
          if (this.#closing || this.#state === 'closed') return;
          if (isFinalFailure(error)) this.#finalize(error as Error);
          else this.#scheduleReconnect(error as Error);
        },
      );
    }, delayMs);
  }

  /** The client is done: every pending request fails, state `closed`. */
  #finalize(reason?: Error): void {
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#keepAliveTimer);
    const closed = new ClientClosedError(
      reason === undefined ? 'the client is closed' : `the client is closed: ${reason.message}`,
      reason === undefined ? undefined : { cause: reason },
    );
    for (const pending of this.#sends.values()) {
      clearTimeout(pending.timer);
      pending.reject(closed);
    }
    this.#sends.clear();
    for (const request of [...(this.#inFlight ? [this.#inFlight] : []), ...this.#requests]) {
      clearTimeout(request.timer);
      request.reject(closed);
    }
    this.#inFlight = undefined;
    this.#requests = [];
    this.#outbound = [];
    if (this.#state !== 'closed') {
      const wasUp = this.#state !== 'connecting';
      this.#setState('closed', reason === undefined ? {} : { error: reason });
      if (reason !== undefined && wasUp && !this.#closing) this.#reportError(reason);
    }
  }

  async #close(): Promise<CloseResult> {
    this.#closing = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#keepAliveTimer);
    for (const request of this.#requests) {
      clearTimeout(request.timer);
      request.reject(new ClientClosedError('the client is closing'));
    }
    this.#requests = [];
    if (this.#establishing !== undefined) await this.#establishing.catch(() => undefined);

    const link = this.#link;
    const session = link?.session;
    if (link === undefined || session === undefined || this.#state !== 'connected') {
      this.#finalize();
      return { viewsMatch: false, signatureValid: false, receiptReceived: false };
    }
    const receipt = new Promise<ReceiptCheck | undefined>((resolve) => {
      this.#onReceipt = resolve;
      this.#onLinkClosed = () => resolve(undefined);
    });
    const linkClosed = new Promise<void>((resolve) => {
      if (link.socket.destroyed) resolve();
      else link.socket.once('close', () => resolve());
    });
    this.#pump(); // queued messages, then bye
    const grace = setTimeout(() => link.socket.destroy(), this.#requestTimeoutMs + CLOSE_GRACE_MS);
    const check = await receipt;
    clearTimeout(grace);
    // The server closes after countersign (§7.1); do not wait for ever.
    const closeTimer = setTimeout(() => link.socket.destroy(), CLOSE_GRACE_MS);
    await linkClosed;
    clearTimeout(closeTimer);
    if (this.#link === link) this.#link = undefined;
    await this.#finishLog(
      link,
      check === undefined
        ? { reason: 'connection_lost' }
        : {
            reason: 'closed',
            viewsMatch: check.viewsMatch,
            signatureValid: check.signatureValid,
          },
    );
    this.#finalize();
    return {
      viewsMatch: check?.viewsMatch ?? false,
      signatureValid: check?.signatureValid ?? false,
      receiptReceived: check !== undefined,
      sessionId: session.sessionId,
      ...(link.log === undefined ? {} : { transcript: link.log.location }),
      ...(check === undefined ? {} : { receipt: check }),
    };
  }

  /** §8.4 step 3: countersign our own view, whatever the receipt said; then the server closes. */
  #answerReceipt(link: Link): void {
    const check = link.receipt;
    const session = link.session!;
    if (check === undefined) return;
    try {
      link.socket.write(session.countersign());
    } catch (error) {
      this.#reportError(error);
    }
    if (!check.viewsMatch || !check.signatureValid) {
      this.#reportError(
        new Error(
          check.signatureValid
            ? "the server's receipt does not match our view of the session"
            : "the server's receipt is not signed by the pinned server key",
        ),
      );
    }
    this.#onReceipt?.(check);
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
