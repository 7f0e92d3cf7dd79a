/**
 * Group commit: many concurrent writers share one transaction. The first item starts a batch
 * at once (after the current microtask, so that items submitted in the same tick join it);
 * while that batch's transaction is in flight the next batch accumulates, and it is written
 * as soon as the previous one finishes. The cost of a commit (an fsync on Postgres) is then
 * paid once per batch instead of once per message, which is what lets the relay approach the
 * 10,000 messages/s target. Batches are written strictly one after another, so the storage
 * order of messages (the docs/PROTOCOL.md §7.4 delivery order) is the submission order. Items
 * submitted together (`submitAll`: one connection's run of sends) share a transaction: they are
 * stored all or none, never split across two, so a failure cannot store a later send of a run
 * without an earlier one (PROTOCOL.md §6 order per sender).
 */

/** Writes one batch in one transaction; returns one result per item, in the same order. */
export type BatchWriter<I, O> = (items: readonly I[]) => Promise<readonly O[]>;

export interface GroupCommitStats {
  /** Batches written (one transaction each), including failed ones. */
  readonly batches: number;
  /** Batches whose transaction failed; every caller in them was rejected. */
  readonly failedBatches: number;
  /** Items submitted through successful and failed batches. */
  readonly items: number;
  readonly largestBatch: number;
}

/** Items that go into one transaction together, and who waits for their results. */
interface Unit<I, O> {
  readonly items: readonly I[];
  readonly resolve: (results: O[]) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitBatcher<I, O> {
  readonly #write: BatchWriter<I, O>;
  readonly #maxBatch: number;
  #queue: Unit<I, O>[] = [];
  /** Items in `#queue`, all units together. */
  #queuedItems = 0;
  #inFlight = false;
  #scheduled = false;
  #idleWaiters: (() => void)[] = [];
  #stats = { batches: 0, failedBatches: 0, items: 0, largestBatch: 0 };

  constructor(write: BatchWriter<I, O>, maxBatch: number) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new RangeError('maxBatch must be a positive integer');
    }
    this.#write = write;
    this.#maxBatch = maxBatch;
  }

  /**
   * Queues `item` for the next batch. Resolves with its own result once that batch has
   * committed; rejects with the batch's error if the batch failed, so a caller never mistakes
   * an unwritten item for a written one.
   */
  submit(item: I): Promise<O> {
    // Resolved in the same loop as every unit (no extra `then`): continuations of single items
    // and of units then run in storage order alike.
    return new Promise<O>((resolve, reject) => {
      this.#enqueue({ items: [item], resolve: (results) => resolve(results[0]!), reject });
    });
  }

  /**
   * Queues `items` as one unit: they go into the same transaction, in this order, whatever
   * else is queued (a unit larger than maxBatch is a batch of its own). Resolves with their
   * results, in order, once it committed; rejects, all of it, if it failed.
   */
  submitAll(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      this.#enqueue({ items: [...items], resolve, reject });
    });
  }

  #enqueue(unit: Unit<I, O>): void {
    this.#queue.push(unit);
    this.#queuedItems += unit.items.length;
    this.#schedule();
  }

  get stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  /** Items waiting for a batch (not counting the batch in flight). */
  get queued(): number {
    return this.#queuedItems;
  }

  /** Resolves once nothing is queued or in flight (for an orderly shutdown). */
  drain(): Promise<void> {
    if (!this.#inFlight && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#inFlight) return;
    if (this.#queue.length === 0) {
      this.#notifyIdle();
      return;
    }
    this.#inFlight = true;
    // Whole units, as many as fit maxBatch; at least one.
    let units = 0;
    let size = 0;
    while (
      units < this.#queue.length &&
      (units === 0 || size + this.#queue[units]!.items.length <= this.#maxBatch)
    ) {
      size += this.#queue[units]!.items.length;
      units += 1;
    }
    const batch = this.#queue.splice(0, units);
    this.#queuedItems -= size;
    this.#stats.batches += 1;
    this.#stats.items += size;
    this.#stats.largestBatch = Math.max(this.#stats.largestBatch, size);
    try {
      const results = await this.#write(batch.flatMap((unit) => unit.items));
      if (results.length !== size) {
        // Handing out results by position would then give someone another item's answer.
        throw new Error(`batch writer returned ${results.length} results for ${size}`);
      }
      // In submission order: callers that publish right after their results arrive then
      // publish in storage order too.
      let at = 0;
      for (const unit of batch) {
        unit.resolve(results.slice(at, (at += unit.items.length)));
      }
    } catch (error) {
      this.#stats.failedBatches += 1;
      for (const unit of batch) unit.reject(error);
    } finally {
      this.#inFlight = false;
    }
    // What accumulated while this batch was in flight goes now, without waiting for a tick.
    void this.#flush();
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
