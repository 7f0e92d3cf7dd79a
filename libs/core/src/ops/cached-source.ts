/**
 * A value that is expensive to read (a COUNT over a table) served from a cache for `ttlMs`,
 * so that however often /metrics is scraped, the database sees at most one query per period.
 * Concurrent readers during a refresh share it.
 */
export function cachedSource(
  read: () => Promise<number>,
  ttlMs: number,
  now: () => number,
): () => Promise<number> {
  let value: number | undefined;
  let readAt = -Infinity;
  let refreshing: Promise<number> | undefined;
  return () => {
    if (value !== undefined && now() - readAt < ttlMs) return Promise.resolve(value);
    refreshing ??= read()
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
