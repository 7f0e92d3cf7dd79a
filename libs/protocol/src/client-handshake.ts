/**
 * The client role of the PROTOCOL.md §3 handshake as a sans-I/O state machine. It checks the
 * server's key against the pinned fingerprint (or asks a trust-on-first-use callback) and the
 * `server_auth` signature, and refuses before it sends anything else (PROTOCOL.md §3 step 3).
 */
import { type KeyObject } from 'node:crypto';

import { NONCE_BYTES, PROTOCOL_ID } from './constants';
import {
  type X25519KeyPair,
  assertUserPrivateKey,
  ed25519Verify,
  exportSpki,
  fingerprint,
  importServerKey,
  randomBytes as defaultRandomBytes,
  timingSafeEqual,
  userSignAsync,
  x25519,
  x25519KeyPair,
} from './crypto';
import { fromBase64, toBase64 } from './encoding';
import { PeerError } from './errors/peer-error';
import { ProtocolError } from './errors/protocol-error';
import { ServerIdentityError } from './errors/server-identity-error';
import { type RawFrame, encodeFrame } from './frame-decoder';
import { ClientSession } from './client-session';
import {
  clientAuthInput,
  computeH1,
  computeH2,
  derivePrk,
  deriveTrafficSecrets,
  serverAuthInput,
} from './key-schedule';
import { parseStrict } from './messages/fields';
import { type Frame, type ServerHello, errorSchema, parseFrame } from './messages/handshake-frames';
import { parseJsonObject, serializeJson } from './messages/json';
import { type LoginOk, loginOkSchema } from './messages/server-messages';
import { RecordDirection } from './record-layer';
import { type SessionOptions } from './session';
import { TranscriptChain } from './transcript';

/** How the client decides to trust `server_key` (PROTOCOL.md §3 step 3). */
export interface ServerTrust {
  /** The fingerprint configured or pinned for this server (`sha256:…`). */
  readonly fingerprint?: string;
  /**
   * Asked only when no fingerprint is pinned: return true to trust (and pin) this key. Like
   * SSH's first-contact prompt.
   */
  readonly onFirstUse?: (presented: {
    fingerprint: string;
    spki: Buffer;
  }) => boolean | Promise<boolean>;
}

export interface ClientCredentials {
  readonly action: 'login' | 'register';
  readonly username: string;
  readonly password: string;
  /** The user's RSA (≥ 2048 bits) or Ed25519 private key (PROTOCOL.md §1). */
  readonly privateKey: KeyObject;
}

export interface ClientHandshakeOptions {
  readonly trust: ServerTrust;
  readonly credentials: ClientCredentials;
  readonly randomBytes?: (length: number) => Buffer;
  readonly ephemeral?: X25519KeyPair;
  readonly maxFrame?: number;
  readonly session?: SessionOptions;
}

export type ClientHandshakeState =
  'start' | 'expect_server_hello' | 'expect_server_auth' | 'expect_login_reply' | 'done' | 'failed';

export interface ClientHandshakeStep {
  readonly send: Buffer[];
  readonly close: boolean;
  /**
   * Why the handshake failed: ServerIdentityError (we refused the server; nothing was sent),
   * PeerError (the server answered with `error`, e.g. `auth_failed`, `rate_limited`) or
   * ProtocolError (the server broke the protocol).
   */
  readonly error?: ServerIdentityError | PeerError | ProtocolError;
  readonly session?: ClientSession;
  readonly loginOk?: LoginOk;
  /** The server's fingerprint, once known: for pinning on first use. */
  readonly serverFingerprint?: string;
}

const FINGERPRINT_PATTERN = /^sha256:[0-9a-f]{64}$/;

export class ClientHandshake {
  #state: ClientHandshakeState = 'start';
  readonly #options: ClientHandshakeOptions;
  readonly #ephemeral: X25519KeyPair;
  #frame1: Buffer | undefined;
  /** #onServerAuth is waiting (trust decision, signature): see receive. */
  #awaiting = false;
  #hello:
    { frame: Buffer; message: ServerHello; serverKey: KeyObject; fingerprint: string } | undefined;
  #keys: { h2: Buffer; c2s: RecordDirection; s2c: RecordDirection } | undefined;

