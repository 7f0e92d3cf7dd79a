/**
 * One behavioural suite for both PresenceRepository implementations (memory for the embedded
 * mode, Redis from REDIS_URL for the distributed one), then the Redis-only cases: entries
 * shared between gateways on separate connections, and entries of a dead gateway left out
 * and deleted once its heartbeat expires.
 */
import { randomUUID } from 'node:crypto';

import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';

import { MemoryPresenceRepository } from './memory-presence.repository';
import { type PresenceEntry, PresenceRepository } from './presence.repository';
import { RedisPresenceRepository } from './redis-presence.repository';
import { deleteKeysWithPrefix } from '../../test/redis-test-keys';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key this file writes starts with it; afterAll deletes them. */
const PREFIX = `test:presence:${randomUUID()}:`;
const T0 = Date.UTC(2025, 0, 1);

let admin: Redis;
let opened: RedisPresenceRepository[] = [];
let testNo = 0;

function testPrefix(): string {
  return `${PREFIX}${++testNo}:`;
}

function redisPresence(prefix = testPrefix(), heartbeatTtlMs?: number): RedisPresenceRepository {
  const repository = new RedisPresenceRepository({
    url: REDIS_URL,
    prefix,
    ...(heartbeatTtlMs === undefined ? {} : { heartbeatTtlMs }),
  });
  opened.push(repository);
  return repository;
}

