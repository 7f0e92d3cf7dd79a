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

/**
 * Pinned author-key fingerprints per username, for one server: a username names a person only
 * on the server that issued it, so `dave` on one server and `dave` on another are two pins.
 */
export interface PeerKeyStore {
  get(username: string): Promise<string | undefined>;
  /** Pins on first use; a different fingerprint over an existing pin throws PinConflictError. */
  pin(username: string, fingerprint: string): Promise<void>;
  /**
   * Pins `fingerprint` whatever was pinned before (the user's explicit decision after checking
   * the new key, like `ssh-keygen -R` and a new first contact); resolves with the old pin.
   */
  replace(username: string, fingerprint: string): Promise<string | undefined>;
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

  replace(username: string, fingerprint: string): Promise<string | undefined> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    const previous = this.#pins.get(username);
    this.#pins.set(username, fingerprint);
    return Promise.resolve(previous);
  }

  remove(username: string): Promise<void> {
    this.#pins.delete(username);
    return Promise.resolve();
  }
}

/**
 * Which server a FilePeerKeyStore keeps pins for: the fingerprint of the server's identity key
 * (the key known_servers pins), or a function giving it once it is known — a client learns it
 * in the handshake, before any delivery is verified.
 */
export type PeerKeyServer = string | (() => string | undefined | Promise<string | undefined>);

/**
 * The current file: the pins of each server, under the server key's fingerprint, and the pins
 * of a file from before per-server pins (`legacy`), kept for servers not used since.
 */
interface PeerKeyFile {
  readonly version: 2;
  readonly servers: Record<string, Record<string, string>>;
  readonly legacy?: Record<string, string>;
}

/** Pins of one server, read from and written back to the whole file. */
type ServerPins = Map<string, Map<string, string>>;

/** The whole file as read: every server's pins, and the legacy pins if there are any. */
interface PeerKeyFileContent {
  readonly all: ServerPins;
  readonly legacy?: Map<string, string>;
}

export interface FilePeerKeyStoreOptions {
  /**
   * Told when the file could not be rewritten after legacy pins were copied to a server on a
   * read (e.g. a read-only config directory). The read still answers; the copy is tried again
   * the next time. Nothing is reported without it.
   */
  readonly onMigrationWriteError?: (error: unknown) => void;
}

/**
 * `{"version":2,"servers":{"sha256:<server>":{"alice":"sha256:…"}}}`, rewritten atomically
 * with mode 0600.
 *
 * A file from before per-server pins (`{"version":1,"peers":{…}}`) says nothing about which
 * server its pins came from. They are kept as the `legacy` section of the new file, and copied
 * to each server the first time that server is used (a server already in `servers` is left as
 * it is, whatever it pinned or forgot since). The legacy section is never deleted: every server
 * starts from the old pins, so a namesake on another server shows `key_changed` until
 * `securechat trust` — what the old single-namespace file did anyway — and no server loses the
 * pins it gave, so no key is ever pinned silently in place of an old pin.
 *
 * One process serializes its reads and writes through a queue. Two processes are not locked
 * against each other: each write renames a whole file into place, so the last writer wins and
 * the other's change is lost (as before per-server pins). Losing such a race can only lose a
 * server's copy of the legacy pins, which is then made again from the legacy section, never
 * the legacy pins themselves.
 */
export class FilePeerKeyStore implements PeerKeyStore {
  readonly #queue = new SerialQueue();

  constructor(
    readonly path: string,
    private readonly server: PeerKeyServer,
    private readonly options: FilePeerKeyStoreOptions = {},
  ) {
    if (typeof server === 'string' && !isFingerprint(server)) {
      throw new TypeError('server must be the sha256: fingerprint of its identity key');
    }
  }

  async get(username: string): Promise<string | undefined> {
    return this.#queue.run(async () => (await this.#load()).pins.get(username));
  }

