/**
 * A token bucket per key, for the gateway's accept rate per source address (IPv4 address or
 * IPv6 /64). Handshake caps bound how many connections one prefix holds at once; this bounds
 * how fast it may open them, so a peer that connects and drops in a loop cannot make us accept,
 * time and tear down sockets as fast as the network lets it.
 */

export interface AcceptRateOptions {
  /** Tokens added to each bucket per second. */
  readonly ratePerSecond: number;
  /** A bucket's capacity: how many connections a quiet key may open at once. */
  readonly burst: number;
  /** The time in milliseconds (ClockRepository.now in production, a fake clock in tests). */
  readonly now: () => number;
  /** Below this many buckets only time triggers a sweep (default 1024; tests go lower). */
  readonly minSweepSize?: number;
}

interface Bucket {
  /** In thousandths of a token, so that integer rates and times give exact arithmetic. */
  tokens: number;
  /** When `tokens` was last brought up to date, on the monotonic time of {@link AcceptRate}. */
  at: number;
}

/** Below this many buckets, sweeping for size is not worth the scan. */
const MIN_SWEEP_SIZE = 1024;
const TOKEN = 1000;

/**
 * A key without a bucket has a full one: buckets are created on first use and forgotten once
 * they have refilled, which changes no answer. Sweeps run lazily, from `tryTake`, when the map
 * has doubled since the last one or a full refill time (`burst / ratePerSecond` s) has passed.
 * A sweep keeps only keys that took a token within the last refill time, and the map never
 * grows past twice what the last sweep kept (or `minSweepSize`): its size follows the
 * keys recently active, however many distinct addresses a flood brings over time.
 */
export class AcceptRate {
  readonly #buckets = new Map<string, Bucket>();
  readonly #rate: number;
  readonly #capacity: number;
  readonly #refillMs: number;
  readonly #now: () => number;
  readonly #minSweepSize: number;
  /** The last reading of `now`, and the monotonic time it stands for (see #monotonicNow). */
  #lastNow: number;
  #time = 0;
  #sweepAtSize: number;
  #lastSweep = 0;

  constructor(options: AcceptRateOptions) {
    const { ratePerSecond, burst, now, minSweepSize = MIN_SWEEP_SIZE } = options;
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
      throw new RangeError(`ratePerSecond must be a positive number, not ${ratePerSecond}`);
    }
    if (!Number.isInteger(burst) || burst < 1) {
      throw new RangeError(`burst must be a positive integer, not ${burst}`);
    }
    if (typeof now !== 'function') throw new TypeError('now must be a function');
    if (!Number.isInteger(minSweepSize) || minSweepSize < 1) {
      throw new RangeError(`minSweepSize must be a positive integer, not ${minSweepSize}`);
    }
    // `rate` tokens per second are `rate` thousandths of a token per millisecond.
    this.#rate = ratePerSecond;
    this.#capacity = burst * TOKEN;
    this.#refillMs = this.#capacity / ratePerSecond;
    this.#now = now;
    this.#minSweepSize = minSweepSize;
    this.#sweepAtSize = minSweepSize;
    this.#lastNow = now();
  }

  /** Buckets held (the keys that are not full). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes a token from `key`'s bucket; false, taking nothing, when it has none. */
  tryTake(key: string): boolean {
    if (typeof key !== 'string') throw new TypeError('key must be a string');
    const now = this.#monotonicNow();
    this.#maybeSweep(now);
    const bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      this.#buckets.set(key, { tokens: this.#capacity - TOKEN, at: now });
      return true;
    }
    this.#refill(bucket, now);
    if (bucket.tokens < TOKEN) return false;
    bucket.tokens -= TOKEN;
    return true;
  }

  /**
   * The wall clock may step back (NTP). Counting a step back as no time at all, rather than
   * comparing raw readings, keeps buckets from freezing until the clock catches up, and keeps
   * lazy refills equal to refilling every bucket at every tick.
   */
  #monotonicNow(): number {
    const now = this.#now();
    this.#time += Math.max(0, now - this.#lastNow);
    this.#lastNow = now;
    return this.#time;
  }

  #refill(bucket: Bucket, now: number): void {
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) * this.#rate);
    bucket.at = now;
  }

  #maybeSweep(now: number): void {
    const due = this.#buckets.size >= this.#sweepAtSize || now - this.#lastSweep >= this.#refillMs;
    if (!due) return;
    for (const [key, bucket] of this.#buckets) {
      this.#refill(bucket, now);
      if (bucket.tokens >= this.#capacity) this.#buckets.delete(key);
    }
    this.#lastSweep = now;
    // Doubling keeps the scans amortised O(1) per call even when nothing could be forgotten.
    this.#sweepAtSize = Math.max(this.#minSweepSize, 2 * this.#buckets.size);
  }
}
