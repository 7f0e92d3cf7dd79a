/** Token buckets per key on a fake clock: burst, refill, clock steps, and a bounded map. */
import fc from 'fast-check';

import { AcceptRate } from './accept-rate';

/** A clock that moves only when the test says so. */
function fakeClock(start = 1_700_000_000_000) {
  let time = start;
  return {
    now: () => time,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

function takeUntilRefused(rate: AcceptRate, key: string, limit = 10_000): number {
  let taken = 0;
  while (taken < limit && rate.tryTake(key)) taken++;
  return taken;
}

describe('AcceptRate', () => {
  it('lets a quiet key take its burst at once, then refuses', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 50, burst: 200, now: clock.now });
    expect(takeUntilRefused(rate, '192.0.2.1')).toBe(200);
    expect(rate.tryTake('192.0.2.1')).toBe(false);
    // Other keys have their own buckets.
    expect(takeUntilRefused(rate, '192.0.2.2')).toBe(200);
  });

  it('refills at the rate, to the burst and no further', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 50, burst: 200, now: clock.now });
    takeUntilRefused(rate, 'k');
    clock.advance(19);
    expect(rate.tryTake('k')).toBe(false); // 19 ms hold 0.95 of a token
    clock.advance(1);
    expect(rate.tryTake('k')).toBe(true);
    expect(rate.tryTake('k')).toBe(false);
    clock.advance(1000);
    expect(takeUntilRefused(rate, 'k')).toBe(50);
    clock.advance(3_600_000);
    expect(takeUntilRefused(rate, 'k')).toBe(200);
  });

  it('keeps fractions of a token between calls, with rates that do not divide a second', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 3, burst: 2, now: clock.now });
    expect(takeUntilRefused(rate, 'k')).toBe(2);
    let granted = 0;
    for (let ms = 0; ms < 10_000; ms++) {
      clock.advance(1);
      if (rate.tryTake('k')) granted++;
    }
    expect(granted).toBe(30);
  });

  it('neither refills nor freezes when the clock steps back', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 1, burst: 2, now: clock.now });
    takeUntilRefused(rate, 'k');
    clock.advance(-3_600_000);
    expect(rate.tryTake('k')).toBe(false);
    clock.advance(1000); // still an hour behind the last reading before the step
    expect(rate.tryTake('k')).toBe(true);
  });

  it('forgets buckets that have refilled, and answers as if it had kept them', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 50, burst: 200, now: clock.now });
    for (let i = 0; i < 5000; i++) rate.tryTake(`key ${i}`);
    // No time has passed: every bucket is short of a token, so all are kept.
    expect(rate.size).toBe(5000);
    clock.advance(4000); // 200 tokens at 50 per second: everything is full again
    expect(rate.tryTake('key 0')).toBe(true);
    expect(rate.size).toBe(1);
    expect(takeUntilRefused(rate, 'key 1')).toBe(200);
  });

  it('stays bounded under a flood of distinct keys', () => {
    const clock = fakeClock();
    const rate = new AcceptRate({ ratePerSecond: 50, burst: 200, now: clock.now });
    let largest = 0;
    let refused = 0;
    for (let i = 0; i < 200_000; i++) {
      clock.advance(1);
      if (!rate.tryTake(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`)) {
        refused++;
      }
      largest = Math.max(largest, rate.size);
    }
    expect(refused).toBe(0);
    // A key that took one token is full again 20 ms later; sweeps start at 1024 buckets.
    expect(largest).toBeLessThanOrEqual(1024);
  });

  it('answers exactly like buckets that are refilled at every tick and never forgotten', () => {
    const step = fc.record({
      // Mostly little or no time, so that buckets run dry and pile up, with the odd long step
      // (and steps back, which must count as no time).
      advance: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 50 }) },
        { weight: 1, arbitrary: fc.integer({ min: -5000, max: 5000 }) },
      ),
      key: fc.oneof(fc.nat(3), fc.nat(40)),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 16 }),
        fc.array(step, { minLength: 50, maxLength: 400 }),
        (ratePerSecond, burst, minSweepSize, steps) => {
          const clock = fakeClock();
          const rate = new AcceptRate({ ratePerSecond, burst, now: clock.now, minSweepSize });
          // The model, in thousandths of a token: every bucket refilled on every step.
          const capacity = burst * 1000;
          const refillMs = capacity / ratePerSecond;
          const model = new Map<number, number>();
          const lastTaken = new Map<number, number>();
          let time = 0; // steps back count as no time
          for (const { advance, key } of steps) {
            clock.advance(advance);
            time += Math.max(0, advance);
            for (const [k, tokens] of model) {
              model.set(k, Math.min(capacity, tokens + Math.max(0, advance) * ratePerSecond));
            }
            const tokens = model.get(key) ?? capacity;
            const expected = tokens >= 1000;
            model.set(key, expected ? tokens - 1000 : tokens);
            if (expected) lastTaken.set(key, time);
            expect(rate.tryTake(String(key))).toBe(expected);

            // Every bucket that is not full is held; the rest are only held until a sweep,
            // and a sweep runs at least once per refill time, so what is held took a token
            // within two refill times (or is below the size that triggers a sweep).
            const notFull = [...model.values()].filter((t) => t < capacity).length;
            const recent = [...lastTaken.values()].filter((t) => time - t <= 2 * refillMs).length;
            expect(rate.size).toBeGreaterThanOrEqual(notFull);
            expect(rate.size).toBeLessThanOrEqual(Math.max(minSweepSize, 2 * recent));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('checks its arguments', () => {
    const now = () => 0;
    for (const ratePerSecond of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new AcceptRate({ ratePerSecond, burst: 1, now })).toThrow(RangeError);
    }
    for (const burst of [0, 1.5, Number.NaN]) {
      expect(() => new AcceptRate({ ratePerSecond: 1, burst, now })).toThrow(RangeError);
    }
    expect(
      () => new AcceptRate({ ratePerSecond: 1, burst: 1, now: undefined as unknown as () => 0 }),
    ).toThrow(TypeError);
    expect(() => new AcceptRate({ ratePerSecond: 1, burst: 1, now, minSweepSize: 0 })).toThrow(
      RangeError,
    );
    expect(() =>
      new AcceptRate({ ratePerSecond: 1, burst: 1, now }).tryTake(1 as unknown as string),
    ).toThrow(TypeError);
  });
});