function entry(
  sessionId: string,
  username: string,
  gateway = 'gw-a',
  since = T0,
  sourceAddress = '192.0.2.1',
): PresenceEntry {
  return { sessionId, username, gateway, sourceAddress, since };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => {
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
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

describe.each([
  ['MemoryPresenceRepository', () => new MemoryPresenceRepository()],
  ['RedisPresenceRepository', () => redisPresence()],
] as const)('%s (shared behaviour)', (_name, make: () => PresenceRepository) => {
  it('lists what was added, oldest login first, for everyone or one user', async () => {
    const p = make();
    await p.heartbeat('gw-a');
    expect(await p.list()).toEqual([]);
    await p.add(entry('s-3', 'carol', 'gw-a', T0 + 3));
    await p.add(entry('s-1', 'alice', 'gw-a', T0 + 1, '2001:db8::1'));
    await p.add(entry('s-2', 'alice', 'gw-a', T0 + 2));
    expect(await p.list()).toEqual([
      entry('s-1', 'alice', 'gw-a', T0 + 1, '2001:db8::1'),
      entry('s-2', 'alice', 'gw-a', T0 + 2),
      entry('s-3', 'carol', 'gw-a', T0 + 3),
    ]);
    expect(await p.listUser('alice')).toEqual([
      entry('s-1', 'alice', 'gw-a', T0 + 1, '2001:db8::1'),
      entry('s-2', 'alice', 'gw-a', T0 + 2),
    ]);
    expect(await p.listUser('nobody')).toEqual([]);
  });

  it('removes one session at a time and forgets a user with the last one', async () => {
    const p = make();
    await p.add(entry('s-1', 'alice', 'gw-a', T0 + 1));
    await p.add(entry('s-2', 'alice', 'gw-a', T0 + 2));
    await p.add(entry('s-3', 'bob', 'gw-a', T0 + 3));
    await p.remove('s-1', 'alice');
    expect(await p.listUser('alice')).toEqual([entry('s-2', 'alice', 'gw-a', T0 + 2)]);
    await p.remove('s-2', 'alice');
    expect(await p.listUser('alice')).toEqual([]);
    expect(await p.list()).toEqual([entry('s-3', 'bob', 'gw-a', T0 + 3)]);
  });

  it('treats removing an unknown session, or under the wrong user, as a no-op', async () => {
    const p = make();
    await p.add(entry('s-1', 'alice'));
    await p.remove('s-9', 'alice');
    await p.remove('s-1', 'bob');
    await p.remove('s-1', 'nobody');
    expect(await p.list()).toEqual([entry('s-1', 'alice')]);
  });

  it('replaces an entry added again under the same session id', async () => {
    const p = make();
    await p.add(entry('s-1', 'alice', 'gw-a', T0));
    await p.add(entry('s-1', 'alice', 'gw-a', T0 + 5, '198.51.100.1'));
    expect(await p.list()).toEqual([entry('s-1', 'alice', 'gw-a', T0 + 5, '198.51.100.1')]);
  });

  it('keeps sessions of one user on several gateways side by side', async () => {
    const p = make();
    await p.heartbeat('gw-b');
    await p.add(entry('s-1', 'alice', 'gw-a', T0 + 1));
    await p.add(entry('s-2', 'alice', 'gw-b', T0 + 2));
    expect((await p.listUser('alice')).map((e) => e.gateway)).toEqual(['gw-a', 'gw-b']);
  });
});

describe('RedisPresenceRepository across gateways', () => {
  it('shares entries between gateways on separate connections, in the documented layout', async () => {
    const prefix = testPrefix();
    const [a, b] = [redisPresence(prefix), redisPresence(prefix)];
    await a.add(entry('s-1', 'alice', 'gw-a', T0 + 1));
    await b.add(entry('s-2', 'alice', 'gw-b', T0 + 2));
    await b.add(entry('s-3', 'bob', 'gw-b', T0 + 3));
    expect(await a.list()).toEqual(await b.list());
    expect(await a.list()).toHaveLength(3);

    expect(JSON.parse((await admin.hget(`${prefix}presence:alice`, 's-2')) ?? '')).toEqual(
      entry('s-2', 'alice', 'gw-b', T0 + 2),
    );
    expect((await admin.smembers(`${prefix}presence-users`)).sort()).toEqual(['alice', 'bob']);
    await a.remove('s-3', 'bob');
    expect(await admin.exists(`${prefix}presence:bob`)).toBe(0);
    expect(await admin.smembers(`${prefix}presence-users`)).toEqual(['alice']);
  });

  it('leaves out and deletes the entries of a gateway whose heartbeat expired', async () => {
    const prefix = testPrefix();
    const live = redisPresence(prefix);
    const dying = redisPresence(prefix, 300);
    await live.heartbeat('gw-live');
    await live.add(entry('s-1', 'alice', 'gw-live', T0 + 1));
    await dying.add(entry('s-2', 'alice', 'gw-dead', T0 + 2));
    await dying.add(entry('s-3', 'bob', 'gw-dead', T0 + 3));
    expect(await live.list()).toHaveLength(3);

    await sleep(400); // gw-dead stops beating: killed
    expect(await live.listUser('alice')).toEqual([entry('s-1', 'alice', 'gw-live', T0 + 1)]);
    expect(await live.list()).toEqual([entry('s-1', 'alice', 'gw-live', T0 + 1)]);
    // Deleted, not just hidden: nothing of the dead gateway outlives it.
    expect(await admin.hkeys(`${prefix}presence:alice`)).toEqual(['s-1']);
    expect(await admin.exists(`${prefix}presence:bob`)).toBe(0);
    expect(await admin.smembers(`${prefix}presence-users`)).toEqual(['alice']);
  });

  it('keeps the entries of a gateway that beats in time, and says when it had lapsed', async () => {
    const prefix = testPrefix();
    const observer = redisPresence(prefix);
    const gateway = redisPresence(prefix, 600);
    expect(await gateway.heartbeat('gw-b')).toBe(false); // first beat: nothing to rely on
    await gateway.add(entry('s-1', 'alice', 'gw-b'));
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      expect(await gateway.heartbeat('gw-b')).toBe(true);
    }
    expect(await observer.list()).toEqual([entry('s-1', 'alice', 'gw-b')]);

    await sleep(700); // a stall longer than the TTL
    expect(await observer.list()).toEqual([]); // pruned meanwhile
    expect(await gateway.heartbeat('gw-b')).toBe(false); // so the gateway re-adds…
    await gateway.add(entry('s-1', 'alice', 'gw-b'));
    expect(await observer.list()).toEqual([entry('s-1', 'alice', 'gw-b')]); // …and is back
  });

  it('skips a malformed stored value instead of failing the listing', async () => {
    const prefix = testPrefix();
    const p = redisPresence(prefix);
    await p.add(entry('s-1', 'alice'));
    await admin.hset(`${prefix}presence:alice`, 's-bad', '{not json');
    await admin.hset(`${prefix}presence:alice`, 's-odd', JSON.stringify({ sessionId: 's-odd' }));
    expect(await p.list()).toEqual([entry('s-1', 'alice')]);
  });

  it('lists many users in batches', async () => {
    const p = redisPresence();
    await Promise.all(
      Array.from({ length: 1200 }, (_, i) => p.add(entry(`s-${i}`, `user${i}`, 'gw-a', T0 + i))),
    );
    const all = await p.list();
    expect(all).toHaveLength(1200);
    expect(all[0]).toEqual(entry('s-0', 'user0', 'gw-a', T0));
    expect(all[1199]?.since).toBe(T0 + 1199);
  });

  it('works on a borrowed client and leaves it open on close', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const p = new RedisPresenceRepository({ redis: client, prefix: testPrefix() });
      await p.add(entry('s-1', 'alice'));
      expect(await p.list()).toHaveLength(1);
      await p.close();
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.quit();
    }
  });

  it('is provided to Nest by RedisPresenceRepository.provider and closes at shutdown', async () => {
    @Module({
      providers: [RedisPresenceRepository.provider({ url: REDIS_URL, prefix: testPrefix() })],
    })
    class PresenceTestModule {}
    const app = await NestFactory.createApplicationContext(PresenceTestModule, { logger: false });
    const presence = app.get(PresenceRepository);
    expect(presence).toBeInstanceOf(RedisPresenceRepository);
    await presence.add(entry('s-1', 'alice'));
    expect(await presence.listUser('alice')).toHaveLength(1);
    await app.close();
    await expect(presence.list()).rejects.toThrow();
  });
});
