import fc from 'fast-check';

import { LatencyHistogram, median, percentileOfSorted, spread, summarizeMicros } from './stats';

describe('median', () => {
  it('is the middle value, or the mean of the two middle values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('does not reorder its input', () => {
    const values = [3, 1, 2];
    median(values);
    expect(values).toEqual([3, 1, 2]);
  });

  it('gives median, min and max together', () => {
    expect(spread([5, 1, 9, 3])).toEqual({ median: 4, min: 1, max: 9 });
  });
});

describe('percentileOfSorted', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it('is nearest-rank: a value that was measured', () => {
    expect(percentileOfSorted(hundred, 50)).toBe(50);
    expect(percentileOfSorted(hundred, 99)).toBe(99);
    expect(percentileOfSorted(hundred, 99.9)).toBe(100);
    expect(percentileOfSorted(hundred, 0)).toBe(1);
    expect(percentileOfSorted(hundred, 100)).toBe(100);
    expect(percentileOfSorted([10, 20], 50)).toBe(10);
  });

  it('refuses p outside [0, 100]', () => {
    expect(() => percentileOfSorted(hundred, 101)).toThrow(RangeError);
    expect(() => percentileOfSorted(hundred, -1)).toThrow(RangeError);
    expect(percentileOfSorted([], 50)).toBeNaN();
  });
});

describe('LatencyHistogram', () => {
  it('is exact below 1024', () => {
    const histogram = new LatencyHistogram();
    for (let v = 1; v <= 1000; v++) histogram.record(v);
    expect(histogram.count).toBe(1000);
    expect(histogram.percentile(50)).toBe(500);
    expect(histogram.percentile(99)).toBe(990);
    expect(histogram.percentile(99.9)).toBe(999);
    expect(histogram.max).toBe(1000);
  });

  it('never reports more than the largest value recorded', () => {
    const histogram = new LatencyHistogram();
    histogram.record(123_456);
    expect(histogram.percentile(100)).toBe(123_456);
  });

  it('agrees with the exact nearest-rank percentile within 0.2 %, never below it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60_000_000 }), { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0, 1, 50, 90, 99, 99.9, 100),
        (values, p) => {
          const histogram = new LatencyHistogram();
          for (const v of values) histogram.record(v);
          const exact = percentileOfSorted(
            [...values].sort((a, b) => a - b),
            p,
          );
          const approx = histogram.percentile(p);
          expect(approx).toBeGreaterThanOrEqual(exact);
          expect(approx).toBeLessThanOrEqual(exact * 1.002 + 1e-9);
        },
      ),
    );
  });

  it('values just below a power of two stay in their own bucket', () => {
    for (const k of [11, 20, 30, 40, 52]) {
      const histogram = new LatencyHistogram();
      histogram.record(2 ** k - 1);
      histogram.record(2 ** k);
      expect(histogram.percentile(50)).toBe(2 ** k - 1);
      expect(histogram.percentile(100)).toBe(2 ** k);
    }
  });

  it('merges, and survives a JSON round trip (as between load generators and the runner)', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let v = 0; v < 500; v++) a.record(v * 37);
    for (let v = 0; v < 500; v++) b.record(v * 41 + 20_000);
    const both = new LatencyHistogram();
    both.merge(a);
    both.merge(b);
    const copy = LatencyHistogram.fromJSON(
      JSON.parse(JSON.stringify(both)) as ReturnType<LatencyHistogram['toJSON']>,
    );
    expect(copy.count).toBe(1000);
    expect(copy.max).toBe(both.max);
    for (const p of [1, 50, 99, 99.9]) expect(copy.percentile(p)).toBe(both.percentile(p));
    // The median is the largest value of `a` (all of `b` is above it), to bucket precision.
    expect(both.percentile(50)).toBeGreaterThanOrEqual(a.max);
    expect(both.percentile(50)).toBeLessThanOrEqual(a.max * 1.002);
    expect(both.percentile(50)).toBeLessThan(b.percentile(0));
  });

  it('summarizes microseconds as milliseconds', () => {
    const histogram = new LatencyHistogram();
    for (let v = 1; v <= 1000; v++) histogram.record(v);
    expect(summarizeMicros(histogram)).toEqual({
      count: 1000,
      p50: 0.5,
      p99: 0.99,
      p999: 0.999,
      max: 1,
    });
    histogram.reset();
    expect(histogram.count).toBe(0);
    expect(histogram.percentile(50)).toBeNaN();
  });
});
