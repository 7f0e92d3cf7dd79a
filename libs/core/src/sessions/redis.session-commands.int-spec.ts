/**
 * RedisSessionCommands against real Redis (REDIS_URL): a command published by one instance
 * (the admin's) reaches the listeners of every instance (the gateways), junk on the channel is
 * ignored, a killed subscriber connection comes back, close() leaves nothing open. Then
 * SessionControlService over Redis presence and this channel, as the auth process wires it.
 */
import { randomUUID } from 'node:crypto';

import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';

import { RedisPresenceRepository } from './redis-presence.repository';
import { RedisSessionCommands } from './redis.session-commands';
import { type SessionCommand } from './session-command.port';
import { SessionControlService } from './session-control.service';
import { deleteKeysWithPrefix } from '../../test/redis-test-keys';
import { eventually } from '../../test/eventually';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key and channel of this file starts with it; afterAll deletes the keys. */
const PREFIX = `test:session-control:${randomUUID()}:`;

let admin: Redis;
let opened: { close(): Promise<void> }[] = [];
let testNo = 0;
let prefix: string;

function channel(name = `test-sc-${randomUUID()}`, at = prefix): RedisSessionCommands {
  const c = new RedisSessionCommands({ url: REDIS_URL, prefix: at, name });
  opened.push(c);
  return c;
}