  pin(username: string, fingerprint: string): Promise<void> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    return this.#queue.run(async () => {
      const loaded = await this.#load();
      const pinned = loaded.pins.get(username);
      if (pinned === fingerprint) return;
      if (pinned !== undefined) throw new PinConflictError(username, pinned, fingerprint);
      loaded.pins.set(username, fingerprint);
      await this.#write(loaded.file);
    });
  }

  replace(username: string, fingerprint: string): Promise<string | undefined> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    return this.#queue.run(async () => {
      const loaded = await this.#load();
      const previous = loaded.pins.get(username);
      if (previous === fingerprint) return previous;
      loaded.pins.set(username, fingerprint);
      await this.#write(loaded.file);
      return previous;
    });
  }

  remove(username: string): Promise<void> {
    return this.#queue.run(async () => {
      const loaded = await this.#load();
      if (loaded.pins.delete(username)) await this.#write(loaded.file);
    });
  }

  async #serverFingerprint(): Promise<string> {
    const server = typeof this.server === 'string' ? this.server : await this.server();
    if (server === undefined || !isFingerprint(server)) {
      throw new Error('peer keys: the server is not identified yet');
    }
    return server;
  }

  /**
   * This server's pins (a live view into `file.all`). The first time a server is used with a
   * file holding legacy pins, they are copied to it and the file is rewritten — best effort:
   * when that write fails the answer comes from the merged view all the same, and the copy is
   * made again next time (a change of this server's pins writes it anyway, or fails).
   */
  async #load(): Promise<{ file: PeerKeyFileContent; pins: Map<string, string> }> {
    const server = await this.#serverFingerprint();
    const file = await this.#read();
    let pins = file.all.get(server);
    if (pins === undefined) {
      pins = new Map(file.legacy ?? []);
      file.all.set(server, pins);
      if (file.legacy !== undefined) {
        await this.#write(file).catch((error: unknown) =>
          this.options.onMigrationWriteError?.(error),
        );
      }
    }
    return { file, pins };
  }

  async #read(): Promise<PeerKeyFileContent> {
    const text = await readTextIfExists(this.path);
    const all: ServerPins = new Map();
    if (text === undefined || text.trim() === '') return { all };
    const parsed = JSON.parse(text) as Record<string, unknown> | null;
    if (parsed === null || typeof parsed !== 'object') {
      throw new Error(`${this.path}: not a peer key file`);
    }
    if (parsed.version === 2 && isObject(parsed.servers)) {
      for (const [server, peers] of Object.entries(parsed.servers)) {
        if (isFingerprint(server) && isObject(peers)) all.set(server, pinsOf(peers));
      }
      if (parsed.legacy === undefined) return { all };
      if (!isObject(parsed.legacy)) throw new Error(`${this.path}: not a peer key file`);
      return { all, legacy: pinsOf(parsed.legacy) };
    }
    if ((parsed.version === undefined || parsed.version === 1) && isObject(parsed.peers)) {
      return { all, legacy: pinsOf(parsed.peers) };
    }
    throw new Error(`${this.path}: not a peer key file`);
  }

  #write({ all, legacy }: PeerKeyFileContent): Promise<void> {
    const sorted = <T>(entries: Iterable<[string, T]>): [string, T][] =>
      [...entries].sort(([a], [b]) => a.localeCompare(b));
    const file: PeerKeyFile = {
      version: 2,
      servers: Object.fromEntries(
        sorted(all)
          // With legacy pins, a server with none left stays listed: it has had its copy, and
          // pins it forgot must not come back from the legacy section.
          .filter(([, pins]) => pins.size > 0 || legacy !== undefined)
          .map(([server, pins]) => [server, Object.fromEntries(sorted(pins))]),
      ),
      ...(legacy === undefined ? {} : { legacy: Object.fromEntries(sorted(legacy)) }),
    };
    return writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pinsOf(peers: Record<string, unknown>): Map<string, string> {
  const pins = new Map<string, string>();
  for (const [username, fingerprint] of Object.entries(peers)) {
    if (typeof fingerprint === 'string' && isFingerprint(fingerprint)) {
      pins.set(username, fingerprint);
    }
  }
  return pins;
}

/**
 * Asks the server for an author's key (`get_key`, docs/PROTOCOL.md §7.1); undefined when there is
 * none.
 */
export type FetchPeerKey = (username: string) => Promise<KeyAnswer | undefined>;

type ResolvedPeerKey =
  | { readonly status: 'pinned'; readonly key: KeyObject; readonly fingerprint: string }
  | {
      readonly status: 'changed';
      readonly fingerprint: string;
      readonly pinnedFingerprint: string;
    }
  | { readonly status: 'unknown' };

