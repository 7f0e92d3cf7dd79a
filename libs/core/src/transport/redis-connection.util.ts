/** Helpers both Redis Streams transport files share. */
import { type Redis } from 'ioredis';

import { closeConnection } from '../redis/close-connection';

/** How long close() waits for Redis to confirm QUIT before dropping the socket. */
const QUIT_TIMEOUT_MS = 1000;

/** CLIENT SETNAME refuses spaces; names are for `CLIENT LIST` only, so anything odd becomes `_`. */
export function connectionName(...parts: string[]): string {
  return parts.join(':').replace(/[^\w.:-]/g, '_');
}

/**
 * QUIT, then wait for the socket to be gone, so that a closed transport holds no handle (ioredis
 * resolves quit() on the server's OK, before the socket closes). Bounded: if Redis does not
 * answer, the socket is dropped after QUIT_TIMEOUT_MS.
 */
export async function quit(connection: Redis): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status === 'reconnecting') {
    // No socket, only a reconnect timer, which disconnect() clears. ioredis then leaves the
    // connection as it is, emitting no 'end' and settling none of its queued commands — but
    // arms its disconnect timer on the closed socket: closeConnection waits that out, so no
    // timer outlives the transport.
    await closeConnection(connection, false);
    return;
  }
  const ended = new Promise<void>((resolve) => connection.once('end', resolve));
  if (connection.status === 'ready') connection.quit().catch(() => connection.disconnect());
  else connection.disconnect();
  if (!(await settlesWithin(ended, QUIT_TIMEOUT_MS))) {
    connection.disconnect();
    await settlesWithin(ended, QUIT_TIMEOUT_MS);
  }
}

/** Whether `promise` settled within `ms` (it is not cancelled either way). */
export async function settlesWithin(
  promise: Promise<unknown> | undefined,
  ms: number,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      (promise ?? Promise.resolve()).then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
