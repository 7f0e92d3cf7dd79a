/**
 * Server pinning like SSH's `known_hosts` (docs/PROTOCOL.md §4.3 "Pinning"): a store maps
 * `host:port` to the fingerprint of the server's Ed25519 identity key. A key seen for the first
 * time is pinned only after it proved itself over the handshake (docs/PROTOCOL.md §10 item 19); a
 * pinned key is never replaced silently — a different key is refused with both fingerprints.
 */
import { type ServerIdentityError } from '@securechat/protocol';

import { SerialQueue, readTextIfExists, writeFileAtomic } from './atomic-file';

/** `sha256:` and 64 lowercase hex digits (docs/PROTOCOL.md §2.2 "Fingerprint"). */
export const FINGERPRINT_PATTERN = /^sha256:[0-9a-f]{64}$/;

export function isFingerprint(value: string): boolean {
  return FINGERPRINT_PATTERN.test(value);
}

/** The store key of a server: `host:port`, host lowercased, an IPv6 literal in brackets. */
export function serverAddress(host: string, port: number): string {
  const name = host.trim().toLowerCase();
  return name.includes(':') && !name.startsWith('[') ? `[${name}]:${port}` : `${name}:${port}`;
}

/** Thrown when a store is asked to pin a different key over an existing pin. */
export class PinConflictError extends Error {
  override readonly name = 'PinConflictError';

  constructor(
    readonly subject: string,
    readonly pinnedFingerprint: string,
    readonly offeredFingerprint: string,
  ) {
    super(
      `${subject} is pinned to ${pinnedFingerprint}; refusing to replace it with ${offeredFingerprint}`,
    );
  }
}

/** Where pinned server fingerprints live. */
export interface KnownServersStore {
  /** The fingerprint pinned for `address` (`host:port`), if any. */
  get(address: string): Promise<string | undefined>;
  /**
   * Pins `fingerprint` for `address`. Idempotent for the same fingerprint; a different one over
   * an existing pin throws PinConflictError (docs/PROTOCOL.md §4.3: never replace a pinned key
   * silently).
   */
  pin(address: string, fingerprint: string): Promise<void>;
  /** Forgets `address` (the user's explicit decision, like `ssh-keygen -R`). */
  remove(address: string): Promise<void>;
}

function assertFingerprint(fingerprint: string): void {
  if (!isFingerprint(fingerprint)) {
    throw new TypeError('fingerprint must look like sha256:<64 lowercase hex>');
  }
}

/** For tests and for callers that keep pins elsewhere. */
export class MemoryKnownServersStore implements KnownServersStore {
  readonly #pins = new Map<string, string>();

  constructor(initial: Record<string, string> = {}) {
    for (const [address, fingerprint] of Object.entries(initial)) {
      assertFingerprint(fingerprint);
      this.#pins.set(address, fingerprint);
    }
  }

  get(address: string): Promise<string | undefined> {
    return Promise.resolve(this.#pins.get(address));
  }

  pin(address: string, fingerprint: string): Promise<void> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    const pinned = this.#pins.get(address);
    if (pinned !== undefined && pinned !== fingerprint) {
      return Promise.reject(new PinConflictError(address, pinned, fingerprint));
    }
    this.#pins.set(address, fingerprint);
    return Promise.resolve();
  }

  remove(address: string): Promise<void> {
    this.#pins.delete(address);
    return Promise.resolve();
  }
}

interface ParsedLine {
  readonly text: string;
  readonly entry?: { readonly address: string; readonly fingerprint: string };
}

/** One line of a known_servers file: `host:port sha256:…`, `#` comments, blank lines. */
export function parseKnownServersLine(text: string): ParsedLine {
  const content = text.trim();
  if (content === '' || content.startsWith('#')) return { text };
  const fields = content.split(/\s+/);
  const [address, fingerprint] = fields;
  if (fields.length !== 2 || address === undefined || fingerprint === undefined) return { text };
  if (!isFingerprint(fingerprint)) return { text };
  return { text, entry: { address, fingerprint } };
}

/**
 * A `known_servers` text file: one `host:port sha256:…` per line, comments (`#`) and blank
 * lines kept as they are. Lines it cannot read are kept too, and never match. Rewritten
 * atomically with mode 0600 on every change.
 */
export class FileKnownServersStore implements KnownServersStore {
  readonly #queue = new SerialQueue();

  constructor(readonly path: string) {}

  async get(address: string): Promise<string | undefined> {
    const lines = await this.#read();
    return lines.find((line) => line.entry?.address === address)?.entry?.fingerprint;
  }

  pin(address: string, fingerprint: string): Promise<void> {
    if (!isFingerprint(fingerprint)) return Promise.reject(new TypeError('not a fingerprint'));
    if (/\s/.test(address) || address === '') {
      return Promise.reject(new TypeError('address must be host:port'));
    }
    return this.#queue.run(async () => {
      const lines = await this.#read();
      const existing = lines.find((line) => line.entry?.address === address)?.entry;
      if (existing !== undefined) {
        if (existing.fingerprint === fingerprint) return;
        throw new PinConflictError(address, existing.fingerprint, fingerprint);
      }
      lines.push({ text: `${address} ${fingerprint}` });
      await this.#write(lines);
    });
  }

  remove(address: string): Promise<void> {
    return this.#queue.run(async () => {
      const lines = await this.#read();
      const kept = lines.filter((line) => line.entry?.address !== address);
      if (kept.length !== lines.length) await this.#write(kept);
    });
  }

  async #read(): Promise<ParsedLine[]> {
    const text = await readTextIfExists(this.path);
    if (text === undefined || text === '') return [];
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.map(parseKnownServersLine);
  }

  #write(lines: readonly ParsedLine[]): Promise<void> {
    return writeFileAtomic(this.path, lines.map((line) => `${line.text}\n`).join(''));
  }
}

/**
 * The loud warning for a refused server (docs/PROTOCOL.md §4.3: "tell the user, showing both the
 * expected (pinned) fingerprint and the one the server presented"), in the spirit of SSH's.
 */
export function describeServerIdentityError(error: ServerIdentityError, address: string): string {
  switch (error.reason) {
    case 'server_key_mismatch':
      return [
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        '@    WARNING: THE SERVER IDENTITY KEY HAS CHANGED!        @',
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        `The server at ${address} presented a different identity key than the one pinned.`,
        'Someone may be intercepting the connection, or the server key was replaced.',
        `  pinned:    ${error.expectedFingerprint ?? '(none)'}`,
        `  presented: ${error.presentedFingerprint}`,
        'Nothing was sent. If the change is expected, remove the old entry from known_servers.',
      ].join('\n');
    case 'server_key_untrusted':
      return `The key ${error.presentedFingerprint} of ${address} was not trusted; nothing was sent.`;
    case 'bad_server_signature':
      return `The server at ${address} failed to prove its key ${error.presentedFingerprint}; nothing was sent.`;
  }
}
