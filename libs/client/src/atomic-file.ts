/**
 * Small file helpers shared by the client's stores: files holding trust decisions are written
 * whole, atomically (temporary file, fsync, rename) and readable by their owner only, like
 * SSH's `known_hosts` and private keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Mode of every file the client writes: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of directories the client creates for them. */
export const PRIVATE_DIR_MODE = 0o700;

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Replaces `path` with `text`: written to a temporary file beside it with mode 0600, fsynced,
 * then renamed over the old file, so a reader sees the old or the new content, never half.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  const temporary = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const handle = await open(temporary, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Runs tasks one after another: read-modify-write of one file must not interleave. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
