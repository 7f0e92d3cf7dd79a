/**
 * Runs tasks one at a time per key, in arrival order. AuthService serialises logins per
 * username with it: without it, a burst of concurrent guesses for one account would all pass
 * the throttle check before the first failure is recorded, and the per-username limit would
 * allow one guess per concurrent connection instead of one per attempt. Keys with nothing
 * queued are dropped, so memory follows the work in flight.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  /** Number of keys with a task running or queued (for tests). */
  get size(): number {
    return this.#tails.size;
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    // `done` never rejects, so neither does any tail: one failing task cannot wedge the queue.
    const tail = previous.then(() => done);
    this.#tails.set(key, tail);
    try {
      await previous;
      return await task();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
