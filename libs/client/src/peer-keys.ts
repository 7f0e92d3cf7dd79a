/**
 * Authors' keys (docs/PROTOCOL.md §7.3): every `deliver` is verified against its author's key,
 * fetched with `get_key` once per sender and pinned on first use. A key that differs from the
 * pin is never trusted silently (`key_changed`), and a signature that does not verify is
 * reported (`bad_signature`); either way the message is handed to the application, flagged.
 */
import { type KeyObject } from 'node:crypto';

import {
  ClientSession,
  type Deliver,
  type KeyAnswer,
  fingerprint as fingerprintOf,
  fromBase64,
  importUserPublicKey,
} from '@securechat/protocol';

import { SerialQueue, readTextIfExists, writeFileAtomic } from './atomic-file';
import { BoundedLru } from './bounded-lru';
import { PinConflictError, isFingerprint } from './known-servers';

/** How an incoming message's authorship checked out. */
export type MessageVerification =
  /** Signed by the author's pinned key. */
  | 'verified'
  /** The author's key is the pinned one, but the signature does not verify under it. */
  | 'bad_signature'
  /** The server now gives another key for the author than the one pinned: not trusted. */
  | 'key_changed'
  /** No usable key for the author could be obtained (`get_key` failed, or an unusable key). */
  | 'unknown_sender_key';

export interface VerificationResult {
  readonly verification: MessageVerification;
  /** Fingerprint of the key the server gave for the author, when one was obtained. */
  readonly senderFingerprint?: string;
  /** The fingerprint pinned for the author before this message, when there was one. */
  readonly pinnedFingerprint?: string;
}

/** Pinned author-key fingerprints per username. */
export interface PeerKeyStore {
  get(username: string): Promise<string | undefined>;
  /** Pins on first use; a different fingerprint over an existing pin throws PinConflictError. */
  pin(username: string, fingerprint: string): Promise<void>;
  /** Forgets a pin (the user's explicit decision after checking the new key out of band). */
  remove(username: string): Promise<void>;
}

export class MemoryPeerKeyStore implements PeerKeyStore {
  readonly #pins = new Map<string, string>();

  constructor(initial: Record<string, string> = {}) {
    for (const [username, fingerprint] of Object.entries(initial)) {
      if (!isFingerprint(fingerprint)) throw new TypeError('not a sha256: fingerprint');
      this.#pins.set(username, fingerprint);
    }
  }

  get(username: string): Promise<string | undefined> {
    return Promise.resolve(this.#pins.get(username));
  }

  pin(username: string, fingerprint: string): Promise<void> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    const pinned = this.#pins.get(username);
    if (pinned !== undefined && pinned !== fingerprint) {
      return Promise.reject(new PinConflictError(username, pinned, fingerprint));
    }
    this.#pins.set(username, fingerprint);
    return Promise.resolve();
  }

  remove(username: string): Promise<void> {
    this.#pins.delete(username);
    return Promise.resolve();
  }
}

interface PeerKeyFile {
  readonly version: 1;
  readonly peers: Record<string, string>;
}

/** `{"version":1,"peers":{"alice":"sha256:…"}}`, rewritten atomically with mode 0600. */
export class FilePeerKeyStore implements PeerKeyStore {
  readonly #queue = new SerialQueue();

  constructor(readonly path: string) {}

  async get(username: string): Promise<string | undefined> {
    return (await this.#read()).get(username);
  }

  pin(username: string, fingerprint: string): Promise<void> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    return this.#queue.run(async () => {
      const pins = await this.#read();
      const pinned = pins.get(username);
      if (pinned === fingerprint) return;
      if (pinned !== undefined) throw new PinConflictError(username, pinned, fingerprint);
      pins.set(username, fingerprint);
      await this.#write(pins);
    });
  }

  remove(username: string): Promise<void> {
    return this.#queue.run(async () => {
      const pins = await this.#read();
      if (pins.delete(username)) await this.#write(pins);
    });
  }

  async #read(): Promise<Map<string, string>> {
    const text = await readTextIfExists(this.path);
    const pins = new Map<string, string>();
    if (text === undefined || text.trim() === '') return pins;
    const parsed = JSON.parse(text) as Partial<PeerKeyFile> | null;
    if (parsed === null || typeof parsed !== 'object' || typeof parsed.peers !== 'object') {
      throw new Error(`${this.path}: not a peer key file`);
    }
    for (const [username, fingerprint] of Object.entries(parsed.peers ?? {})) {
      if (typeof fingerprint === 'string' && isFingerprint(fingerprint)) {
        pins.set(username, fingerprint);
      }
    }
    return pins;
  }

  #write(pins: Map<string, string>): Promise<void> {
    const file: PeerKeyFile = {
      version: 1,
      peers: Object.fromEntries([...pins].sort(([a], [b]) => a.localeCompare(b))),
    };
    return writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
  }
}

