/**
 * Group commit: many concurrent writers share one transaction. The first item starts a batch
 * at once (after the current microtask, so that items submitted in the same tick join it);
 * while that batch's transaction is in flight the next batch accumulates, and it is written
 * as soon as the previous one finishes. The cost of a commit (an fsync on Postgres) is then
 * paid once per batch instead of once per message, which is what lets the relay approach the
 * 10,000 messages/s target. Batches are written strictly one after another, so the storage
 * order of messages (the §7.4 delivery order) is the submission order.
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

interface Waiter<I, O> {
  readonly item: I;
  readonly resolve: (result: O) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommitBatcher<I, O> {
  readonly #write: BatchWriter<I, O>;
  readonly #maxBatch: number;
  #queue: Waiter<I, O>[] = [];
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
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  get stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  /** Items waiting for a batch (not counting the batch in flight). */
  get queued(): number {
    return this.#queue.length;
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
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#stats.batches += 1;
    this.#stats.items += batch.length;
    this.#stats.largestBatch = Math.max(this.#stats.largestBatch, batch.length);
    try {
      const results = await this.#write(batch.map((waiter) => waiter.item));
      if (results.length !== batch.length) {
        // Handing out results by position would then give someone another item's answer.
        throw new Error(`batch writer returned ${results.length} results for ${batch.length}`);
      }
      // In submission order: callers that publish right after their result arrives then
      // publish in storage order too.
      batch.forEach((waiter, i) => waiter.resolve(results[i]!));
    } catch (error) {
      this.#stats.failedBatches += 1;
      for (const waiter of batch) waiter.reject(error);
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
