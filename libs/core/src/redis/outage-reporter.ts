import { type LoggerService } from '@nestjs/common';
import { type Redis } from 'ioredis';

/**
 * ioredis emits `error` for every failed (re)connection attempt and prints it when nobody
 * listens. This logs one warning per outage (until the next `ready`), message only: a Redis
 * connection error names the server, never a key or a payload.
 */
export function reportOutagesOnce(
  client: Redis,
  logger: Pick<LoggerService, 'warn'>,
  what: string,
  muted: () => boolean = () => false,
): void {
  let reported = false;
  client.on('error', (error: Error) => {
    if (reported || muted()) return;
    reported = true;
    logger.warn(`${what} to Redis failed: ${error.message}`);
  });
  client.on('ready', () => {
    reported = false;
  });
}