/** Asks the server for an author's key (`get_key`, §7.1); undefined when there is none. */
export type FetchPeerKey = (username: string) => Promise<KeyAnswer | undefined>;

type ResolvedPeerKey =
  | { readonly status: 'pinned'; readonly key: KeyObject; readonly fingerprint: string }
  | {
      readonly status: 'changed';
      readonly fingerprint: string;
      readonly pinnedFingerprint: string;
    }
  | { readonly status: 'unknown' };

/** Whether `deliver.sig` is `key`'s signature over the message's M (§7.3). */
export function verifyDeliverSignature(deliver: Deliver, key: KeyObject): boolean {
  return ClientSession.verifyDeliver(deliver, key);
}

export interface PeerKeyVerifierOptions {
  /** How many authors' keys to keep in memory (default 4096). */
  readonly cacheSize?: number;
}

/**
 * Verifies deliveries against pinned author keys. The key of each author is fetched once
 * (concurrent deliveries share one fetch) and cached; failures are not cached, so a later
 * message retries.
 */
export class PeerKeyVerifier {
  readonly #cache: BoundedLru<string, Promise<ResolvedPeerKey>>;

  constructor(
    private readonly store: PeerKeyStore,
    private readonly fetchKey: FetchPeerKey,
    options: PeerKeyVerifierOptions = {},
  ) {
    this.#cache = new BoundedLru(options.cacheSize ?? 4096);
  }

  async verify(deliver: Deliver): Promise<VerificationResult> {
    const resolved = await this.#resolve(deliver.from);
    switch (resolved.status) {
      case 'unknown':
        return { verification: 'unknown_sender_key' };
      case 'changed':
        return {
          verification: 'key_changed',
          senderFingerprint: resolved.fingerprint,
          pinnedFingerprint: resolved.pinnedFingerprint,
        };
      case 'pinned':
        return {
          verification: verifyDeliverSignature(deliver, resolved.key)
            ? 'verified'
            : 'bad_signature',
          senderFingerprint: resolved.fingerprint,
          pinnedFingerprint: resolved.fingerprint,
        };
    }
  }

  /** Drops what is known about an author, e.g. after the user re-pinned its key. */
  forget(username: string): void {
    this.#cache.delete(username);
  }

  #resolve(username: string): Promise<ResolvedPeerKey> {
    const cached = this.#cache.get(username);
    if (cached !== undefined) return cached;
    const pending = this.#lookUp(username)
      // A store that cannot be read is no reason to trust or to crash: the sender is unknown.
      .catch((): ResolvedPeerKey => ({ status: 'unknown' }))
      .then((resolved) => {
        if (resolved.status === 'unknown') this.#cache.delete(username);
        return resolved;
      });
    this.#cache.set(username, pending);
    return pending;
  }

  async #lookUp(username: string): Promise<ResolvedPeerKey> {
    let answer: KeyAnswer | undefined;
    try {
      answer = await this.fetchKey(username);
    } catch {
      return { status: 'unknown' };
    }
    if (answer === undefined || answer.user !== username) return { status: 'unknown' };
    let key: KeyObject;
    let fingerprint: string;
    try {
      const spki = fromBase64(answer.public_key, 'public_key');
      key = importUserPublicKey(spki);
      // Our own hash of the key, never the server's `fingerprint` member on its own.
      fingerprint = fingerprintOf(spki);
    } catch {
      return { status: 'unknown' };
    }
    if (answer.fingerprint !== fingerprint) return { status: 'unknown' };

    const pinned = await this.store.get(username);
    if (pinned === undefined) {
      try {
        await this.store.pin(username, fingerprint);
      } catch (error) {
        // Another process pinned in between: compare with what it pinned.
        if (!(error instanceof PinConflictError)) throw error;
        return { status: 'changed', fingerprint, pinnedFingerprint: error.pinnedFingerprint };
      }
      return { status: 'pinned', key, fingerprint };
    }
    if (pinned !== fingerprint)
      return { status: 'changed', fingerprint, pinnedFingerprint: pinned };
    return { status: 'pinned', key, fingerprint };
  }
}
