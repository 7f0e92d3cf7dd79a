export interface EventuallyOptions {
  /**
   * What the test waits for, in its failure message; a function to put state there that is only
   * worth reading on failure (a child's output). By default the condition's source.
   */
  readonly what?: string | (() => string);
  /** A generous bound for a slow, shared machine: reaching it fails the test, it is not a timing. */
  readonly timeoutMs?: number;
  /** How often the condition is asked again. */
  readonly intervalMs?: number;
}

/**
 * Resolves once `condition` holds; rejects if it still does not after `timeoutMs`. For work a
 * test can only observe from outside (a reply, a counter, a row, a process gone). The global
 * timers, so that a spec can drive it with Jest's fake ones.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  { what, timeoutMs = 10_000, intervalMs = 25 }: EventuallyOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() >= deadline) {
      const description = typeof what === 'function' ? what() : (what ?? String(condition));
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
