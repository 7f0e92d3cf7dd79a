/**
 * The scripted peer of the misbehaving-peer suite (misbehaving-peer.cases.ts): a securechat/1
 * client built from libs/protocol's primitives, not from ClientHandshake/ClientSession, so that
 * it can do anything on the wire — send frames out of order, seal any plaintext as the next
 * record, reuse or skip sequence numbers, keep a stale key — while still reading every answer
 * the server sends (plaintext frames before the keys, records after) for the test to judge.
 */
import { constants, type KeyObject, sign as nodeSign } from 'node:crypto';
import { connect, type Socket } from 'node:net';

import {
  clientAuthInput,
  computeH1,
  computeH2,
  countersignSignedBytes,
  DEFAULT_MAX_FRAME,
  derivePrk,
  deriveTrafficSecrets,
  ed25519Verify,
  exportSpki,
  fingerprint,
  fromBase64,
  FrameDecoder,
  importServerKey,
  messageSignedBytes,
  parseJsonObject,
  randomBytes,
  receiptDigest,
  RecordDirection,
  serverAuthInput,
  serializeJson,
  toBase64,
  TranscriptChain,
  u32,
  userSign,
  x25519,
  x25519KeyPair,
  type X25519KeyPair,
} from '@securechat/protocol';

/** How long a peer waits for an answer it expects before the case fails. */
export const ANSWER_TIMEOUT_MS = 20_000;

export type Json = Record<string, unknown>;

/** One thing the server sent, as the peer read it. */
export interface Received {
  readonly message: Json;
  /** An encrypted record (PROTOCOL.md §5), or a plaintext frame. */
  readonly sealed: boolean;
  /**
   * Whether the peer had sent a well-formed `login` frame before this arrived: from then on the
   * server's errors are records (PROTOCOL.md §2).
   */
  readonly afterLogin: boolean;
  /** The frame as it crossed the wire, length prefix included (PROTOCOL.md §2: what is hashed). */
  readonly frame: Buffer;
  /** The record's plaintext (the frame's body for a plaintext frame). */
  readonly plaintext: Buffer;
}

/** An account the suite registered. */
export interface Account {
  readonly username: string;
  readonly password: string;
  readonly key: KeyObject;
}

/** `u32(N) || body`, with no bound check: oversized and undersized frames are the point here. */
export function rawFrame(body: Buffer | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** A frame holding `message` as JSON text (or the text given as is). */
export function jsonFrame(message: Json | string): Buffer {
  return rawFrame(typeof message === 'string' ? message : serializeJson(message));
}

/** A well-formed `client_hello` (PROTOCOL.md §3 step 1). */
export function helloMessage(): Json {
  return { type: 'client_hello', protocol: 'securechat/1', nonce: toBase64(randomBytes(32)) };
}

/**
 * An RSA-PSS signature with another salt length than PROTOCOL.md §1's 32 (node's default is the
 * largest).
 */
export function rsaPssSign(key: KeyObject, data: Buffer, saltLength: number): Buffer {
  return nodeSign('sha256', data, {
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength,
  });
}

/** A PKCS#1 v1.5 signature, which PROTOCOL.md §1 says a verifier never accepts. */
export function rsaPkcs1Sign(key: KeyObject, data: Buffer): Buffer {
  return nodeSign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING });
}

/** What the login record holds (PROTOCOL.md §3 step 4); every member may be replaced or dropped. */
export interface LoginOptions {
  readonly account: Account;
  readonly action?: 'login' | 'register';
  /** Replaces the login plaintext: an object (serialised) or raw bytes. Given H2 and the default. */
  readonly plaintext?: (h2: Buffer, standard: Json) => Json | Buffer | string;
  /** The client's X25519 public key as sent (default: the peer's own). */
  readonly dhPub?: Buffer;
  /** Seal the login record at this c2s sequence number instead of 0. */
  readonly sequence?: number;
}

type Waiter = {
  readonly test: (r: Received) => boolean;
  readonly resolve: (r: Received) => void;
  readonly reject: (e: Error) => void;
};

/**
 * One connection to the server. Everything the server sends is decoded as it arrives and kept
 * in `received`; anything that breaks the protocol *on the server's side* (an s2c record that
 * does not authenticate, an oversized frame, plaintext where a record was due) goes into
 * `violations`.
 */
