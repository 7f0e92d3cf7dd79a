import fc from 'fast-check';

import { PeerError, ServerIdentityError } from '@securechat/protocol';

import { FakeTimers } from '../test/fake-timers';
import { TrustConfigurationError } from './client-errors';
import { DEFAULT_RECONNECT, Reconnector, backoffDelay, isFinalFailure } from './reconnector';

describe('backoffDelay', () => {
  it('doubles per attempt up to the cap, with jitter between half and all of it', () => {
    const o = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffDelay(a, o, () => 0))).toEqual([
      50, 100, 200, 400, 500, 500,
    ]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 0.999999))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
  });

  it('never exceeds the cap and never drops below half of it once reached', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 0, max: 600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, initialDelayMs, maxDelayMs, r) => {
          const delay = backoffDelay(attempt, { initialDelayMs, maxDelayMs }, () => r);
          const cap = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 30));
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeLessThanOrEqual(maxDelayMs);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(cap / 2));
        },
      ),
    );
  });
});

describe('isFinalFailure', () => {
  it('ends the client on identity and authentication failures, retries the rest', () => {
    expect(isFinalFailure(new ServerIdentityError('server_key_mismatch', 'a', 'b'))).toBe(true);
    expect(isFinalFailure(new TrustConfigurationError('x:1', 'a', 'b'))).toBe(true);
    expect(isFinalFailure(new PeerError('auth_failed', 'authentication failed'))).toBe(true);
    expect(isFinalFailure(new PeerError('conflict', 'taken'))).toBe(true);
    expect(isFinalFailure(new PeerError('rate_limited', 'wait', 3))).toBe(false);
    expect(isFinalFailure(new PeerError('shutting_down', 'bye'))).toBe(false);
    expect(isFinalFailure(new Error('ECONNRESET'))).toBe(false);
  });
});

describe('Reconnector', () => {
  const lost = new Error('ECONNREFUSED');

  it('by default never gives up: attempt 11, 50 and 1000 still get a retry (issue 14)', () => {
    expect(DEFAULT_RECONNECT.maxAttempts).toBe(Infinity);
    const reconnector = new Reconnector({}, () => 0.5);
    const scheduled = new Map<number, number>();
    for (let i = 1; i <= 1000; i++) {
      const next = reconnector.next(lost);
      expect(next).toBeDefined();
      scheduled.set(next!.attempt, next!.delayMs);
    }
    expect([...scheduled.keys()].slice(-1)).toEqual([1000]);
    for (const attempt of [11, 50, 1000]) {
      expect(scheduled.get(attempt)).toBeLessThanOrEqual(DEFAULT_RECONNECT.maxDelayMs);
      expect(scheduled.get(attempt)).toBeGreaterThanOrEqual(DEFAULT_RECONNECT.maxDelayMs / 2);
    }
  });

  it('keeps every delay within the cap, whatever the jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (maxDelayMs, attempts, r) => {
          const reconnector = new Reconnector({ initialDelayMs: 10, maxDelayMs }, () => r);
          for (let i = 0; i < attempts; i++) {
            expect(reconnector.next(lost)!.delayMs).toBeLessThanOrEqual(maxDelayMs);
          }
        },
      ),
    );
  });

  it('gives up after maxAttempts when a limit is set, and counts again after reset()', () => {
    const reconnector = new Reconnector({ maxAttempts: 2, initialDelayMs: 100 }, () => 0);
    expect(reconnector.next(lost)).toEqual({ attempt: 1, delayMs: 50 });
    expect(reconnector.next(lost)).toEqual({ attempt: 2, delayMs: 100 });
    expect(reconnector.next(lost)).toBeUndefined();
    reconnector.reset();
    expect(reconnector.next(lost)).toEqual({ attempt: 1, delayMs: 50 });
    expect(new Reconnector({ maxAttempts: 0 }).next(lost)).toBeUndefined();
  });

  it("waits at least the server's retry_after, even beyond the cap", () => {
    const reconnector = new Reconnector({ initialDelayMs: 100, maxDelayMs: 1_000 }, () => 0);
    expect(reconnector.next(new PeerError('rate_limited', 'slow down', 3))?.delayMs).toBe(3_000);
    expect(reconnector.next(lost)?.delayMs).toBe(100);
  });

  it('takes an option given as undefined as its default, and refuses nonsense', () => {
    const reconnector = new Reconnector({ maxAttempts: undefined, maxDelayMs: undefined });
    expect(reconnector.options).toEqual(DEFAULT_RECONNECT);
    expect(() => new Reconnector({ maxAttempts: -1 })).toThrow(TypeError);
    expect(() => new Reconnector({ maxAttempts: 1.5 })).toThrow(TypeError);
    expect(() => new Reconnector({ initialDelayMs: Number.NaN })).toThrow(TypeError);
    expect(() => new Reconnector({ maxDelayMs: Infinity })).toThrow(TypeError);
  });

  it('schedules the retry on its timers, and cancel() drops it', () => {
    const timers = new FakeTimers();
    const reconnector = new Reconnector({ initialDelayMs: 100 }, () => 0.999, timers);
    let retries = 0;
    expect(reconnector.schedule(lost, () => retries++)).toEqual({ attempt: 1, delayMs: 100 });
    timers.advance(99);
    expect(retries).toBe(0);
    timers.advance(1);
    expect(retries).toBe(1);

    expect(reconnector.schedule(lost, () => retries++)).toEqual({ attempt: 2, delayMs: 200 });
    reconnector.cancel();
    timers.advance(10_000);
    expect(retries).toBe(1);
    expect(timers.waiting).toEqual([]);
  });

  it('schedules nothing once the attempts are spent', () => {
    const timers = new FakeTimers();
    const reconnector = new Reconnector({ maxAttempts: 1 }, () => 0, timers);
    reconnector.schedule(lost, () => undefined);
    timers.advance(1_000);
    expect(reconnector.schedule(lost, () => undefined)).toBeUndefined();
    expect(timers.waiting).toEqual([]);
  });
});
