/**
 * One load-generator connection, for SecureChat (through libs/client, exactly what a real
 * client does: pinning, signing, verifying every delivery, answering `delivered`) or for the
 * TLS baseline (bench/tls-relay.ts), behind one interface so that every workload drives both
 * the same way.
 */
import { type KeyObject, generateKeyPair, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';

import { MemoryKnownServersStore, MemoryPeerKeyStore, SecureChatClient } from '@securechat/client';

import { type BaselineMessage, FrameReader, encodeFrame } from './tls-wire';

export interface Target {
  readonly host: string;
  readonly port: number;
  /** SecureChat: the server fingerprint to pin; baseline: unused. */
  readonly fingerprint: string;
}

export interface LoadClient {
  readonly username: string;
  /** Connects, handshakes and logs in (registers the first time for SecureChat). */
  connect(): Promise<void>;
  /** Resolves at the server's ack. */
  send(to: string, body: string): Promise<void>;
  join(room: string): Promise<void>;
  /** The orderly close of the protocol. */
  close(): Promise<void>;
}

export interface LoadClientOptions {
  readonly protocol: 'securechat' | 'tls';
  readonly target: Target;
  readonly username: string;
  readonly action: 'login' | 'register';
  /** A delivery arrived (body, and whether its signature verified: always true for TLS). */
  readonly onDeliver: (body: string, verified: boolean) => void;
  readonly onError: (error: Error) => void;
  /** CA file (the baseline's self-signed certificate). */
  readonly caFile?: string;
  /** SecureChat: the user's key (kept between a register and later logins). */
  readonly privateKey?: KeyObject;
}

export const LOAD_PASSWORD = 'benchmark password, not a secret';

export function createLoadClient(options: LoadClientOptions): LoadClient {
  return options.protocol === 'securechat'
    ? new SecureChatLoadClient(options)
    : new TlsLoadClient(options);
}

/**
 * The user key types the bench can give its clients (docs/PROTOCOL.md §2.2 allows Ed25519 and RSA
 * of at least 2048 bits): RSA keys are made as `securechat keygen --type rsa` makes them (apps/cli
 * key-files.ts: rsaEncryption, 2048 bits, e = 65537); libs/protocol signs with any RSA key
 * as RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt).
 */
export type UserKeyType = 'ed25519' | 'rsa';

export const RSA_BENCH_BITS = 2048;

export function newUserKey(type: UserKeyType = 'ed25519'): KeyObject {
  return type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: RSA_BENCH_BITS, publicExponent: 65537 })
        .privateKey
    : generateKeyPairSync('ed25519').privateKey;
}

const generateAsync = promisify(generateKeyPair);

/** `count` user keys, RSA ones generated on the threadpool (tens of ms each) in parallel. */
export async function newUserKeys(
  count: number,
  type: UserKeyType = 'ed25519',
): Promise<KeyObject[]> {
  if (type === 'ed25519') return Array.from({ length: count }, () => newUserKey('ed25519'));
  return Promise.all(
    Array.from({ length: count }, async () => {
      const pair = await generateAsync('rsa', {
        modulusLength: RSA_BENCH_BITS,
        publicExponent: 65537,
      });
      return pair.privateKey;
    }),
  );
}

class SecureChatLoadClient implements LoadClient {
  readonly username: string;
  readonly #client: SecureChatClient;

  constructor(options: LoadClientOptions) {
    this.username = options.username;
    this.#client = new SecureChatClient({
      host: options.target.host,
      port: options.target.port,
      username: options.username,
      password: LOAD_PASSWORD,
      privateKey: options.privateKey ?? newUserKey(),
      action: options.action,
      trust: {
        store: new MemoryKnownServersStore(),
        policy: { fingerprint: options.target.fingerprint },
      },
      peerKeys: new MemoryPeerKeyStore(),
      reconnect: false,
      keepAliveMs: 0,
      requestTimeoutMs: 120_000,
      handshakeTimeoutMs: 120_000,
    });
    this.#client.on('message', (message) =>
      options.onDeliver(message.deliver.body, message.verification === 'verified'),
    );
    this.#client.on('error', options.onError);
  }

  async connect(): Promise<void> {
    await this.#client.connect();
  }

  async send(to: string, body: string): Promise<void> {
    await this.#client.send(to, body);
  }

  async join(room: string): Promise<void> {
    await this.#client.join(room);
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

class TlsLoadClient implements LoadClient {
  readonly username: string;
  readonly #options: LoadClientOptions;
  #socket: TLSSocket | undefined;
  readonly #reader = new FrameReader();
  readonly #acks = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  #joined: (() => void) | undefined;
  #loggedIn: (() => void) | undefined;
  #counter = 0;
  #failed: Error | undefined;

  constructor(options: LoadClientOptions) {
    this.username = options.username;
    this.#options = options;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { target, caFile } = this.#options;
      const socket = tlsConnect({
        host: target.host,
        port: target.port,
        ...(caFile === undefined ? {} : { ca: readFileSync(caFile) }),
        // The certificate is pinned through `ca`; it names no host.
        checkServerIdentity: () => undefined,
        minVersion: 'TLSv1.3',
        ecdhCurve: 'X25519',
      });
      this.#socket = socket;
      socket.setNoDelay(true);
      this.#loggedIn = resolve;
      socket.once('secureConnect', () => {
        socket.write(encodeFrame({ t: 'login', user: this.username, password: LOAD_PASSWORD }));
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const message of this.#reader.push(chunk)) this.#onMessage(message);
        } catch (error) {
          socket.destroy(error as Error);
        }
      });
      socket.on('error', (error: Error) => {
        this.#failed ??= error;
        if (this.#loggedIn !== undefined) reject(error);
        else this.#options.onError(error);
      });
      socket.on('close', () => {
        if (this.#loggedIn !== undefined) reject(new Error('closed before login'));
        const failure = this.#failed ?? new Error('connection closed');
        for (const ack of this.#acks.values()) ack.reject(failure);
        this.#acks.clear();
      });
    });
  }

  #onMessage(message: BaselineMessage): void {
    switch (message.t) {
      case 'ok': {
        const done = this.#loggedIn;
        this.#loggedIn = undefined;
        done?.();
        return;
      }
      case 'ack': {
        const pending = this.#acks.get(message.id);
        this.#acks.delete(message.id);
        pending?.resolve();
        return;
      }
      case 'deliver':
        this.#options.onDeliver(message.body, true);
        this.#socket?.write(encodeFrame({ t: 'delivered', msg_id: message.msg_id }));
        return;
      case 'joined': {
        const done = this.#joined;
        this.#joined = undefined;
        done?.();
        return;
      }
      case 'error':
        this.#options.onError(new Error(`baseline error ${message.code}`));
        return;
      default:
        return;
    }
  }

  send(to: string, body: string): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) {
      return Promise.reject(this.#failed ?? new Error('not connected'));
    }
    const id = `c${++this.#counter}`;
    return new Promise((resolve, reject) => {
      this.#acks.set(id, { resolve, reject });
      socket.write(encodeFrame({ t: 'send', id, to, body }));
    });
  }

  join(room: string): Promise<void> {
    return new Promise((resolve) => {
      this.#joined = resolve;
      this.#socket?.write(encodeFrame({ t: 'join', room }));
    });
  }

  close(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
    });
  }
}
