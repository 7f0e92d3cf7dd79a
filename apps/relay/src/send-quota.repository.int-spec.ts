/**
 * One behavioural suite for both SendQuotaRepository implementations — the memory one
 * (embedded) and the Redis one (distributed, real Redis from REDIS_URL) must charge alike —
 * then the Redis-only cases: one count for instances on separate connections, under
 * concurrency.
 */
import { randomUUID } from 'node:crypto';

import { loadConfig, type SecureChatConfig } from '@securechat/core';
import { Redis } from 'ioredis';

import { deleteKeysWithPrefix } from '../../../libs/core/test/redis-test-keys';
import { MemorySendQuotaRepository } from './memory-send-quota.repository';
import { RedisSendQuotaRepository } from './redis-send-quota.repository';
import { DAY_MS, type SendQuotaRepository } from './send-quota.repository';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `test:quota:${randomUUID()}:`;
/** Noon UTC, so that a few minutes either way stay within the day. */
const T0 = Date.UTC(2026, 0, 1, 12);
const SECOND = 1000;

function config(rate: number, burst: number, bytesPerDay: number): SecureChatConfig {
  return loadConfig({
    SECURECHAT_SEND_RATE: String(rate),
    SECURECHAT_SEND_BURST: String(burst),
    SECURECHAT_SEND_BYTES_PER_DAY: String(bytesPerDay),
  });
}

let admin: Redis;
let opened: RedisSendQuotaRepository[] = [];
let testNo = 0;

function redisQuota(
  c: SecureChatConfig,
  prefix = `${PREFIX}${++testNo}:`,
): RedisSendQuotaRepository {
  const repository = new RedisSendQuotaRepository(c, { url: REDIS_URL, prefix });
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

const sizes = (n: number, size = 10) => Array.from({ length: n }, () => size);

describe.each([
  ['MemorySendQuotaRepository', (c: SecureChatConfig) => new MemorySendQuotaRepository(c)],
  ['RedisSendQuotaRepository', (c: SecureChatConfig) => redisQuota(c)],
] as const)(
  '%s (shared behaviour)',
  (_name, make: (c: SecureChatConfig) => SendQuotaRepository) => {
    it('accepts a burst at once, then refuses the rest with the time one token takes', async () => {
      const q = make(config(4, 10, 0));
      expect(await q.charge('alice', sizes(6), T0)).toEqual({ accepted: 6, retryAfter: 0 });
      // 4 left: a run of 6 gets its first 4 in; the 5th waits for 1 token at 4/s → 1 s.
      expect(await q.charge('alice', sizes(6), T0)).toEqual({ accepted: 4, retryAfter: 1 });
      expect(await q.charge('alice', sizes(1), T0)).toEqual({ accepted: 0, retryAfter: 1 });
      // Others have their own bucket.
      expect(await q.charge('bob', sizes(10), T0)).toEqual({ accepted: 10, retryAfter: 0 });
    });

    it('refills at the rate, never above the burst', async () => {
      const q = make(config(1, 3, 0));
      expect((await q.charge('alice', sizes(3), T0)).accepted).toBe(3);
      expect((await q.charge('alice', sizes(3), T0 + 2 * SECOND)).accepted).toBe(2);
      // After a long quiet spell the bucket is full again, not more.
      expect(await q.charge('alice', sizes(5), T0 + 3600 * SECOND)).toEqual({
        accepted: 3,
        retryAfter: 1,
      });
      // A slow rate says so: at 1 token/s, half a token short is still a whole second.
      expect(await q.charge('alice', sizes(1), T0 + 3600 * SECOND + 500)).toEqual({
        accepted: 0,
        retryAfter: 1,
      });
    });

    it('counts body bytes per UTC day and refuses past the limit until midnight', async () => {
      const q = make(config(0, 1, 100));
      expect(await q.charge('alice', [40, 40, 40], T0)).toEqual({
        accepted: 2,
        retryAfter: 12 * 3600,
      });
      // A smaller send still fits in what is left.
      expect(await q.charge('alice', [20, 1], T0 + SECOND)).toEqual({
        accepted: 1,
        retryAfter: 12 * 3600 - 1,
      });
      // The next UTC day starts afresh.
      const tomorrow = (Math.floor(T0 / DAY_MS) + 1) * DAY_MS;
      expect(await q.charge('alice', [100], tomorrow)).toEqual({ accepted: 1, retryAfter: 0 });
    });

    it('applies both quotas: whichever refuses first stops the run', async () => {
      const q = make(config(10, 5, 1000));
      expect(await q.charge('alice', [400, 400, 400, 1, 1], T0)).toMatchObject({ accepted: 2 });
      expect(await q.charge('alice', [1, 1, 1, 1], T0)).toEqual({ accepted: 3, retryAfter: 1 });
    });

    it('accepts everything when both quotas are off', async () => {
      const q = make(config(0, 1, 0));
      expect(await q.charge('alice', sizes(10_000, 1_000_000), T0)).toEqual({
        accepted: 10_000,
        retryAfter: 0,
      });
    });

    it('accepts exactly the burst from concurrent runs', async () => {
      const q = make(config(1, 25, 0));
      const runs = await Promise.all(
        Array.from({ length: 20 }, () => q.charge('alice', sizes(3), T0)),
      );
      expect(runs.reduce((sum, r) => sum + r.accepted, 0)).toBe(25);
    });
  },
);

describe('MemorySendQuotaRepository', () => {
  it('forgets users whose bucket has refilled and who sent nothing today', async () => {
    const q = new MemorySendQuotaRepository(config(10, 10, 0));
    await q.charge('alice', sizes(10), T0);
    await q.charge('bob', sizes(1), T0);
    expect(q.size).toBe(2);
    await q.charge('carol', sizes(1), T0 + 2 * SECOND);
    expect(q.size).toBe(1);
  });
});

describe('RedisSendQuotaRepository across instances', () => {
  it('charges one bucket from two instances on two connections, concurrently', async () => {
    const prefix = `${PREFIX}shared:`;
    const c = config(1, 40, 0);
    const [a, b] = [redisQuota(c, prefix), redisQuota(c, prefix)];
    const runs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).charge('alice', sizes(2), T0)),
    );
    expect(runs.reduce((sum, r) => sum + r.accepted, 0)).toBe(40);
  });

  it('lets an idle user’s key expire once a fresh one would be the same', async () => {
    const prefix = `${PREFIX}ttl:`;
    const q = redisQuota(config(100, 10, 0), prefix);
    await q.charge('alice', sizes(10), Date.now());
    const ttl = await admin.pttl(`${prefix}quota:alice`);
    // 10 tokens at 100/s refill in 100 ms, plus a second of slack.
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1100);
  });
});
