/**
 * Statistics for `npm run bench`: medians over runs, percentiles, and a latency histogram
 * with bounded memory (HDR-like: exact below 1024 µs, then 512 linear sub-buckets per power
 * of two, so any recorded value is reported within 0.2 %), so that a run of millions of
 * messages costs a few kilobytes, and histograms of several load generators can be merged.
 */

/** Median of `values` (mean of the two middle values for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Median, min and max: what each figure of the report shows. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** 1-based rank of the p-th percentile of n values; the epsilon keeps 99.9 % of 1000 at 999. */
function nearestRank(p: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil((p * n) / 100 - 1e-9)));
}

/**
 * Nearest-rank percentile (`p` in [0, 100]) of an ascending array: the smallest value with at
 * least p % of the values at or below it. No interpolation, so the answer is always a value
 * that was measured.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError('p must be in [0, 100]');
  if (sorted.length === 0) return Number.NaN;
  const rank = nearestRank(p, sorted.length);
  return sorted[rank - 1]!;
}

const SUB_BUCKET_BITS = 9;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS; // 512
const EXACT_LIMIT = SUB_BUCKETS * 2; // values below 1024 have a bucket each

/** Bucket of a non-negative integer. */
function bucketOf(value: number): number {
  if (value < EXACT_LIMIT) return value;
  let magnitude = Math.floor(Math.log2(value)); // ≥ 10
  if (2 ** magnitude > value) magnitude--; // log2 rounded up just below a power of two
  const shift = magnitude - SUB_BUCKET_BITS;
  const sub = Math.floor(value / 2 ** shift) - SUB_BUCKETS; // in [0, 512)
  return EXACT_LIMIT + (magnitude - SUB_BUCKET_BITS - 1) * SUB_BUCKETS + sub;
}

/** The largest value that falls into `bucket` (percentiles report the upper edge). */
function upperEdge(bucket: number): number {
  if (bucket < EXACT_LIMIT) return bucket;
  const offset = bucket - EXACT_LIMIT;
  const magnitude = Math.floor(offset / SUB_BUCKETS) + SUB_BUCKET_BITS + 1;
  const sub = offset % SUB_BUCKETS;
  const shift = magnitude - SUB_BUCKET_BITS;
  return (SUB_BUCKETS + sub + 1) * 2 ** shift - 1;
}

export interface HistogramJson {
  /** [bucket, count] pairs of the non-empty buckets. */
  readonly buckets: [number, number][];
  readonly max: number;
}

/** Latencies as non-negative integers (the load generator records microseconds). */
export class LatencyHistogram {
  readonly #counts = new Map<number, number>();
  #count = 0;
  #max = 0;

  get count(): number {
    return this.#count;
  }

  get max(): number {
    return this.#max;
  }

  record(value: number): void {
    const v = Math.max(0, Math.round(value));
    const bucket = bucketOf(v);
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
    this.#count++;
    if (v > this.#max) this.#max = v;
  }

  /**
   * Nearest-rank percentile like percentileOfSorted, reported as the upper edge of its bucket
   * (never more than the largest recorded value): at most 0.2 % above the exact answer.
   */
  percentile(p: number): number {
    if (!(p >= 0 && p <= 100)) throw new RangeError('p must be in [0, 100]');
    if (this.#count === 0) return Number.NaN;
    const rank = nearestRank(p, this.#count);
    let seen = 0;
    for (const bucket of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(bucket)!;
      if (seen >= rank) return Math.min(upperEdge(bucket), this.#max);
    }
    return this.#max;
  }

  merge(other: LatencyHistogram): void {
    for (const [bucket, count] of other.#counts) {
      this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + count);
    }
    this.#count += other.#count;
    this.#max = Math.max(this.#max, other.#max);
  }

  reset(): void {
    this.#counts.clear();
    this.#count = 0;
    this.#max = 0;
  }

  toJSON(): HistogramJson {
    return { buckets: [...this.#counts], max: this.#max };
  }

  static fromJSON(json: HistogramJson): LatencyHistogram {
    const histogram = new LatencyHistogram();
    for (const [bucket, count] of json.buckets) {
      histogram.#counts.set(bucket, count);
      histogram.#count += count;
    }
    histogram.#max = json.max;
    return histogram;
  }
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** p50/p99/p99.9 of a histogram of microseconds, in milliseconds. */
export function summarizeMicros(histogram: LatencyHistogram): LatencySummary {
  const ms = (micros: number) => micros / 1000;
  return {
    count: histogram.count,
    p50: ms(histogram.percentile(50)),
    p99: ms(histogram.percentile(99)),
    p999: ms(histogram.percentile(99.9)),
    max: ms(histogram.max),
  };
}
