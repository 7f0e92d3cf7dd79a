/** Closing an ioredis connection so that it leaves no socket and no timer behind. */
import { type Socket } from 'node:net';

import { type Redis } from 'ioredis';

/**
 * How long ioredis waits for a socket it ends to close before destroying it. Short, because
 * of the quirk handled in closeConnection, and because nothing is owed on a connection being
 * disconnected (QUIT, which waits for replies, does not use it).
 */
export const DISCONNECT_TIMEOUT_MS = 200;

/**
 * Resolves once `client` holds no socket and no timer, so that a closed repository leaves no
 * open handle behind. `flush` sends QUIT first, so that replies already owed arrive.
 */
export async function closeConnection(client: Redis, flush: boolean): Promise<void> {
  if (client.status === 'end') return;
  if (flush && client.status === 'ready') {
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    try {
      await client.quit();
      await withTimeout(ended, DISCONNECT_TIMEOUT_MS * 5);
      return;
    } catch {
      // Fall through to a hard disconnect.
    }
  }
  // disconnect() ends the last socket and arms a timer that destroys it unless it closes. When
  // that socket is already closed (between reconnect attempts, or before the next one opened)
  // the timer runs its full course and ioredis may never emit `end`: wait the timer out.
  const stale = (client.stream as Socket | undefined)?.destroyed === true;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.disconnect();
  if (stale) await sleep(DISCONNECT_TIMEOUT_MS + 20);
  else await withTimeout(ended, DISCONNECT_TIMEOUT_MS * 5);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or resolution after `ms` at the latest; the timer never outlives it. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
