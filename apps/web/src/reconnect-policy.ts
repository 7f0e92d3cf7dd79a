/**
 * When the web client tries again (no DOM, no timers): the backoff grows with each attempt and is
 * reset only by a session that stayed up (a server that logs the user in and drops the connection
 * at once must not be hammered); a `retry_after` from the server (docs/PROTOCOL.md §2
 * `rate_limited`) is honoured when it asks for longer.
 */
import { PeerError, ProtocolError } from '@securechat/protocol';

export const DEFAULT_BACKOFF: readonly number[] = [1, 2, 4, 8, 16, 30];
/** A session that lasted this long resets the backoff. */
export const STABLE_SESSION_MS = 30_000;
/** A login (WebSocket open and handshake) that takes longer is abandoned and retried. */
export const LOGIN_TIMEOUT_MS = 15_000;
/** A protocol `ping` after this long without sending anything (the server's idle timeout is 300 s). */
export const KEEPALIVE_MS = 60_000;

/** The `retry_after` (seconds) an error carries, if any. */
export function retryAfterOf(error: unknown): number | undefined {
  if (error instanceof PeerError || error instanceof ProtocolError) return error.retryAfter;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause === undefined || cause === error ? undefined : retryAfterOf(cause);
}

/** Seconds to wait before attempt `attempt` (0-based) after `error`. */
export function reconnectDelay(
  attempt: number,
  error: unknown,
  backoff: readonly number[] = DEFAULT_BACKOFF,
): number {
  const base = backoff[Math.min(attempt, backoff.length - 1)] ?? 30;
  return Math.max(base, retryAfterOf(error) ?? 0);
}

/** The attempt counter after a session that lasted `lastedMs`. */
export function attemptAfterSession(attempt: number, lastedMs: number): number {
  return lastedMs >= STABLE_SESSION_MS ? 0 : attempt;
}

/** A download's file name: only [A-Za-z0-9_-] (then `.jsonl`), never empty. */
export function safeFileName(stem: string): string {
  const cleaned = stem.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 100);
  return cleaned === '' ? 'transcript' : cleaned;
}