export class ScriptedPeer {
  readonly received: Received[] = [];
  readonly violations: string[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  readonly #consumed = new Set<Received>();
  #waiters: Waiter[] = [];
  readonly #decoder = new FrameDecoder({ maxFrame: DEFAULT_MAX_FRAME });
  #decoderFailed = false;

  /** The handshake so far. */
  frame1: Buffer | undefined;
  frame2: Buffer | undefined;
  frame3: Buffer | undefined;
  serverDhPub: Buffer | undefined;
  readonly ephemeral: X25519KeyPair = x25519KeyPair();
  /** Session keys, once the peer made its login frame. */
  h2: Buffer | undefined;
  c2s: RecordDirection | undefined;
  s2c: RecordDirection | undefined;
  /**
   * Set once a well-formed `login` frame went out: the server's answers are records now
   * (PROTOCOL.md §2).
   */
  loginSent = false;
  /** Set by login_ok. */
  account: Account | undefined;
  sessionId: string | undefined;
  /** The peer's view of the PROTOCOL.md §7 chains. */
  c2sChain: TranscriptChain | undefined;
  s2cChain: TranscriptChain | undefined;
  #receiptSeen = false;
  /** Messages read and thrown away at once (a flood of pongs), not kept in `received`. */
  discard: ((m: Json) => boolean) | undefined;

  private constructor(
    readonly socket: Socket,
    readonly serverFingerprint: string,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        for (const waiter of this.#waiters.splice(0)) {
          waiter.reject(new Error('the server closed the connection'));
        }
        resolve();
      }),
    );
  }

  static open(port: number, serverFingerprint: string): Promise<ScriptedPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', noDelay: true }, () => {
        socket.off('error', reject);
        resolve(new ScriptedPeer(socket, serverFingerprint));
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  // ------------------------------------------------------------------ reading

  #onData(chunk: Buffer): void {
    if (this.#decoderFailed) return;
    let frames;
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#decoderFailed = true;
      this.violations.push(`server sent a bad frame: ${(error as Error).message}`);
      return;
    }
    for (const { bytes, body } of frames) this.#onFrame(bytes, body);
  }

  #onFrame(frame: Buffer, body: Buffer): void {
    let outer: Json;
    try {
      outer = parseJsonObject(body);
    } catch (error) {
      this.violations.push(`server frame is not JSON: ${(error as Error).message}`);
      return;
    }
    let received: Received;
    if (outer.type === 'enc' && this.s2c) {
      let plaintext: Buffer;
      try {
        plaintext = this.s2c.open(fromBase64(outer.ct as string, 'ct'));
      } catch (error) {
        this.violations.push(`s2c record does not open: ${(error as Error).message}`);
        return;
      }
      const message = parseJsonObject(plaintext);
      if (message.type === 'key_update') this.s2c.update();
      if (message.type === 'receipt') this.#receiptSeen = true;
      else if (!this.#receiptSeen) this.s2cChain?.append(plaintext);
      received = { message, sealed: true, afterLogin: this.loginSent, frame, plaintext };
    } else {
      if (this.loginSent && outer.type !== 'error') {
        this.violations.push(`plaintext ${String(outer.type)} frame after the login`);
      }
      received = {
        message: outer,
        sealed: false,
        afterLogin: this.loginSent,
        frame,
        plaintext: body,
      };
    }
    if (this.discard?.(received.message)) return;
    this.received.push(received);
    const index = this.#waiters.findIndex((w) => w.test(received));
    if (index >= 0) {
      this.#consumed.add(received);
      this.#waiters.splice(index, 1)[0]!.resolve(received);
    }
  }

  /** Every `error` the server sent, in order. */
  get errors(): Received[] {
    return this.received.filter((r) => r.message.type === 'error');
  }

  /**
   * The first message of `type` (matching `match`) not yet taken, already received or still to
   * come. Fails when the connection closes first, or after `timeoutMs`.
   */
  next(type: string, match: (m: Json) => boolean = () => true, timeoutMs = ANSWER_TIMEOUT_MS) {
    return this.nextWhere((m) => m.type === type && match(m), `a ${type}`, timeoutMs);
  }

  /** The first message not yet taken that passes `test` (see `next`). */
  nextWhere(test: (m: Json) => boolean, what: string, timeoutMs = ANSWER_TIMEOUT_MS) {
    const matches = (r: Received) => test(r.message);
    const found = this.received.find((r) => !this.#consumed.has(r) && matches(r));
    if (found) {
      this.#consumed.add(found);
      return Promise.resolve(found.message);
    }
    if (this.#isClosed) {
      return Promise.reject(new Error(`no ${what}: the server closed the connection`));
    }
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.test !== matches);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push({
        test: matches,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r.message);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(new Error(`no ${what}: ${e.message}`));
        },
      });
    });
  }

  /** Resolves when the server closed the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the server did not close within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------------ writing

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Writes one frame holding `message` (an object, or JSON text as given). */
  writeJson(message: Json | string): void {
    this.write(jsonFrame(message));
  }

  // ------------------------------------------------------------------ handshake

  /** Sends `client_hello` (a well-formed one unless told), remembering it as frame1. */
  hello(message: Json | string | Buffer = helloMessage()): void {
    this.frame1 = Buffer.isBuffer(message) ? rawFrame(message) : jsonFrame(message);
    this.write(this.frame1);
  }

  /**
   * Waits for `server_hello` and `server_auth` and checks them as a client must (PROTOCOL.md §3
   * step 3).
   */
  async serverHello(): Promise<void> {
    const hello = await this.next('server_hello');
    const auth = await this.next('server_auth');
    this.frame2 = this.received.find((r) => r.message === hello)!.frame;
    this.frame3 = this.received.find((r) => r.message === auth)!.frame;
    const spki = fromBase64(hello.server_key as string, 'server_key');
    if (fingerprint(spki) !== this.serverFingerprint) throw new Error('server key is not pinned');
    const signed = serverAuthInput(computeH1(this.frame1!, this.frame2));
    if (
      !ed25519Verify(importServerKey(spki), signed, fromBase64(auth.signature as string, 'sig'))
    ) {
      throw new Error('server_auth does not verify');
    }
    this.serverDhPub = fromBase64(hello.dh_pub as string, 'dh_pub', 32);
  }

  /** The H2 of this handshake for a client key `dhPub` (PROTOCOL.md §3 step 4). */
  h2For(dhPub: Buffer = this.ephemeral.publicRaw): Buffer {
    return computeH2(this.frame1!, this.frame2!, this.frame3!, dhPub);
  }

  /**
   * The `login` frame (PROTOCOL.md §3 step 4), built as told; derives the session keys on the way.
   */
  loginFrame(options: LoginOptions): Buffer {
    const { account, action = 'login' } = options;
    const h2 = this.h2For();
    const secrets = deriveTrafficSecrets(
      derivePrk(h2, x25519(this.ephemeral.privateKey, this.serverDhPub!)),
    );
    this.h2 = h2;
    this.c2s = new RecordDirection('c2s', secrets.c2s, options.sequence ?? 0);
    this.s2c = new RecordDirection('s2c', secrets.s2c);
    const signature = toBase64(userSign(account.key, clientAuthInput(h2)));
    const standard: Json = {
      action,
      username: account.username,
      password: account.password,
      signature,
      ...(action === 'register' ? { public_key: toBase64(exportSpki(account.key)) } : {}),
    };
    const plaintext = options.plaintext?.(h2, standard) ?? standard;
    const bytes =
      typeof plaintext === 'string'
        ? Buffer.from(plaintext, 'utf8')
        : Buffer.isBuffer(plaintext)
          ? plaintext
          : serializeJson(plaintext);
    return jsonFrame({
      type: 'login',
      dh_pub: toBase64(options.dhPub ?? this.ephemeral.publicRaw),
      payload: toBase64(this.c2s.seal(bytes)),
    });
  }

  /**
   * Writes a `login` frame that the server can take keys from (PROTOCOL.md §2: its answers are
   * records).
   */
  sendLogin(options: LoginOptions): Buffer {
    const frame = this.loginFrame(options);
    this.loginSent = true;
    this.write(frame);
    return frame;
  }

  /** The whole handshake as a good client runs it, as `account`; resolves with `login_ok`. */
  async login(account: Account, action: 'login' | 'register' = 'login'): Promise<Json> {
    this.hello();
    await this.serverHello();
    this.sendLogin({ account, action });
    return this.loginReply(account);
  }

  /** Waits for `login_ok` and starts the session's chains (PROTOCOL.md §7). */
  async loginReply(account: Account): Promise<Json> {
    const first = await this.nextWhere(
      (m) => m.type === 'login_ok' || m.type === 'error',
      'answer to the login',
    );
    if (first.type !== 'login_ok') {
      throw new Error(`login refused: ${String(first.code)} ${String(first.message)}`);
    }
    this.account = account;
    this.sessionId = first.session_id as string;
    this.c2sChain = new TranscriptChain(this.h2!);
    this.s2cChain = new TranscriptChain(this.h2!);
    // The s2c chain starts with login_ok (PROTOCOL.md §7); it and what came in the same read
    // arrived before the chain existed.
    const from = this.received.findIndex((r) => r.message === first);
    for (const r of this.received.slice(from)) {
      if (r.sealed && r.message.type !== 'receipt') this.s2cChain.append(r.plaintext);
    }
    return first;
  }

  // ------------------------------------------------------------------ records

  /**
   * Seals `plaintext` (an object, JSON text, or raw bytes) as the next c2s record and returns the
   * `enc` frame, unsent. Chained (PROTOCOL.md §7) unless told otherwise or it is
   * `bye`/`countersign`.
   */
  seal(plaintext: Json | string | Buffer, options: { chain?: boolean } = {}): Buffer {
    const bytes =
      typeof plaintext === 'string'
        ? Buffer.from(plaintext, 'utf8')
        : Buffer.isBuffer(plaintext)
          ? plaintext
          : serializeJson(plaintext);
    const type = Buffer.isBuffer(plaintext) || typeof plaintext === 'string' ? '' : plaintext.type;
    const chain = options.chain ?? (type !== 'bye' && type !== 'countersign');
    const ct = this.c2s!.seal(bytes);
    if (chain) this.c2sChain?.append(bytes);
    return jsonFrame({ type: 'enc', ct: toBase64(ct) });
  }

  /** Seals and writes one record. */
  send(plaintext: Json | string | Buffer, options: { chain?: boolean } = {}): Buffer {
    const frame = this.seal(plaintext, options);
    this.write(frame);
    return frame;
  }

  /** `key_update` (PROTOCOL.md §4): sealed under the old key, then the sending key moves on. */
  keyUpdate(): void {
    this.send({ type: 'key_update' });
    this.c2s!.update();
  }

  /**
   * A `send` signed by this session's user (PROTOCOL.md §6), with any member replaced afterwards.
   */
  signedSend(
    fields: { id: string; to: string; body: string; ts?: number },
    extra: Json = {},
  ): Json {
    const ts = fields.ts ?? Date.now();
    const sig = userSign(
      this.account!.key,
      messageSignedBytes({ from: this.account!.username, ...fields, ts }),
    );
    return { type: 'send', ...fields, ts, sig: toBase64(sig), ...extra };
  }

  /** `ping` → `pong` with the same `n`: the session is alive and in step. */
  async ping(n = Math.floor(Math.random() * 2 ** 31)): Promise<void> {
    this.send({ type: 'ping', n });
    await this.next('pong', (m) => m.n === n);
  }

  /** PROTOCOL.md §7: `bye`, then the receipt. */
  async bye(): Promise<Json> {
    this.send({ type: 'bye' });
    return this.next('receipt');
  }

  /**
   * PROTOCOL.md §7: `countersign` over the peer's own view, with members replaced by `override`.
   */
  countersign(override: Json = {}): Json {
    const view = {
      sessionId: this.sessionId!,
      c2sCount: this.c2sChain!.count,
      c2sChain: this.c2sChain!.head,
      s2cCount: this.s2cChain!.count,
      s2cChain: this.s2cChain!.head,
    };
    const signature = userSign(this.account!.key, countersignSignedBytes(receiptDigest(view)));
    return {
      type: 'countersign',
      c2s_count: view.c2sCount,
      c2s_chain: toBase64(view.c2sChain),
      s2c_count: view.s2cCount,
      s2c_chain: toBase64(view.s2cChain),
      signature: toBase64(signature),
      ...override,
    };
  }

  destroy(): void {
    this.socket.destroy();
  }
}
