/**
 * The web client's connection (docs/PROTOCOL.md §11.2): one WebSocket at a time carrying one
 * securechat/1 session — handshake against the pinned fingerprint, the session's records (each
 * frame its own binary message, both ways), requests matched to their answers, the orderly close
 * (bye → receipt → countersign) — and reconnection with backoff when a connection is lost.
 *
 * Answers are matched by answer-matcher.ts: `ack` and `error` with an `id` to the `send` of that
 * id, the id-less requests one at a time, each answer checked against what was asked. A protocol
 * failure inside a session (a record that does not authenticate, a malformed message) ends it for
 * good: reconnecting is for lost connections only. The login has a timeout, an idle session sends
 * the protocol's `ping`, and the backoff honours `retry_after` (reconnect-policy.ts).
 */
import {
  type Ack,
  type ClientCredentials,
  ClientHandshake,
  type ClientSession,
  type Deliver,
  FrameDecoder,
  fromBase64,
  type KeyAnswer,
  type History,
  type Joined,
  PeerError,
  type RawFrame,
  type ReceiptCheck,
  type ServerMessage,
  ServerIdentityError,
} from '@securechat/protocol';

import { AnswerMatcher, answerError, type RequestMessage, singleFrame } from './answer-matcher';
import {
  attemptAfterSession,
  DEFAULT_BACKOFF,
  KEEPALIVE_MS,
  LOGIN_TIMEOUT_MS,
  reconnectDelay,
} from './reconnect-policy';
import { SUBPROTOCOL } from './server-probe';
import { SessionTranscript } from './session-transcript';

/** The incoming message is already whole in memory: its size bounds nothing more. */
const MAX_INCOMING_FRAME = 0x7fff_ffff;
/** How long close() waits for the server to close after `countersign`. */
const CLOSE_WAIT_MS = 2_000;

export type ConnectionStatus =
  | { readonly state: 'connecting' }
  | { readonly state: 'connected'; readonly sessionId: string }
  | { readonly state: 'reconnecting'; readonly inSeconds: number; readonly reason: string }
  /** Ended and not coming back by itself: refused, failed, or closed by the user. */
  | { readonly state: 'offline'; readonly reason: string; readonly fatal: boolean };

export interface WebConnectionOptions {
  readonly url: string;
  /** `host:port`, for the transcript header. */
  readonly server: string;
  readonly fingerprint: string;
  readonly credentials: ClientCredentials;
  readonly onDeliver: (deliver: Deliver) => Promise<void> | void;
  readonly onStatus: (status: ConnectionStatus) => void;
  /** A session began (after each login, reconnects included); its transcript grows as it runs. */
  readonly onSession?: (transcript: SessionTranscript) => void;
  /** Seconds to wait before each reconnect attempt; the last repeats. */
  readonly backoff?: readonly number[];
}

