/**
 * One behavioural suite for every LoginThrottleRepository: the memory one (embedded mode) and
 * the Redis one (distributed mode, real Redis from REDIS_URL) must throttle identically, so
 * that either can be bound as the provider. Redis-only cases follow: counts shared between
 * instances on separate connections, atomic increments under concurrency, TTLs, Nest wiring.
 */
import { randomUUID } from 'node:crypto';

import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CONFIG, type SecureChatConfig } from '@securechat/core';
import { Redis } from 'ioredis';

import { testConfig } from '../test/auth-fixtures';
import { LoginThrottleRepository } from './login-throttle.repository';
import { MemoryLoginThrottleRepository } from './memory-login-throttle.repository';
import {
  REDIS_LOGIN_THROTTLE_OPTIONS,
  RedisLoginThrottleRepository,
} from './redis-login-throttle.repository';
import { addressThrottleKey, usernameThrottleKey } from './throttle-keys';
import { deleteKeysWithPrefix } from '../../../libs/core/test/redis-test-keys';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key this file writes starts with it; afterAll deletes them. */
const PREFIX = `test:throttle:${randomUUID()}:`;

const T0 = Date.UTC(2025, 0, 1);
const SECOND = 1000;
const HOUR = 3600 * SECOND;

type Policy = Partial<SecureChatConfig['throttle']>;

function config(policy: Policy = {}): SecureChatConfig {
  return testConfig({
    throttle: { userFailures: 5, addressFailures: 200, maxDelaySeconds: 900, ...policy },
  });
}

let admin: Redis;
let opened: RedisLoginThrottleRepository[] = [];
let testNo = 0;

/** A fresh key space per test, so that no test sees another's counts. */
function testPrefix(): string {
  return `${PREFIX}${++testNo}:`;
}

function redisThrottle(policy: Policy = {}, prefix = testPrefix()): RedisLoginThrottleRepository {
  const repository = new RedisLoginThrottleRepository(config(policy), { url: REDIS_URL, prefix });
  opened.push(repository);
  return repository;
}

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

afterEach(async () => {
  await Promise.all(opened.map((r) => r.close()));
  opened = [];
});

afterAll(async () => {
  await deleteKeysWithPrefix(admin, PREFIX);
  await admin.quit();
});

async function fail(
  t: LoginThrottleRepository,
  times: number,
  now: number,
  user: string | null = 'alice',
  address = '192.0.2.1',
): Promise<void> {
  for (let i = 0; i < times; i++) await t.recordFailure(user, address, now);
}

