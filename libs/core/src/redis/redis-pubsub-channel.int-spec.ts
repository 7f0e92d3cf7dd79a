/**
 * RedisPubSubChannel against real Redis (REDIS_URL), for what the RedisFanout and
 * RedisSessionCommands int-specs do not cover: ping() as /readyz sees it, and a throwing
 * onRestored that must neither crash the process nor stop later restores. Channels are
 * unique per test and carry no keys.
 */
import { randomUUID } from 'node:crypto';

import { Redis } from 'ioredis';

import { RedisPubSubChannel } from './redis-pubsub-channel';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const UNREACHABLE_URL = 'redis://127.0.0.1:1';

interface Note {
  readonly n: number;
}
const isNote = (value: unknown): value is Note =>
  typeof (value as Partial<Note> | null)?.n === 'number';

let admin: Redis;
let opened: RedisPubSubChannel<Note>[] = [];
const logger = { warn: jest.fn(), error: jest.fn() };

function open(
  url = REDIS_URL,
  connectionName = `test-pubsub-${randomUUID()}`,
  onRestored?: () => void,
): RedisPubSubChannel<Note> {
  const channel = new RedisPubSubChannel<Note>({
    url,
    channel: `test:pubsub:${randomUUID()}`,
    connectionName,
    publishTimeoutMs: 200,
    isMessage: isNote,
    logger,
    ...(onRestored ? { onRestored } : {}),
  });
  opened.push(channel);
  return channel;
}

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

beforeEach(() => jest.clearAllMocks());

afterEach(async () => {
  await Promise.all(opened.map((c) => c.close()));
  opened = [];
});

afterAll(async () => {
  await admin.quit();
});

describe('RedisPubSubChannel.ping', () => {
  it('resolves for a publish-only channel and for a subscribed one', async () => {
    await expect(open().ping()).resolves.toBeUndefined();
    const subscribed = open();
    await subscribed.connect();
    await expect(subscribed.ping()).resolves.toBeUndefined();
  });

  it('rejects while the subscriber cannot reach Redis, naming that connection', async () => {
    const channel = open(UNREACHABLE_URL);
    channel.subscribe(() => undefined);
    await expect(channel.ping()).rejects.toThrow('subscriber connection');
  });

  it('rejects when the publisher cannot reach Redis', async () => {
    await expect(open(UNREACHABLE_URL).ping()).rejects.toThrow();
  });

  it('rejects once closed', async () => {
    const channel = open();
    await channel.ping();
    await channel.close();
    await expect(channel.ping()).rejects.toThrow('connection end');
  });
});

describe('RedisPubSubChannel.onRestored', () => {
  it('reports a throwing onRestored and still restores the subscription next time', async () => {
    const name = `test-pubsub-${randomUUID()}`;
    let restores = 0;
    const channel = open(REDIS_URL, name, () => {
      restores++;
      throw new Error('owner bug');
    });
    const got: Note[] = [];
    channel.subscribe((note) => got.push(note));
    await channel.ready;

    for (let round = 1; round <= 2; round++) {
      const line = String(await admin.client('LIST'))
        .split('\n')
        .find((l) => l.split(' ').includes(`name=${name}:sub`));
      await admin.client('KILL', 'ID', /(?:^|\s)id=(\d+)/.exec(line ?? '')?.[1] ?? '');
      while (restores < round) await new Promise((resolve) => setTimeout(resolve, 10));
      await channel.publish({ n: round });
      while (got.length < round) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(got).toEqual([{ n: 1 }, { n: 2 }]);
    expect(logger.error).toHaveBeenCalledTimes(2);
    expect(logger.error).toHaveBeenCalledWith('onRestored failed: owner bug');
  });
});
