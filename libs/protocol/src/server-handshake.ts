/**
 * The server role of the PROTOCOL.md §3 handshake as a sans-I/O state machine: frames in, frames
 * out. It does not decide logins: it hands the decrypted login to an injected verifier (the auth
 * service) and continues with its answer.
 */
import { type KeyObject } from 'node:crypto';

import { CHALLENGE_BYTES, PROTOCOL_ID, SERVER_VERSION, X25519_KEY_BYTES } from './constants';
import {
  type X25519KeyPair,
  ed25519Sign,
  exportSpki,
  importUserPublicKey,
  randomBytes as defaultRandomBytes,
  x25519,
  x25519KeyPair,
} from './crypto';
import { fromBase64, toBase64 } from './encoding';
import { type ErrorCode } from './errors/error-codes';
import { PeerError } from './errors/peer-error';
import { ProtocolError } from './errors/protocol-error';
import { type RawFrame, encodeFrame } from './frame-decoder';
import {
  computeH1,
  computeH2,
  derivePrk,
  deriveTrafficSecrets,
  serverAuthInput,
} from './key-schedule';
import { type LoginPayload, parseLoginPayload } from './messages/login-payload';
import { type Frame, parseFrame } from './messages/handshake-frames';
import { serializeJson } from './messages/json';
import { type RequestLimits } from './messages/request-rules';
import { RecordDirection } from './record-layer';
import { ServerSession } from './server-session';
import { type SessionOptions } from './session';
import { TranscriptChain } from './transcript';

/** What the verifier (the auth service) is asked to decide (PROTOCOL.md §3 step 4). */
export interface LoginRequest {
  readonly action: 'login' | 'register';
  readonly username: string;
  readonly password: string;
  /** `S`, raw bytes. */
  readonly signature: Buffer;
  /** SPKI DER, with `register` only. */
  readonly publicKey?: Buffer;
  /** H2: `signature` must verify over `clientAuthInput(h2)` = `label("SecureChat v1 client auth") || H2`. */
  readonly h2: Buffer;
}

/** Errors a verifier may answer a login with (PROTOCOL.md §3 step 4–5). */
export type LoginFailureCode = Extract<
  ErrorCode,
  | 'auth_failed'
  | 'rate_limited'
  | 'forbidden'
  | 'conflict'
  | 'bad_request'
  | 'internal'
  | 'shutting_down'
>;

export type LoginDecision =
  | {
      readonly ok: true;
      /** The user's public key (SPKI DER) as stored: it checks message signatures and the countersignature. */
      readonly publicKey: Buffer;
    }
  | {
      readonly ok: false;
      readonly code: LoginFailureCode;
      /** Seconds, with `rate_limited`. */
      readonly retryAfter?: number;
    };

export type LoginVerifier = (request: LoginRequest) => Promise<LoginDecision>;

export interface ServerIdentity {
  /** The deployment's long-term Ed25519 key (PROTOCOL.md §1). */
  readonly privateKey: KeyObject;
}

export interface ServerHandshakeOptions {
  readonly identity: ServerIdentity;
  readonly verifyLogin: LoginVerifier;
  /** The id `login_ok` and the receipt will carry. */
  readonly sessionId: string;
  readonly now?: () => number;
  /** Source of the challenge; tests inject fixed bytes. */
  readonly randomBytes?: (length: number) => Buffer;
  /** The ephemeral key pair; a fresh one when absent (tests inject the vectors' key). */
  readonly ephemeral?: X25519KeyPair;
  /**
   * Makes the ephemeral key pair, once `client_hello` has arrived (`x25519KeyPair` when
   * absent); not with `ephemeral`. Lets tests see when key generation happens.
   */
  readonly makeEphemeral?: () => X25519KeyPair;
  readonly maxFrame?: number;
  readonly limits?: RequestLimits;
  readonly session?: SessionOptions;
}

export type ServerHandshakeState =
  'expect_client_hello' | 'expect_login' | 'verifying' | 'done' | 'failed';

