import { testConfig } from '../test/auth-fixtures';
import { MemoryLoginThrottleRepository } from './memory-login-throttle.repository';

const T0 = Date.UTC(2025, 0, 1);
const SECOND = 1000;
const HOUR = 3600 * SECOND;

function throttle(
  policy: { userFailures?: number; addressFailures?: number; maxDelaySeconds?: number } = {},
  maxEntries?: number,
) {
  return new MemoryLoginThrottleRepository(
    testConfig({
      throttle: { userFailures: 5, addressFailures: 200, maxDelaySeconds: 900, ...policy },
    }),
    maxEntries === undefined ? undefined : { maxEntries },
  );
}

async function fail(
  t: MemoryLoginThrottleRepository,
  times: number,
  now: number,
  user = 'alice',
  address = '192.0.2.1',
) {
  for (let i = 0; i < times; i++) await t.recordFailure(user, address, now);
}

describe('MemoryLoginThrottleRepository', () => {
  it('lets the first threshold − 1 failures through and blocks from the threshold on', async () => {
    const t = throttle();
    await fail(t, 4, T0);
    expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(0);
    await fail(t, 1, T0);
    expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
    // Other usernames from another address are unaffected.
    expect(await t.blockedFor('bob', '192.0.2.2', T0)).toBe(0);
  });

  it('doubles the delay with each further failure, counted from the last failure', async () => {
    const t = throttle();
    const delays: number[] = [];
    let now = T0;
    for (let f = 1; f <= 9; f++) {
      await t.recordFailure('alice', '192.0.2.1', now);
      const delay = await t.blockedFor('alice', '192.0.2.1', now);
      delays.push(delay);
      now += delay * SECOND; // the attacker waits exactly as long as told
    }
    expect(delays).toEqual([0, 0, 0, 0, 1, 2, 4, 8, 16]);
    // Remaining time shrinks as the clock advances, rounded up to whole seconds.
    await t.recordFailure('alice', '192.0.2.1', now);
    expect(await t.blockedFor('alice', '192.0.2.1', now + 10_500)).toBe(22);
    expect(await t.blockedFor('alice', '192.0.2.1', now + 32 * SECOND)).toBe(0);
  });

  it('caps the delay at maxDelaySeconds', async () => {
    const t = throttle({ userFailures: 1, maxDelaySeconds: 60 });
    await fail(t, 40, T0);
    expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(60);
    expect(await t.blockedFor('alice', '192.0.2.1', T0 + 59_001)).toBe(1);
    expect(await t.blockedFor('alice', '192.0.2.1', T0 + 60_000)).toBe(0);
    await fail(t, 2000, T0); // huge counts must not overflow into NaN or Infinity
    expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(60);
  });

  it('blocks an address after addressFailures across many usernames, and answers the max of both', async () => {
    const t = throttle({ addressFailures: 10 });
    for (let i = 0; i < 10; i++) await t.recordFailure(`user${i}`, '192.0.2.9', T0);
    expect(await t.blockedFor('fresh_name', '192.0.2.9', T0)).toBe(1);
    expect(await t.blockedFor('fresh_name', '192.0.2.10', T0)).toBe(0);
    expect(await t.blockedFor(null, '192.0.2.9', T0)).toBe(1);

    await fail(t, 8, T0, 'carol', '192.0.2.50'); // username delay 2^3 = 8 s
    expect(await t.blockedFor('carol', '192.0.2.9', T0)).toBe(8);
  });

  it('counts address-only failures (registration) without touching any username', async () => {
    const t = throttle({ addressFailures: 3 });
    for (let i = 0; i < 3; i++) await t.recordFailure(null, '192.0.2.7', T0);
    expect(await t.blockedFor(null, '192.0.2.7', T0)).toBe(1);
    expect(t.size).toEqual({ usernames: 0, addresses: 1 });
  });

  it('resets the username on success but not the address', async () => {
    const t = throttle({ userFailures: 3, addressFailures: 5 });
    await fail(t, 4, T0);
    await t.recordSuccess('alice');
    expect(await t.blockedFor('alice', '192.0.2.99', T0)).toBe(0);
    // Counting starts again from zero for the username...
    await fail(t, 2, T0, 'alice', '192.0.2.99');
    expect(await t.blockedFor('alice', '192.0.2.99', T0)).toBe(0);
    // ...while 192.0.2.1 keeps its four failures and is blocked at the fifth.
    await t.recordFailure('someone', '192.0.2.1', T0);
    expect(await t.blockedFor('nobody', '192.0.2.1', T0)).toBe(1);
  });

  it('forgets a username 24 h after its last failure and an address after 2 × maxDelay', async () => {
    const t = throttle({ userFailures: 5, addressFailures: 5, maxDelaySeconds: 900 });
    await fail(t, 4, T0);
    // Just inside the retention windows the counts are still there.
    await t.recordFailure('alice', '192.0.2.1', T0 + 1800 * SECOND);
    expect(await t.blockedFor('alice', '192.0.2.1', T0 + 1800 * SECOND)).toBe(1);

    const later = T0 + 1800 * SECOND + 1800 * SECOND + 1;
    // The address (idle 30 min + 1 ms) is forgotten; the username (idle 30 min) is not.
    await t.recordFailure('alice', '192.0.2.1', later);
    expect(await t.blockedFor('other', '192.0.2.1', later)).toBe(0);
    expect(await t.blockedFor('alice', '192.0.2.2', later)).toBe(2);

    const nextDay = later + 24 * HOUR + 1;
    expect(await t.blockedFor('alice', '192.0.2.2', nextDay)).toBe(0);
    await t.recordFailure('alice', '192.0.2.1', nextDay);
    expect(await t.blockedFor('alice', '192.0.2.1', nextDay)).toBe(0);
    expect(t.size).toEqual({ usernames: 1, addresses: 1 });
  });

  it('drops forgotten entries on its own, without them being looked up again', async () => {
    const t = throttle();
    for (let i = 0; i < 50; i++) await t.recordFailure(`user${i}`, `192.0.2.${i}`, T0);
    expect(t.size).toEqual({ usernames: 50, addresses: 50 });
    await t.recordFailure('late', '198.51.100.1', T0 + 25 * HOUR);
    expect(t.size).toEqual({ usernames: 1, addresses: 1 });
  });

  it('forgets an expired entry on lookup even when the clock stepped back meanwhile', async () => {
    const t = throttle({ userFailures: 1 });
    await t.recordFailure('late', '192.0.2.1', T0 + 10 * HOUR); // front of the table
    await t.recordFailure('early', '192.0.2.2', T0); // the wall clock was stepped back
    const at = T0 + 24 * HOUR + 1;
    expect(await t.blockedFor('early', '198.51.100.1', at)).toBe(0);
    await t.recordFailure('early', '198.51.100.1', at);
    expect(await t.blockedFor('early', '198.51.100.1', at)).toBe(1); // counted afresh: 2^0
  });

  it('holds at most maxEntries per kind, evicting the entry idle longest', async () => {
    const t = throttle({ userFailures: 2, addressFailures: 1000 }, 3);
    await fail(t, 2, T0, 'alice');
    await fail(t, 1, T0 + 1, 'bob');
    await fail(t, 1, T0 + 2, 'carol');
    await fail(t, 1, T0 + 3, 'alice'); // alice is now the most recent
    await fail(t, 1, T0 + 4, 'dave'); // evicts bob, the oldest
    expect(t.size.usernames).toBe(3);
    expect(await t.blockedFor('alice', '203.0.113.1', T0 + 4)).toBeGreaterThan(0);
    await fail(t, 1, T0 + 5, 'bob');
    expect(await t.blockedFor('bob', '203.0.113.1', T0 + 5)).toBe(0); // count restarted at 1
    expect(await t.blockedFor('carol', '203.0.113.1', T0 + 5)).toBe(0);

    for (let i = 0; i < 1000; i++)
      await t.recordFailure(`spray${i}`, `198.51.100.${i % 250}`, T0 + 6);
    expect(t.size).toEqual({ usernames: 3, addresses: 3 });
  });
});