const closeUser = (username: string, reason = 'r'): SessionCommand => ({
  kind: 'close-user',
  username,
  reason,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Redis's ids of the connections named `name` (CLIENT LIST). */
async function clientIds(name: string): Promise<string[]> {
  const list = String(await admin.client('LIST'));
  return list
    .split('\n')
    .filter((line) => line.split(' ').includes(`name=${name}`))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? '');
}

beforeAll(() => {
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  admin = new Redis(REDIS_URL);
});

beforeEach(() => {
  prefix = `${PREFIX}${++testNo}:`;
});

afterEach(async () => {
  await Promise.all(opened.map((c) => c.close()));
  opened = [];
});

afterAll(async () => {
  await deleteKeysWithPrefix(admin, PREFIX);
  await admin.quit();
});

describe('RedisSessionCommands', () => {
  it('delivers a command published on one instance to the listeners of every instance', async () => {
    const [gatewayA, gatewayB, control] = [channel(), channel(), channel()];
    const a: SessionCommand[] = [];
    const b: SessionCommand[] = [];
    gatewayA.subscribe((c) => a.push(c));
    gatewayB.subscribe((c) => b.push(c));
    await Promise.all([gatewayA.connect(), gatewayB.connect()]);
    const closeOne: SessionCommand = { kind: 'close-session', sessionId: 's-1', reason: 'audit' };
    await control.publish(closeUser('alice', 'policy'));
    await control.publish(closeOne);
    await eventually(() => a.length === 2 && b.length === 2);
    expect(a).toEqual([closeUser('alice', 'policy'), closeOne]);
    expect(b).toEqual(a);
    expect(control.channel).toBe(`${prefix}session-control`);
  });

  it('keeps deployments with different prefixes apart', async () => {
    const mine = channel();
    const other = channel(undefined, `${prefix}other:`);
    const got: SessionCommand[] = [];
    mine.subscribe((c) => got.push(c));
    await mine.connect();
    await other.publish(closeUser('alice'));
    await mine.publish(closeUser('bob'));
    await eventually(() => got.length === 1);
    await sleep(50);
    expect(got).toEqual([closeUser('bob')]);
  });

  it('ignores malformed messages and isolates listener errors', async () => {
    const gateway = channel();
    const got: SessionCommand[] = [];
    gateway.subscribe(() => {
      throw new Error('listener bug');
    });
    gateway.subscribe((c) => got.push(c));
    await gateway.connect();
    const junk = [
      'not json',
      '[]',
      JSON.stringify({ kind: 'close-user', username: 'alice' }), // no reason
      JSON.stringify({ kind: 'close-session', username: 'alice', reason: 'r' }),
      JSON.stringify({ kind: 'drop-table', reason: 'r' }),
    ];
    for (const message of junk) await admin.publish(gateway.channel, message);
    await admin.publish(gateway.channel, JSON.stringify(closeUser('carol')));
    await eventually(() => got.length === 1);
    expect(got).toEqual([closeUser('carol')]);
  });

  it('hears commands again once a killed subscriber connection is back', async () => {
    const name = `test-sc-${randomUUID()}`;
    const gateway = channel(name);
    const control = channel();
    const got: SessionCommand[] = [];
    gateway.subscribe((c) => got.push(c));
    await gateway.connect();
    const [id] = await clientIds(`${name}:sub`);
    await admin.client('KILL', 'ID', id ?? '');
    // Publish until one arrives: whatever was sent while it was away is lost (at most once).
    let n = 0;
    while (got.length === 0) {
      await control.publish(closeUser(`user${n++}`));
      await sleep(50);
      if (n > 100) throw new Error('never resubscribed');
    }
    expect(await clientIds(`${name}:sub`)).toHaveLength(1);
  });

  it('close() ends both connections, is idempotent, and refuses to publish afterwards', async () => {
    const name = `test-sc-${randomUUID()}`;
    const c = new RedisSessionCommands({ url: REDIS_URL, prefix, name });
    const got: SessionCommand[] = [];
    c.subscribe((command) => got.push(command));
    await c.connect();
    await c.publish(closeUser('alice'));
    await eventually(() => got.length === 1);
    expect(await clientIds(`${name}:pub`)).toHaveLength(1);
    expect(await clientIds(`${name}:sub`)).toHaveLength(1);
    await c.close();
    await c.close();
    expect(await clientIds(`${name}:pub`)).toHaveLength(0);
    expect(await clientIds(`${name}:sub`)).toHaveLength(0);
    await expect(c.publish(closeUser('bob'))).rejects.toThrow('closed');
  });

  it('rejects connect when closed before the subscription was ever active', async () => {
    const c = new RedisSessionCommands({ url: 'redis://127.0.0.1:1', prefix });
    const ready = c.connect();
    await sleep(50);
    await c.close();
    await expect(ready).rejects.toThrow('closed');
    await expect(c.connect()).rejects.toThrow('closed');
  });

  it('opens no connection until it publishes or subscribes', async () => {
    const name = `test-sc-${randomUUID()}`;
    channel(name);
    await sleep(50);
    expect(await clientIds(`${name}:pub`)).toHaveLength(0);
    expect(await clientIds(`${name}:sub`)).toHaveLength(0);
  });
});

describe('SessionControlService over Redis', () => {
  it('counts from shared presence and reaches the gateways over the channel', async () => {
    const presence = new RedisPresenceRepository({ url: REDIS_URL, prefix });
    const gatewayPresence = new RedisPresenceRepository({ url: REDIS_URL, prefix });
    opened.push(presence, gatewayPresence);
    const gateway = channel();
    const got: SessionCommand[] = [];
    gateway.subscribe((c) => got.push(c));
    await gateway.connect();
    const since = Date.UTC(2025, 0, 1);
    for (const [sessionId, username] of [
      ['s-1', 'alice'],
      ['s-2', 'alice'],
      ['s-3', 'bob'],
    ] as const) {
      await gatewayPresence.add({
        sessionId,
        username,
        gateway: 'gw-a',
        sourceAddress: '192.0.2.1',
        since,
      });
    }
    const control = new SessionControlService(presence, channel());
    expect(await control.list()).toHaveLength(3);
    expect(await control.closeUser('alice', 'policy')).toBe(2);
    expect(await control.closeSession('s-3', 'audit')).toBe(1);
    expect(await control.closeSession('s-9', 'audit')).toBe(0);
    await eventually(() => got.length === 3);
    expect(got).toEqual([
      closeUser('alice', 'policy'),
      { kind: 'close-session', sessionId: 's-3', reason: 'audit' },
      { kind: 'close-session', sessionId: 's-9', reason: 'audit' },
    ]);
  });
});
