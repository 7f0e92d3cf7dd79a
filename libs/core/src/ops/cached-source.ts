/** Longest a refresh may take before it is given up (the next scrape tries again). */
export const CACHED_SOURCE_TIMEOUT_MS = 5_000;

/**
 * A value that is expensive to read (a COUNT over a table) served from a cache for `ttlMs`,
 * so that however often /metrics is scraped, the database sees at most one query per period.
 * Concurrent readers during a refresh share it. A refresh that never settles (a query stuck
 * on a dead connection) fails after `timeoutMs`, so it cannot freeze the value for good.
 */
export function cachedSource(
  read: () => Promise<number>,
  ttlMs: number,
  now: () => number,
  timeoutMs = CACHED_SOURCE_TIMEOUT_MS,
): () => Promise<number> {
  let value: number | undefined;
  let readAt = -Infinity;
  let refreshing: Promise<number> | undefined;
  return () => {
    if (value !== undefined && now() - readAt < ttlMs) return Promise.resolve(value);
    refreshing ??= withTimeout(read(), timeoutMs)
      .then((fresh) => {
        value = fresh;
        readAt = now();
        return fresh;
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