/** What the login frame gave that the rest of the login needs once the verifier has decided. */
interface ReadLogin {
  readonly action: 'login' | 'register';
  readonly username: string;
  readonly h2: Buffer;
  /** The receiving direction, past the login record. */
  readonly c2s: RecordDirection;
  readonly s2c: RecordDirection;
}

/** The result of one step: frames to write, in order, and whether to close after writing them. */
export interface ServerHandshakeStep {
  readonly send: Buffer[];
  readonly close: boolean;
  /**
   * Set when the handshake failed; `send` then holds the `error` frame, if any is due. A
   * PeerError means the client sent `error` itself: we close without answering.
   */
  readonly error?: ProtocolError | PeerError;
  /** Set when login succeeded: the established session. */
  readonly session?: ServerSession;
  /** The verified login, with the session. */
  readonly login?: { readonly action: 'login' | 'register'; readonly username: string };
}

const LOGIN_FAILURE_TEXT: Record<LoginFailureCode, string> = {
  auth_failed: 'authentication failed',
  rate_limited: 'too many failed logins; retry later',
  forbidden: 'registration is not allowed',
  conflict: 'username is taken',
  bad_request: 'invalid registration',
  internal: 'internal error',
  shutting_down: 'server is shutting down',
};

/**
 * Key material is made only in answer to `client_hello` (PROTOCOL.md §3 steps 1–3; our
 * docs/PROTOCOL.md §4.3): the ephemeral key pair, the identity key's SPKI export and the
 * `server_auth` signature. A connection that is accepted and never says hello thus costs no key
 * generation or signing, which keeps unauthenticated floods cheap to absorb.
 */
export class ServerHandshake {
  #state: ServerHandshakeState = 'expect_client_hello';
  readonly #options: ServerHandshakeOptions;
  /** Made on `client_hello` (PROTOCOL.md §3 step 2), used again on `login`. */
  #ephemeral: X25519KeyPair | undefined;
  #frame1: Buffer | undefined;
  #frame2: Buffer | undefined;
  #frame3: Buffer | undefined;
  /**
   * Present once the login frame gave us keys: errors from then on are records (PROTOCOL.md §2).
   */
  #s2c: RecordDirection | undefined;

  constructor(options: ServerHandshakeOptions) {
    if (options.identity.privateKey.asymmetricKeyType !== 'ed25519') {
      throw new TypeError('the server identity must be an Ed25519 private key');
    }
    if (typeof options.sessionId !== 'string' || options.sessionId.length === 0) {
      throw new TypeError('sessionId must be a non-empty string');
    }
    if (options.makeEphemeral !== undefined) {
      if (typeof options.makeEphemeral !== 'function') {
        throw new TypeError('makeEphemeral must be a function');
      }
      if (options.ephemeral !== undefined) {
        throw new TypeError('give ephemeral or makeEphemeral, not both');
      }
    }
    this.#options = options;
  }

  get state(): ServerHandshakeState {
    return this.#state;
  }