describe.each([
  [
    'MemoryLoginThrottleRepository',
    (policy?: Policy) => new MemoryLoginThrottleRepository(config(policy)),
  ],
  ['RedisLoginThrottleRepository', (policy?: Policy) => redisThrottle(policy)],
] as const)(
  '%s (shared behaviour)',
  (_name, make: (policy?: Policy) => LoginThrottleRepository) => {
    it('lets the first threshold − 1 failures through and blocks from the threshold on', async () => {
      const t = make();
      await fail(t, 4, T0);
      expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(0);
      await fail(t, 1, T0);
      expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
      expect(await t.blockedFor('bob', '192.0.2.2', T0)).toBe(0);
      // The username alone blocks, from any address.
      expect(await t.blockedFor('alice', '198.51.100.7', T0)).toBe(1);
    });

    it('attempt: counts while free and answers the delay without counting once blocked', async () => {
      const t = make({ userFailures: 3, addressFailures: 5 });
      for (let i = 0; i < 3; i++) expect(await t.attempt('alice', '192.0.2.1', T0)).toBe(0);
      // The username is blocked (3 ≥ 3): refused, and the refusal counts nowhere.
      expect(await t.attempt('alice', '192.0.2.1', T0)).toBe(1);
      expect(await t.attempt('alice', '192.0.2.1', T0)).toBe(1);
      // The address has 3 of its 5: two more address-only attempts pass, the next is refused.
      expect(await t.attempt(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.attempt(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.attempt(null, '192.0.2.1', T0)).toBe(1);
      // Past the delay the username counts again, and its next delay has doubled.
      expect(await t.attempt('alice', '198.51.100.1', T0 + SECOND)).toBe(0);
      expect(await t.attempt('alice', '198.51.100.1', T0 + SECOND)).toBe(2);
    });

    it('refund: gives one unit back to the address, never below zero, and leaves usernames alone', async () => {
      const t = make({ userFailures: 2, addressFailures: 2 });
      expect(await t.attempt('alice', '192.0.2.1', T0)).toBe(0);
      expect(await t.attempt('alice', '192.0.2.1', T0)).toBe(0);
      await t.refund('192.0.2.1', T0);
      expect(await t.blockedFor(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.blockedFor('alice', '198.51.100.1', T0)).toBe(1);
      await t.refund('192.0.2.1', T0);
      await t.refund('192.0.2.1', T0);
      await t.refund('192.0.2.9', T0);
      // Two fresh attempts are needed again to block the address: nothing went negative.
      expect(await t.attempt(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.blockedFor(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.attempt(null, '192.0.2.1', T0)).toBe(0);
      expect(await t.blockedFor(null, '192.0.2.1', T0)).toBe(1);
    });

    it('attempt: lets exactly threshold concurrent attempts through', async () => {
      const t = make({ userFailures: 4, addressFailures: 7 });
      const forUser = await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.attempt('alice', `203.0.113.${i}`, T0)),
      );
      expect(forUser.filter((d) => d === 0)).toHaveLength(4);
      const fromAddress = await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.attempt(`user${i}`, '192.0.2.77', T0)),
      );
      expect(fromAddress.filter((d) => d === 0)).toHaveLength(7);
    });

    it('doubles the delay with each further failure, counted from the last failure', async () => {
      const t = make();
      const delays: number[] = [];
      let now = T0;
      for (let f = 1; f <= 9; f++) {
        await t.recordFailure('alice', '192.0.2.1', now);
        const delay = await t.blockedFor('alice', '192.0.2.1', now);
        delays.push(delay);
        now += delay * SECOND;
      }
      expect(delays).toEqual([0, 0, 0, 0, 1, 2, 4, 8, 16]);
      await t.recordFailure('alice', '192.0.2.1', now);
      expect(await t.blockedFor('alice', '192.0.2.1', now + 10_500)).toBe(22);
      expect(await t.blockedFor('alice', '192.0.2.1', now + 32 * SECOND)).toBe(0);
    });

    it('caps the delay at maxDelaySeconds, however many failures', async () => {
      const t = make({ userFailures: 1, maxDelaySeconds: 60 });
      await fail(t, 40, T0);
      expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(60);
      expect(await t.blockedFor('alice', '192.0.2.1', T0 + 59_001)).toBe(1);
      expect(await t.blockedFor('alice', '192.0.2.1', T0 + 60_000)).toBe(0);
      await fail(t, 200, T0); // far past 2^31: no overflow into NaN or Infinity
      expect(await t.blockedFor('alice', '192.0.2.1', T0)).toBe(60);
    });

    it('blocks an address across usernames and answers the larger of both delays', async () => {
      const t = make({ addressFailures: 10 });
      for (let i = 0; i < 10; i++) await t.recordFailure(`user${i}`, '192.0.2.9', T0);
      expect(await t.blockedFor('fresh_name', '192.0.2.9', T0)).toBe(1);
      expect(await t.blockedFor('fresh_name', '192.0.2.10', T0)).toBe(0);
      expect(await t.blockedFor(null, '192.0.2.9', T0)).toBe(1);
      await fail(t, 8, T0, 'carol', '192.0.2.50'); // username delay 2^3 = 8 s
      expect(await t.blockedFor('carol', '192.0.2.9', T0)).toBe(8);
    });

    it('counts address-only failures (registration) without touching any username', async () => {
      const t = make({ userFailures: 1, addressFailures: 3 });
      await fail(t, 3, T0, null, '192.0.2.7');
      expect(await t.blockedFor(null, '192.0.2.7', T0)).toBe(1);
      expect(await t.blockedFor('alice', '192.0.2.8', T0)).toBe(0);
    });

    it('resets the username on success but not the address', async () => {
      const t = make({ userFailures: 3, addressFailures: 5 });
      await fail(t, 4, T0);
      await t.recordSuccess('alice');
      expect(await t.blockedFor('alice', '192.0.2.99', T0)).toBe(0);
      await fail(t, 2, T0, 'alice', '192.0.2.99');
      expect(await t.blockedFor('alice', '192.0.2.99', T0)).toBe(0);
      // 192.0.2.1 keeps its four failures and is blocked at the fifth.
      await t.recordFailure('someone', '192.0.2.1', T0);
      expect(await t.blockedFor('nobody', '192.0.2.1', T0)).toBe(1);
    });

    it("clears a blocked username on an operator's order, but not the address", async () => {
      const t = make({ userFailures: 3, addressFailures: 5 });
      await fail(t, 5, T0);
      expect(await t.blockedFor('alice', '192.0.2.77', T0)).toBeGreaterThan(0);
      await t.clear('alice');
      expect(await t.blockedFor('alice', '192.0.2.77', T0)).toBe(0);
      expect(await t.blockedFor('bob', '192.0.2.1', T0)).toBeGreaterThan(0);
    });

    it('counts unknown and invalid usernames exactly like real ones (keys from throttle-keys)', async () => {
      const t = make({ userFailures: 3 });
      const names = ['alice', 'no_such_user', 'Not A Username!', 'x'.repeat(10_000)];
      for (const [i, name] of names.entries()) {
        const key = usernameThrottleKey(name);
        const address = addressThrottleKey(`192.0.2.${100 + i}`);
        await fail(t, 2, T0, key, address);
        expect(await t.blockedFor(key, address, T0)).toBe(0);
        await fail(t, 1, T0, key, address);
        expect(await t.blockedFor(key, address, T0)).toBe(1);
      }
      // Two different invalid names never share a count.
      expect(await t.blockedFor(usernameThrottleKey('Other Bad Name'), '203.0.113.1', T0)).toBe(0);
    });

    it('counts every address of one IPv6 /64 together (keys from throttle-keys)', async () => {
      const t = make({ addressFailures: 4 });
      for (let i = 1; i <= 4; i++) {
        await t.recordFailure(`user${i}`, addressThrottleKey(`2001:db8:1:2::${i}`), T0);
      }
      expect(await t.blockedFor(null, addressThrottleKey('2001:db8:1:2:ffff::9'), T0)).toBe(1);
      expect(await t.blockedFor(null, addressThrottleKey('2001:db8:1:3::1'), T0)).toBe(0);
    });

    it('forgets a username 24 h after its last failure and an address after 2 × maxDelay', async () => {
      const t = make({ userFailures: 5, addressFailures: 5, maxDelaySeconds: 900 });
      await fail(t, 4, T0);
      await t.recordFailure('alice', '192.0.2.1', T0 + 1800 * SECOND);
      expect(await t.blockedFor('alice', '192.0.2.1', T0 + 1800 * SECOND)).toBe(1);

      const later = T0 + 3600 * SECOND + 1;
      await t.recordFailure('alice', '192.0.2.1', later);
      expect(await t.blockedFor('other', '192.0.2.1', later)).toBe(0); // address counted afresh
      expect(await t.blockedFor('alice', '192.0.2.2', later)).toBe(2); // username kept: 6th

      const nextDay = later + 24 * HOUR + 1;
      expect(await t.blockedFor('alice', '192.0.2.2', nextDay)).toBe(0);
      await t.recordFailure('alice', '192.0.2.1', nextDay);
      expect(await t.blockedFor('alice', '192.0.2.1', nextDay)).toBe(0);
    });
  },
);

describe('RedisLoginThrottleRepository across instances', () => {
  it('shares counts between two instances on two connections', async () => {
    const prefix = testPrefix();
    const a = redisThrottle({ userFailures: 4 }, prefix);
    const b = redisThrottle({ userFailures: 4 }, prefix);
    await fail(a, 2, T0);
    await fail(b, 1, T0);
    expect(await a.blockedFor('alice', '192.0.2.1', T0)).toBe(0);
    await fail(b, 1, T0);
    expect(await a.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
    expect(await b.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
    await a.recordSuccess('alice');
    expect(await b.blockedFor('alice', '192.0.2.1', T0)).toBe(0);
  });

  it('loses no increment when instances record failures concurrently', async () => {
    const prefix = testPrefix();
    const policy = { userFailures: 100, addressFailures: 100 };
    const [a, b] = [redisThrottle(policy, prefix), redisThrottle(policy, prefix)];
    await Promise.all(
      Array.from({ length: 99 }, (_, i) =>
        (i % 2 === 0 ? a : b).recordFailure('alice', '192.0.2.1', T0),
      ),
    );
    expect(await a.blockedFor('alice', '198.51.100.1', T0)).toBe(0);
    expect(await b.blockedFor(null, '192.0.2.1', T0)).toBe(0);
    await Promise.all([
      a.recordFailure('alice', '192.0.2.1', T0),
      b.recordFailure('alice', '192.0.2.1', T0),
    ]);
    // 101 failures: 2^(101 − 100) = 2 s, for the username and the address alike.
    expect(await a.blockedFor('alice', '198.51.100.1', T0)).toBe(2);
    expect(await b.blockedFor(null, '192.0.2.1', T0)).toBe(2);
  });

  it('lets exactly threshold attempts through when instances attempt concurrently', async () => {
    const prefix = testPrefix();
    const policy = { userFailures: 5, addressFailures: 9 };
    const [a, b] = [redisThrottle(policy, prefix), redisThrottle(policy, prefix)];
    const forUser = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        (i % 2 === 0 ? a : b).attempt('alice', `203.0.113.${i}`, T0),
      ),
    );
    expect(forUser.filter((d) => d === 0)).toHaveLength(5);
    const fromAddress = await Promise.all(
      Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? a : b).attempt(null, '192.0.2.1', T0)),
    );
    expect(fromAddress.filter((d) => d === 0)).toHaveLength(9);
  });

  it('lets Redis expire idle entries: usernames after 24 h, addresses after 2 × maxDelay', async () => {
    const prefix = testPrefix();
    const t = redisThrottle({ maxDelaySeconds: 900 }, prefix);
    await t.recordFailure('alice', '192.0.2.1', Date.now());
    const userTtl = await admin.pttl(`${prefix}throttle:u:alice`);
    const addressTtl = await admin.pttl(`${prefix}throttle:a:192.0.2.1`);
    expect(userTtl).toBeGreaterThan(24 * HOUR - 60 * SECOND);
    expect(userTtl).toBeLessThanOrEqual(24 * HOUR);
    expect(addressTtl).toBeGreaterThan(1800 * SECOND - 60 * SECOND);
    expect(addressTtl).toBeLessThanOrEqual(1800 * SECOND);
    await t.recordSuccess('alice');
    expect(await admin.exists(`${prefix}throttle:u:alice`)).toBe(0);
    expect(await admin.exists(`${prefix}throttle:a:192.0.2.1`)).toBe(1);
  });

  it('works on a borrowed client and leaves it open on close', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const prefix = testPrefix();
      const a = new RedisLoginThrottleRepository(config({ userFailures: 1 }), {
        redis: client,
        prefix,
      });
      const b = new RedisLoginThrottleRepository(config({ userFailures: 1 }), {
        redis: client,
        prefix,
      });
      await a.recordFailure('alice', '192.0.2.1', T0);
      expect(await b.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
      await a.close();
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.quit();
    }
  });

  it.each([
    [
      'RedisLoginThrottleRepository.provider({ url, prefix })',
      (prefix: string) => [RedisLoginThrottleRepository.provider({ url: REDIS_URL, prefix })],
    ],
    [
      'useClass with REDIS_LOGIN_THROTTLE_OPTIONS',
      (prefix: string) => [
        { provide: REDIS_LOGIN_THROTTLE_OPTIONS, useValue: { url: REDIS_URL, prefix } },
        { provide: LoginThrottleRepository, useClass: RedisLoginThrottleRepository },
      ],
    ],
    [
      'useClass alone, reading redisUrl and redisPrefix from CONFIG (as the memory one is bound)',
      () => [{ provide: LoginThrottleRepository, useClass: RedisLoginThrottleRepository }],
    ],
  ])('is provided to Nest by %s and closes its connection at shutdown', async (_how, providers) => {
    const prefix = testPrefix();
    const withRedis = { ...config({ userFailures: 1 }), redisUrl: REDIS_URL, redisPrefix: prefix };
    @Module({ providers: [{ provide: CONFIG, useValue: withRedis }, ...providers(prefix)] })
    class ThrottleTestModule {}
    const app = await NestFactory.createApplicationContext(ThrottleTestModule, { logger: false });
    const throttle = app.get(LoginThrottleRepository);
    expect(throttle).toBeInstanceOf(RedisLoginThrottleRepository);
    await throttle.recordFailure('alice', '192.0.2.1', T0);
    expect(await throttle.blockedFor('alice', '192.0.2.1', T0)).toBe(1);
    expect(await admin.exists(`${prefix}throttle:u:alice`)).toBe(1);
    await app.close();
    await expect(throttle.blockedFor('alice', '192.0.2.1', T0)).rejects.toThrow();
  });

  it('refuses to start without a Redis URL or client', () => {
    const { redisUrl: _none, ...withoutUrl } = { ...config(), redisUrl: undefined };
    expect(() => new RedisLoginThrottleRepository(withoutUrl)).toThrow('REDIS_URL');
  });
});