  constructor(options: ClientHandshakeOptions) {
    const { trust, credentials } = options;
    if (trust.fingerprint === undefined && trust.onFirstUse === undefined) {
      throw new TypeError('trust needs a pinned fingerprint or an onFirstUse callback');
    }
    if (trust.fingerprint !== undefined && !FINGERPRINT_PATTERN.test(trust.fingerprint)) {
      throw new TypeError('trust.fingerprint must look like sha256:<64 lowercase hex>');
    }
    assertUserPrivateKey(credentials.privateKey);
    this.#options = options;
    this.#ephemeral = options.ephemeral ?? x25519KeyPair();
  }

  get state(): ClientHandshakeState {
    return this.#state;
  }

  /** frame1, the `client_hello` (PROTOCOL.md §3 step 1). */
  start(): Buffer {
    if (this.#state !== 'start') throw new Error('start() may be called once');
    const nonce = (this.#options.randomBytes ?? defaultRandomBytes)(NONCE_BYTES);
    if (nonce.length !== NONCE_BYTES) throw new Error('randomBytes returned the wrong length');
    this.#frame1 = this.#encode({
      type: 'client_hello',
      protocol: PROTOCOL_ID,
      nonce: toBase64(nonce),
    });
    this.#state = 'expect_server_hello';
    return this.#frame1;
  }