/** Why a login failed in a way retrying cannot fix (a refused server, refused credentials). */
export class LoginRefusedError extends Error {
  override readonly name = 'LoginRefusedError';
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

/** One WebSocket and the session on it. */
class Link {
  readonly transcript = new SessionTranscript();
  session: ClientSession | undefined;
  readonly #ws: WebSocket;
  #queue = Promise.resolve();
  readonly #matcher = new AnswerMatcher((message) => this.#send(this.#live().send(message)));
  #receipt: { resolve(check: ReceiptCheck): void } | undefined;
  #failure: Error | undefined;
  readonly closed: Promise<void>;
  #serverKey: Buffer | undefined;
  #keepalive: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    ws: WebSocket,
    private readonly onDeliver: (deliver: Deliver) => Promise<void> | void,
  ) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => ws.addEventListener('close', () => resolve()));
    void this.closed.then(() => {
      if (this.#keepalive !== undefined) clearTimeout(this.#keepalive);
      this.#matcher.failAll(this.#failure ?? new Error('connection lost'));
    });
  }

  static open(url: string, onDeliver: Link['onDeliver']): Promise<Link> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, SUBPROTOCOL);
      ws.binaryType = 'arraybuffer';
      const timer = setTimeout(() => {
        reject(new Error(`no answer from ${url}`));
        ws.close();
      }, LOGIN_TIMEOUT_MS);
      const onError = () => {
        clearTimeout(timer);
        reject(new Error(`cannot reach ${url}`));
      };
      ws.addEventListener('error', onError);
      ws.addEventListener('open', () => {
        clearTimeout(timer);
        ws.removeEventListener('error', onError);
        if (ws.protocol !== SUBPROTOCOL) {
          ws.close();
          reject(new LoginRefusedError('not a securechat/1 endpoint', undefined));
          return;
        }
        resolve(new Link(ws, onDeliver));
      });
    });
  }

  /** Why the session ended abnormally (a protocol failure), once it has. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** Runs the handshake; resolves once logged in, rejects after LOGIN_TIMEOUT_MS without. */
  async login(options: WebConnectionOptions): Promise<ClientSession> {
    const handshake = new ClientHandshake({
      trust: { fingerprint: options.fingerprint },
      credentials: options.credentials,
      session: { onRecord: this.transcript.onRecord },
    });
    const startedAt = new Date();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = new Promise<ClientSession>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error('the server did not complete the login in time'));
        this.#ws.close();
      }, LOGIN_TIMEOUT_MS);
      this.#onFrame = async (frame) => {
        if (this.#serverKey === undefined) {
          const hello = JSON.parse(frame.body.toString('utf8')) as { server_key?: string };
          if (typeof hello.server_key === 'string') {
            this.#serverKey = fromBase64(hello.server_key, 'server_key');
          }
        }
        const step = await handshake.receive(frame);
        for (const bytes of step.send) this.#send(bytes);
        if (step.error) {
          this.#ws.close();
          reject(step.error);
        } else if (step.session) {
          this.session = step.session;
          this.transcript.setHeader({
            sessionId: step.session.sessionId,
            server: options.server,
            serverKey: this.#serverKey!,
            serverFingerprint: step.serverFingerprint!,
            username: step.session.username,
            h2: step.session.h2,
            startedAt,
          });
          this.#onFrame = (f) => this.#onSessionFrame(step.session!, f);
          this.#armKeepalive();
          resolve(step.session);
        }
      };
      void this.closed.then(() => reject(this.#failure ?? new Error('the server closed')));
    });
    this.#ws.addEventListener('message', ({ data }: MessageEvent<unknown>) => {
      // One frame at a time, in order: the handshake's steps and the verification are async.
      // Each message is exactly one frame (PROTOCOL.md §11.2): anything else is bad_frame.
      this.#queue = this.#queue
        .then(async () => {
          if (!(data instanceof ArrayBuffer)) throw new Error('a text message from the server');
          await this.#onFrame(singleFrame(new Uint8Array(data), MAX_INCOMING_FRAME));
        })
        .catch((error: unknown) => {
          this.#failure ??= error instanceof Error ? error : new Error(String(error));
          this.#ws.close();
        });
    });
    this.#send(handshake.start());
    try {
      return await outcome;
    } finally {
      clearTimeout(timer);
    }
  }

  #onFrame: (frame: RawFrame) => Promise<void> = () => Promise.resolve();

  async #onSessionFrame(session: ClientSession, frame: RawFrame) {
    const received = session.receive(frame);
    const message = received.message;
    switch (message.type) {
      case 'deliver':
        await this.onDeliver(message);
        // After `bye` nothing but `countersign` may go out; the message comes again next login.
        if (session.state === 'open' && this.open) {
          this.#send(session.send({ type: 'delivered', msg_id: message.msg_id }));
        }
        return;
      case 'receipt':
        this.#receipt?.resolve(received.receipt!);
        return;
      case 'key_update':
        return;
      default:
        // An answer to nothing we asked (an error about a `delivered`, a stray answer) is dropped.
        this.#matcher.onMessage(message);
        return;
    }
  }

  /** PROTOCOL.md §11.2: one frame per binary message, while a session may seal several at once. */
  #send(bytes: Buffer): void {
    for (const frame of new FrameDecoder({ maxFrame: 0x7fff_ffff }).push(bytes)) {
      this.#ws.send(frame.bytes);
    }
    if (this.session !== undefined) this.#armKeepalive();
  }

  /** A `ping` after KEEPALIVE_MS without sending anything (the server drops idle sessions). */
  #armKeepalive(): void {
    if (this.#keepalive !== undefined) clearTimeout(this.#keepalive);
    this.#keepalive = setTimeout(() => {
      this.#keepalive = undefined;
      if (this.session?.state === 'open' && this.open) {
        this.#matcher.request({ type: 'ping' }).catch(() => undefined);
      }
    }, KEEPALIVE_MS);
  }

  #live(): ClientSession {
    if (!this.session || this.session.state !== 'open' || !this.open) {
      throw new Error('not connected');
    }
    return this.session;
  }

  async sendMessage(to: string, body: string, id: string): Promise<Ack> {
    const session = this.#live();
    const signed = await session.signedSendAsync({ id, to, body, ts: Date.now() });
    const answer = this.#matcher.expectAck(id);
    try {
      this.#send(this.#live().send(signed));
    } catch (error) {
      this.#matcher.cancelSend(id, error as Error);
    }
    const message = await answer;
    if (message.type === 'error') throw answerError(message);
    return message as Ack;
  }

  async request<T extends ServerMessage>(message: RequestMessage): Promise<T> {
    this.#live();
    const reply = await this.#matcher.request(message);
    if (reply.type === 'error') throw answerError(reply);
    return reply as T;
  }

  /** bye → receipt → countersign (PROTOCOL.md §8.4); resolves with the receipt check. */
  async close(): Promise<ReceiptCheck> {
    const session = this.#live();
    const receipt = new Promise<ReceiptCheck>((resolve, reject) => {
      this.#receipt = { resolve };
      void this.closed.then(() => reject(this.#failure ?? new Error('closed before the receipt')));
    });
    this.#send(session.bye());
    const check = await receipt;
    this.#send(await session.countersignAsync());
    // The server closes next; if it does not, we do (PROTOCOL.md §11.2: status 1000).
    const timer = setTimeout(() => this.#ws.close(1000), CLOSE_WAIT_MS);
    void this.closed.then(() => clearTimeout(timer));
    return check;
  }

  drop(): void {
    this.#ws.close();
  }
}

/** The user's connection: logs in, keeps a session, reconnects when one is lost. */
export class WebConnection {
  #link: Link | undefined;
  #stopped = false;
  #closing = false;
  #attempt = 0;
  #connectedAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 0;
  readonly #idPrefix = `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

  constructor(private readonly options: WebConnectionOptions) {}

  /** The first login: rejects (with LoginRefusedError when retrying would not help) if it fails. */
  async start(): Promise<void> {
    this.options.onStatus({ state: 'connecting' });
    try {
      await this.#connect();
    } catch (error) {
      this.#stopped = true;
      const reason = describeError(error);
      this.options.onStatus({ state: 'offline', reason, fatal: true });
      throw isFatalLoginError(error) ? new LoginRefusedError(reason, error) : error;
    }
  }

  get username(): string {
    return this.options.credentials.username;
  }

  async #connect(): Promise<void> {
    const link = await Link.open(this.options.url, this.options.onDeliver);
    this.#link = link;
    const session = await link.login(this.options);
    this.#connectedAt = Date.now();
    this.options.onSession?.(link.transcript);
    this.options.onStatus({ state: 'connected', sessionId: session.sessionId });
    void link.closed.then(() => this.#onClosed(link));
  }

  #onClosed(link: Link): void {
    if (link !== this.#link) return;
    // Only a session that stayed up resets the backoff: one dropped at once must not hammer.
    this.#attempt = attemptAfterSession(this.#attempt, Date.now() - this.#connectedAt);
    const failure = link.failure;
    if (failure !== undefined) {
      link.transcript.end({ reason: 'error' });
      this.#stopped = true;
      this.options.onStatus({
        state: 'offline',
        reason: `session closed: ${describeError(failure)}`,
        fatal: true,
      });
      return;
    }
    link.transcript.end({ reason: 'connection_lost' });
    if (!this.#stopped) this.#scheduleReconnect('connection lost', undefined);
  }

  #scheduleReconnect(reason: string, error: unknown): void {
    let seconds = reconnectDelay(this.#attempt, error, this.options.backoff ?? DEFAULT_BACKOFF);
    this.#attempt += 1;
    const tick = (): void => {
      if (this.#stopped) return;
      if (seconds > 0) {
        this.options.onStatus({ state: 'reconnecting', inSeconds: seconds, reason });
        seconds -= 1;
        this.#timer = setTimeout(tick, 1000);
        return;
      }
      this.options.onStatus({ state: 'connecting' });
      this.#connect().catch((failure: unknown) => {
        if (this.#stopped) return;
        if (isFatalLoginError(failure)) {
          this.#stopped = true;
          this.options.onStatus({ state: 'offline', reason: describeError(failure), fatal: true });
        } else {
          this.#scheduleReconnect(describeError(failure), failure);
        }
      });
    };
    tick();
  }

  /** A fresh client message id (docs/PROTOCOL.md §7.5: `^[A-Za-z0-9_-]{1,64}$`, never reused). */
  newId(): string {
    this.#nextId += 1;
    return `${this.#idPrefix}-${this.#nextId}`;
  }

  #current(): Link {
    if (!this.#link?.session) throw new Error('not connected');
    return this.#link;
  }

  send(to: string, body: string, id = this.newId()): Promise<Ack> {
    return this.#current().sendMessage(to, body, id);
  }

  getKey(user: string): Promise<KeyAnswer> {
    return this.#current().request<KeyAnswer>({ type: 'get_key', user });
  }

  join(room: string): Promise<Joined> {
    return this.#current().request<Joined>({ type: 'join', room });
  }

  history(withName: string): Promise<History> {
    return this.#current().request<History>({ type: 'history', with: withName });
  }

  /** The orderly close, once; the connection then stays offline. */
  async close(): Promise<ReceiptCheck> {
    if (this.#closing) throw new Error('the session is already closing');
    const link = this.#current();
    this.#closing = true;
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const check = await link.close();
    link.transcript.end({
      reason: 'closed',
      viewsMatch: check.viewsMatch,
      signatureValid: check.signatureValid,
    });
    await link.closed;
    this.options.onStatus({ state: 'offline', reason: 'session closed', fatal: false });
    return check;
  }
}

function isFatalLoginError(error: unknown): boolean {
  if (error instanceof LoginRefusedError || error instanceof ServerIdentityError) return true;
  return error instanceof PeerError && error.code !== 'rate_limited' && error.code !== 'internal';
}

export function describeError(error: unknown): string {
  if (error instanceof PeerError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** The user key as ClientHandshake types it (browser-crypto's handles stand in for KeyObjects). */
export function asUserKey(key: unknown): ClientCredentials['privateKey'] {
  return key as ClientCredentials['privateKey'];
}