  /**
   * Feeds one frame from the client. Never throws: failures come back as a closing step.
   *
   * Not an async function: a suspended one keeps its arguments and locals, and while the
   * verifier decides (a round trip to auth, seconds under load) nothing of the login frame or
   * of what it was read into needs to live — held, it outlives young-generation collections
   * and becomes old-generation garbage, for every login.
   */
  receive(frame: RawFrame): Promise<ServerHandshakeStep> {
    try {
      switch (this.#state) {
        case 'expect_client_hello':
          return Promise.resolve(this.#onClientHello(frame));
        case 'expect_login': {
          const { request, read } = this.#readLogin(frame);
          return this.#onDecision(this.#options.verifyLogin(request), read);
        }
        case 'verifying':
        case 'done':
        case 'failed':
          // 'verifying': the client may not send before login_ok (PROTOCOL.md §3 order); 'done':
          // frames now belong to the session; 'failed': the connection is closing.
          throw new ProtocolError(
            'unexpected_message',
            `no frame expected in state ${this.#state}`,
          );
      }
    } catch (error) {
      return Promise.resolve(this.#failed(error));
    }
  }

  /**
   * Ends the handshake from our side (`handshake_timeout` after 10 s, `shutting_down`, …):
   * the `error` frame to send — a record once keys exist — then close.
   */
  abort(code: ErrorCode, message: string): ServerHandshakeStep {
    return this.#fail(new ProtocolError(code, message));
  }

  #onClientHello(frame: RawFrame): ServerHandshakeStep {
    const hello = this.#expect(parseFrame(frame.body), 'client_hello');
    if (hello.protocol !== PROTOCOL_ID) {
      throw new ProtocolError('unsupported_protocol', `only ${PROTOCOL_ID} is supported`);
    }
    this.#frame1 = frame.bytes;
    const random = this.#options.randomBytes ?? defaultRandomBytes;
    const challenge = random(CHALLENGE_BYTES);
    if (challenge.length !== CHALLENGE_BYTES)
      throw new Error('randomBytes returned the wrong length');
    const { ephemeral, makeEphemeral = x25519KeyPair } = this.#options;
    this.#ephemeral = ephemeral ?? makeEphemeral();
    this.#frame2 = this.#encode({
      type: 'server_hello',
      server_version: SERVER_VERSION,
      challenge: toBase64(challenge),
      dh_pub: toBase64(this.#ephemeral.publicRaw),
      server_key: toBase64(exportSpki(this.#options.identity.privateKey)),
    });
    const h1 = computeH1(this.#frame1, this.#frame2);
    const signature = ed25519Sign(this.#options.identity.privateKey, serverAuthInput(h1));
    this.#frame3 = this.#encode({ type: 'server_auth', signature: toBase64(signature) });
    this.#state = 'expect_login';
    return { send: [this.#frame2, this.#frame3], close: false };
  }

  /** The login frame, read and checked: what the verifier is asked, and what follows it. */
  #readLogin(frame: RawFrame): { request: LoginRequest; read: ReadLogin } {
    const login = this.#expect(parseFrame(frame.body), 'login');
    const clientDhPub = fromBase64(login.dh_pub, 'dh_pub', X25519_KEY_BYTES);
    const shared = x25519(this.#ephemeral!.privateKey, clientDhPub);
    const h2 = computeH2(this.#frame1!, this.#frame2!, this.#frame3!, clientDhPub);
    // Used up: H2 covers the frames, and the ephemeral key has agreed (PROTOCOL.md §3 step 4).
    this.#ephemeral = undefined;
    this.#frame1 = this.#frame2 = this.#frame3 = undefined;
    const secrets = deriveTrafficSecrets(derivePrk(h2, shared));
    const { c2s, s2c } = RecordDirection.pair(secrets.c2s, secrets.s2c);
    this.#s2c = s2c;

    // c2s sequence 0 is the login record (PROTOCOL.md §3 step 4). A failure to authenticate is
    // silent (PROTOCOL.md §5).
    const payload: LoginPayload = parseLoginPayload(c2s.open(fromBase64(login.payload, 'payload')));
    const publicKey =
      payload.action === 'register' ? fromBase64(payload.public_key, 'public_key') : undefined;
    if (publicKey !== undefined) importUserPublicKey(publicKey); // bad_request before any work

    this.#state = 'verifying';
    return {
      request: {
        action: payload.action,
        username: payload.username,
        password: payload.password,
        signature: fromBase64(payload.signature, 'signature'),
        ...(publicKey === undefined ? {} : { publicKey }),
        h2,
      },
      read: { action: payload.action, username: payload.username, h2, c2s, s2c },
    };
  }

  /**
   * The verifier's decision on the login (PROTOCOL.md §3 step 4–5): the session, or the refusal.
   */
  async #onDecision(
    decided: Promise<LoginDecision>,
    read: ReadLogin,
  ): Promise<ServerHandshakeStep> {
    try {
      return this.#afterDecision(await decided, read);
    } catch (error) {
      return this.#failed(error);
    }
  }

  #afterDecision(decision: LoginDecision, read: ReadLogin): ServerHandshakeStep {
    const { h2, c2s, s2c } = read;
    if (this.#state !== 'verifying') {
      // abort() ran while the verifier was busy (timeout, shutdown): its step already closed.
      return { send: [], close: true, error: new ProtocolError('internal', 'handshake aborted') };
    }
    if (!decision.ok) {
      throw new ProtocolError(
        decision.code,
        LOGIN_FAILURE_TEXT[decision.code],
        decision.retryAfter === undefined ? {} : { retryAfter: decision.retryAfter },
      );
    }

    const userKey = importUserPublicKey(decision.publicKey);
    const c2sChain = new TranscriptChain(h2);
    const s2cChain = new TranscriptChain(h2);
    const now = this.#options.now ?? Date.now;
    const loginOk = serializeJson({
      type: 'login_ok',
      username: read.username,
      session_id: this.#options.sessionId,
      server_time: now(),
    });
    // PROTOCOL.md §7: the s2c chain starts with login_ok; the c2s chain leaves the login record
    // out.
    const sequence = s2c.sequence;
    const loginOkFrame = this.#sealRecord(loginOk);
    s2cChain.append(loginOk);
    this.#options.session?.onRecord?.({
      direction: 's2c',
      sequence,
      plaintext: loginOk,
      chained: true,
    });

    const session = new ServerSession({
      sessionId: this.#options.sessionId,
      username: read.username,
      h2,
      sending: s2c,
      receiving: c2s,
      c2sChain,
      s2cChain,
      identityKey: this.#options.identity.privateKey,
      userKey,
      ...(this.#options.limits === undefined ? {} : { limits: this.#options.limits }),
      options: {
        ...this.#options.session,
        maxFrame: this.#options.maxFrame ?? this.#options.session?.maxFrame,
      },
    });
    this.#state = 'done';
    return {
      send: [loginOkFrame],
      close: false,
      session,
      login: { action: read.action, username: read.username },
    };
  }

  /**
   * A failure of a step as its closing step: PeerError as it is, anything else as PROTOCOL.md §2
   * says.
   */
  #failed(error: unknown): ServerHandshakeStep {
    if (error instanceof PeerError) {
      this.#state = 'failed';
      return { send: [], close: true, error };
    }
    return this.#fail(
      error instanceof ProtocolError
        ? error
        : new ProtocolError('internal', 'internal error', { cause: error }),
    );
  }

  #expect<T extends Frame['type']>(frame: Frame, type: T): Extract<Frame, { type: T }> {
    if (frame.type === 'error') {
      throw new PeerError(frame.code, frame.message, frame.retry_after, frame.id);
    }
    if (frame.type !== type) throw new ProtocolError('unexpected_message', `expected ${type}`);
    return frame as Extract<Frame, { type: T }>;
  }

  #encode(message: object): Buffer {
    return encodeFrame(serializeJson(message), this.#options.maxFrame);
  }

  #sealRecord(plaintext: Buffer): Buffer {
    return this.#encode({ type: 'enc', ct: toBase64(this.#s2c!.seal(plaintext)) });
  }

  #fail(error: ProtocolError): ServerHandshakeStep {
    const alreadyFailed = this.#state === 'failed' || this.#state === 'done';
    this.#state = 'failed';
    if (alreadyFailed || error.silent) return { send: [], close: true, error };
    const body = {
      type: 'error',
      code: error.code,
      message: error.message,
      ...(error.retryAfter === undefined ? {} : { retry_after: error.retryAfter }),
    };
    // PROTOCOL.md §2: plaintext before the keys exist, a record after.
    const frame = this.#s2c ? this.#sealRecord(serializeJson(body)) : this.#encode(body);
    return { send: [frame], close: true, error };
  }
}
