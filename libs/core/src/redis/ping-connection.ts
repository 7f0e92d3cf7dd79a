import { type Redis } from 'ioredis';

/**
 * Readiness of one ioredis connection: PING when it is connected (or lazily not yet opened);
 * an immediate failure while it is reconnecting or closed, rather than a PING parked in the
 * offline queue until Redis returns.
 */
export async function pingConnection(connection: Redis | undefined): Promise<void> {
  if (!connection) throw new Error('not connected');
  if (connection.status !== 'ready' && connection.status !== 'wait') {
    throw new Error(`connection ${connection.status}`);
  }
  await connection.ping();
}
