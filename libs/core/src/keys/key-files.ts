/**
 * Key files shared by several processes: a private key made by whichever instance starts first
 * (race-free), and a public key published beside it for the processes that only need that half.
 */
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';

/** What readOrCreateSecretPem found. */
export interface SecretPem {
  readonly pem: string;
  /** Whether this call made the file. */
  readonly created: boolean;
  /** The file's permission bits when others may read it (group or world), else undefined. */
  readonly looseMode?: number;
}

/**
 * The PEM at `path`; when there is none, `generate()`'s, written there with mode 0600 (the
 * directory made 0700). Several processes may start at once: the PEM is written under a
 * temporary name and hard-linked into place, and link() fails when another process got there
 * first, so that all of them end up with that one key (a rename would silently replace it and
 * leave two processes with different keys). No copy of the secret is left behind.
 */
export function readOrCreateSecretPem(path: string, generate: () => string): SecretPem {
  try {
    const pem = readFileSync(path, 'utf8');
    const mode = statSync(path).mode & 0o777;
    return { pem, created: false, ...((mode & 0o077) !== 0 ? { looseMode: mode } : {}) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temporary, generate(), { mode: 0o600, flag: 'wx' });
  chmodSync(temporary, 0o600); // whatever the umask made of it
  let created = true;
  try {
    linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    created = false;
  } finally {
    unlinkSync(temporary);
  }
  return { pem: readFileSync(path, 'utf8'), created };
}

/**
 * Writes a public key PEM to `path` (mode 0644) unless the file already says exactly that.
 * Replaced atomically (temporary file, then rename): readers never see half a key, and
 * processes publishing the same key at once all leave the same file. Whether it wrote.
 */
export function publishPublicPem(path: string, pem: string): boolean {
  try {
    if (readFileSync(path, 'utf8') === pem) return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temporary, pem, { mode: 0o644, flag: 'wx' });
  try {
    chmodSync(temporary, 0o644);
    renameSync(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw error;
  }
  return true;
}