  /**
   * Feeds one frame from the server. Never throws: failures come back as a closing step. A frame
   * that arrives while `server_auth` is still being handled (waiting for `onFirstUse` or for an
   * asynchronous signature) fails the handshake: the server must wait for our `login`.
   */
  async receive(frame: RawFrame): Promise<ClientHandshakeStep> {
    if (this.#awaiting) {
      return this.#fail(
        new ProtocolError('unexpected_message', 'a frame arrived before our login was sent'),
      );
    }
    return this.#receiveOne(frame);
  }

  async #receiveOne(frame: RawFrame): Promise<ClientHandshakeStep> {
    try {
      switch (this.#state) {
        case 'expect_server_hello':
          return this.#onServerHello(frame);
        case 'expect_server_auth':
          return await this.#onServerAuth(frame);
        case 'expect_login_reply':
          return this.#onLoginReply(frame);
        case 'start':
        case 'done':
        case 'failed':
          throw new ProtocolError(
            'unexpected_message',
            `no frame expected in state ${this.#state}`,
          );
      }
    } catch (error) {
      return this.#fail(error);
    }
  }

  #onServerHello(frame: RawFrame): ClientHandshakeStep {
    const message = this.#expect(parseFrame(frame.body), 'server_hello');
    const spki = fromBase64(message.server_key, 'server_key');
    const serverKey = importServerKey(spki);
    this.#hello = { frame: frame.bytes, message, serverKey, fingerprint: fingerprint(spki) };
    this.#state = 'expect_server_auth';
    return { send: [], close: false, serverFingerprint: this.#hello.fingerprint };
  }

  async #onServerAuth(frame: RawFrame): Promise<ClientHandshakeStep> {
    const auth = this.#expect(parseFrame(frame.body), 'server_auth');
    const hello = this.#hello!;
    const { trust } = this.#options;

    // PROTOCOL.md §3 step 3: the signature must verify and the key must be the trusted one, or we
    // stop here. The signature first, so that a key is never offered for pinning unless it proved
    // itself over this handshake.
    const h1 = computeH1(this.#frame1!, hello.frame);
    if (
      !ed25519Verify(
        hello.serverKey,
        serverAuthInput(h1),
        fromBase64(auth.signature, 'signature', 64),
      )
    ) {
      throw new ServerIdentityError('bad_server_signature', hello.fingerprint, trust.fingerprint);
    }
    const { credentials } = this.#options;
    this.#awaiting = true;
    let signature: string;
    try {
      if (trust.fingerprint !== undefined) {
        if (!timingSafeEqual(Buffer.from(trust.fingerprint), Buffer.from(hello.fingerprint))) {
          throw new ServerIdentityError(
            'server_key_mismatch',
            hello.fingerprint,
            trust.fingerprint,
          );
        }
      } else if (
        !(await trust.onFirstUse!({
          fingerprint: hello.fingerprint,
          spki: exportSpki(hello.serverKey),
        }))
      ) {
        throw new ServerIdentityError('server_key_untrusted', hello.fingerprint);
      }

      const serverDhPub = fromBase64(hello.message.dh_pub, 'dh_pub', 32);
      const shared = x25519(this.#ephemeral.privateKey, serverDhPub);
      const h2 = computeH2(this.#frame1!, hello.frame, frame.bytes, this.#ephemeral.publicRaw);
      const secrets = deriveTrafficSecrets(derivePrk(h2, shared));
      this.#keys = {
        h2,
        c2s: new RecordDirection('c2s', secrets.c2s),
        s2c: new RecordDirection('s2c', secrets.s2c),
      };

      // The async form: in a browser an RSA key signs through WebCrypto only (crypto/browser-crypto.ts).
      signature = toBase64(await userSignAsync(credentials.privateKey, clientAuthInput(h2)));
    } finally {
      this.#awaiting = false;
    }
    // A frame that came meanwhile failed the handshake (see receive): no login goes out.
    if (this.#state !== 'expect_server_auth') {
      return {
        send: [],
        close: true,
        error: new ProtocolError('unexpected_message', 'a frame arrived before our login was sent'),
      };
    }
    const payload =
      credentials.action === 'login'
        ? {
            action: 'login',
            username: credentials.username,
            password: credentials.password,
            signature,
          }
        : {
            action: 'register',
            username: credentials.username,
            password: credentials.password,
            signature,
            public_key: toBase64(exportSpki(credentials.privateKey)),
          };
    // The login record is c2s sequence 0 and stays out of the chain: it holds the password
    // (PROTOCOL.md §7).
    const ct = this.#keys.c2s.seal(serializeJson(payload));
    const frame4 = this.#encode({
      type: 'login',
      dh_pub: toBase64(this.#ephemeral.publicRaw),
      payload: toBase64(ct),
    });
    this.#state = 'expect_login_reply';
    return { send: [frame4], close: false, serverFingerprint: hello.fingerprint };
  }

  #onLoginReply(frame: RawFrame): ClientHandshakeStep {
    const outer = parseFrame(frame.body);
    if (outer.type === 'error') throw this.#peerError(outer); // e.g. a plaintext rate_limited
    const enc = this.#expect(outer, 'enc');
    const keys = this.#keys!;
    const plaintext = keys.s2c.open(fromBase64(enc.ct, 'ct'));
    const object = parseJsonObject(plaintext);
    if (object.type === 'error') {
      throw this.#peerError(parseStrict(errorSchema, object, 'error'));
    }
    const loginOk = parseStrict(loginOkSchema, object, 'login_ok');
    if (loginOk.username !== this.#options.credentials.username) {
      throw new ProtocolError('unexpected_message', 'login_ok names another user');
    }
    const c2sChain = new TranscriptChain(keys.h2);
    const s2cChain = new TranscriptChain(keys.h2);
    s2cChain.append(plaintext);
    this.#options.session?.onRecord?.({ direction: 's2c', sequence: 0, plaintext, chained: true });
    const session = new ClientSession({
      sessionId: loginOk.session_id,
      username: loginOk.username,
      h2: keys.h2,
      sending: keys.c2s,
      receiving: keys.s2c,
      c2sChain,
      s2cChain,
      serverKey: this.#hello!.serverKey,
      userKey: this.#options.credentials.privateKey,
      options: {
        ...this.#options.session,
        maxFrame: this.#options.maxFrame ?? this.#options.session?.maxFrame,
      },
    });
    this.#state = 'done';
    return {
      send: [],
      close: false,
      session,
      loginOk,
      serverFingerprint: this.#hello!.fingerprint,
    };
  }

  #peerError(error: {
    code: PeerError['code'];
    message: string;
    retry_after?: number;
    id?: string;
  }) {
    return new PeerError(error.code, error.message, error.retry_after, error.id);
  }

  #expect<T extends Frame['type']>(frame: Frame, type: T): Extract<Frame, { type: T }> {
    if (frame.type === 'error') throw this.#peerError(frame);
    if (frame.type !== type) throw new ProtocolError('unexpected_message', `expected ${type}`);
    return frame as Extract<Frame, { type: T }>;
  }

  #encode(message: object): Buffer {
    return encodeFrame(serializeJson(message), this.#options.maxFrame);
  }

  #fail(cause: unknown): ClientHandshakeStep {
    this.#state = 'failed';
    const error =
      cause instanceof ServerIdentityError ||
      cause instanceof PeerError ||
      cause instanceof ProtocolError
        ? cause
        : new ProtocolError('internal', 'internal error', { cause });
    // We tell the server why only when it broke the protocol and before keys exist; a refused
    // server gets nothing (PROTOCOL.md §3 step 3), and a server that sent an error is already
    // closing.
    const tell = error instanceof ProtocolError && !error.silent && this.#keys === undefined;
    const send = tell
      ? [this.#encode({ type: 'error', code: error.code, message: error.message })]
      : [];
    return { send, close: true, error };
  }
}