/** Whether `deliver.sig` is `key`'s signature over the message's M (docs/PROTOCOL.md §7.3). */
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
    const result = this.#judge(deliver, await this.#resolve(deliver.from));
    if (result.verification !== 'key_changed' && result.verification !== 'bad_signature') {
      return result;
    }
    // The pin may have been replaced since the key was cached (`securechat trust`, `/trust`,
    // in this process or another): a flag must follow the pin as it is now, not as it was.
    const pinned = await this.store.get(deliver.from).catch(() => result.pinnedFingerprint);
    if (pinned === result.pinnedFingerprint) return result;
    this.forget(deliver.from);
    return this.#judge(deliver, await this.#resolve(deliver.from));
  }

  #judge(deliver: Deliver, resolved: ResolvedPeerKey): VerificationResult {
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

/** A `key` answer that does not prove a key for the user asked about. */
export class KeyAnswerError extends Error {
  override readonly name = 'KeyAnswerError';
  readonly code = 'bad_key_answer';
}

/**
 * The fingerprint of the key in a `key` answer for `username`, hashed here from the key itself:
 * the server's `fingerprint` member is only accepted when it agrees.
 */
export function keyAnswerFingerprint(answer: KeyAnswer, username: string): string {
  if (answer.user !== username) throw new KeyAnswerError('the server answered for another user');
  let spki: Uint8Array;
  try {
    spki = fromBase64(answer.public_key, 'public_key');
    importUserPublicKey(spki);
  } catch {
    throw new KeyAnswerError('the server gave a key that is not a usable public key');
  }
  const computed = fingerprintOf(spki);
  if (answer.fingerprint !== computed) {
    throw new KeyAnswerError("the server's fingerprint does not match the key it gave");
  }
  return computed;
}

/** An author's pin as it is, and the key the server gives now. */
export interface PeerKeyChange {
  readonly username: string;
  /** The fingerprint pinned on this server before, if any. */
  readonly pinned?: string;
  /** The fingerprint of the key the server gives now. */
  readonly offered: string;
}

export type TrustPeerKeyResult =
  /** The pin already is the server's key: nothing was written. */
  | { readonly status: 'unchanged'; readonly change: PeerKeyChange }
  /** The server's key is pinned now (over the old pin, if any). */
  | { readonly status: 'trusted'; readonly change: PeerKeyChange }
  /** The user said no: the old pin stays. */
  | { readonly status: 'declined'; readonly change: PeerKeyChange }
  /** The server's key is not the one the user expected: the old pin stays. */
  | { readonly status: 'mismatch'; readonly change: PeerKeyChange; readonly expected: string };

export interface TrustPeerKeyOptions {
  readonly username: string;
  readonly store: PeerKeyStore;
  /** `get_key` (docs/PROTOCOL.md §7.1) on a logged-in session, e.g. `client.getKey`. */
  readonly fetchKey: (username: string) => Promise<KeyAnswer>;
  /** A fingerprint checked out of band: only that key is accepted, and without asking. */
  readonly expected?: string;
  /** Asked (without `expected`) before a pin is written; absent: the caller has decided. */
  readonly confirm?: (change: PeerKeyChange) => boolean | Promise<boolean>;
}

/**
 * Accepts an author's current key over the old pin: `ssh-keygen -R` and a new first contact in
 * one step, for a key the user knows was rotated. The key is fetched from the server (never
 * taken from a message), and the old and new fingerprints are handed back to be shown.
 */
export async function trustPeerKey(options: TrustPeerKeyOptions): Promise<TrustPeerKeyResult> {
  const { username, store, expected } = options;
  if (expected !== undefined && !isFingerprint(expected)) {
    throw new TypeError('expected must look like sha256:<64 lowercase hex>');
  }
  const offered = keyAnswerFingerprint(await options.fetchKey(username), username);
  const pinned = await store.get(username);
  const change: PeerKeyChange =
    pinned === undefined ? { username, offered } : { username, pinned, offered };
  if (expected !== undefined && expected !== offered) {
    return { status: 'mismatch', change, expected };
  }
  if (pinned === offered) return { status: 'unchanged', change };
  if (expected === undefined && options.confirm !== undefined && !(await options.confirm(change))) {
    return { status: 'declined', change };
  }
  const previous = await store.replace(username, offered);
  return {
    status: 'trusted',
    change:
      previous === undefined ? { username, offered } : { username, pinned: previous, offered },
  };
}
