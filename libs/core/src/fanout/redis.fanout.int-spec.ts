/**
 * RedisFanout against real Redis (REDIS_URL): events reach every instance, junk on the channel
 * is ignored, a killed subscriber connection comes back and says so, close() leaves nothing
 * open. Each test uses its own key prefix (hence channel) and connection names.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';

import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';

import { type FanoutEvent } from '../contracts/relay.contracts';
import { MAX_EVENTS_PER_PUBLISH, RedisFanout } from './redis.fanout';
import { deleteKeysWithPrefix } from '../../test/redis-test-keys';
import { eventually } from '../../test/eventually';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Every key and channel of this file starts with it; afterAll deletes the keys. */
const PREFIX = `test:fanout:${randomUUID()}:`;

let admin: Redis;
let opened: RedisFanout[] = [];
let testNo = 0;

function fanout(prefix: string, name = `test-fanout-${randomUUID()}`): RedisFanout {
  const f = new RedisFanout({ url: REDIS_URL, prefix, name });
  opened.push(f);
  return f;
}

function event(n: number, recipients = ['bob']): FanoutEvent {
  return {
    recipients,
    message: {
      msg_id: `m-${n}`,
      id: `c-${n}`,
      from: 'alice',
      to: 'bob',
      body: `hello ${n}`,
      ts: 1_700_000_000_000 + n,
      server_ts: 1_700_000_000_500 + n,
      sig: 'c2lnbmF0dXJl',
    },
  };
}

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

afterEach(async () => {
  await Promise.all(opened.map((f) => f.close()));
  opened = [];
});

afterAll(async () => {
  await deleteKeysWithPrefix(admin, PREFIX);
  await admin.quit();
});

describe('RedisFanout', () => {
  let prefix: string;
  beforeEach(() => {
    prefix = `${PREFIX}${++testNo}:`;
  });

  it('delivers an event published on one instance to the listeners of every instance', async () => {
    const [a, b] = [fanout(prefix), fanout(prefix)];
    const gotA: FanoutEvent[] = [];
    const gotB: FanoutEvent[] = [];
    a.subscribe((e) => gotA.push(e));
    b.subscribe((e) => gotB.push(e));
    await Promise.all([a.ready, b.ready]);

    await a.publish(event(1));
    await b.publish(event(2, ['carol', 'dave']));
    await eventually(() => gotA.length === 2 && gotB.length === 2);
    expect(gotA).toEqual([event(1), event(2, ['carol', 'dave'])]);
    expect(gotB).toEqual(gotA);
    expect(a.channel).toBe(`${prefix}fanout`);
  });

  it('keeps deployments with different prefixes apart', async () => {
    const [a, other] = [fanout(prefix), fanout(`${prefix}other:`)];
    const got: FanoutEvent[] = [];
    other.subscribe((e) => got.push(e));
    await other.connect();
    await a.publish(event(1));
    await other.publish(event(2));
    await eventually(() => got.length === 1);
    await sleep(50);
    expect(got).toEqual([event(2)]);
  });

  it('ignores malformed messages and isolates listener errors', async () => {
    const f = fanout(prefix);
    const got: FanoutEvent[] = [];
    const throwing = jest.fn(() => {
      throw new Error('listener bug');
    });
    f.subscribe(throwing);
    f.subscribe((e) => got.push(e));
    await f.ready;

    const channel = `${prefix}fanout`;
    for (const junk of [
      'not json',
      '',
      'null',
      '42',
      '{"recipients":"bob","message":{}}',
      JSON.stringify({ recipients: ['bob'] }),
      JSON.stringify({ ...event(9), message: { ...event(9).message, ts: '1' } }),
      JSON.stringify({ recipients: [1], message: event(9).message }),
    ]) {
      await admin.publish(channel, junk);
    }
    await f.publish(event(1));
    await eventually(() => got.length === 1);
    await f.publish(event(2));
    await eventually(() => got.length === 2);
    expect(got).toEqual([event(1), event(2)]);
    expect(throwing).toHaveBeenCalledTimes(2);
  });

  it('sends the events of one turn as one PUBLISH each of at most 256, in order', async () => {
    const f = fanout(prefix);
    const got: FanoutEvent[] = [];
    f.subscribe((e) => got.push(e));
    await f.ready;
    // A plain subscriber on the same channel counts the PUBLISHes themselves.
    const raw = new Redis(REDIS_URL);
    const messages: string[] = [];
    try {
      await raw.subscribe(`${prefix}fanout`);
      raw.on('message', (_channel: string, message: string) => messages.push(message));
      const count = MAX_EVENTS_PER_PUBLISH + 44;
      const events = Array.from({ length: count }, (_, i) => event(i));
      await Promise.all(events.map((e) => f.publish(e)));
      await eventually(() => got.length === count && messages.length === 2);
      expect(got).toEqual(events);
      expect(messages.map((m) => (JSON.parse(m) as unknown[]).length)).toEqual([
        MAX_EVENTS_PER_PUBLISH,
        44,
      ]);
      // A single event object, as earlier versions published it, is still understood.
      await admin.publish(`${prefix}fanout`, JSON.stringify(event(999)));
      await eventually(() => got.length === count + 1);
      expect(got.at(-1)).toEqual(event(999));
    } finally {
      await raw.quit();
    }
  });

  it('stops calling a listener once it is removed', async () => {
    const f = fanout(prefix);
    const kept: FanoutEvent[] = [];
    const removed: FanoutEvent[] = [];
    f.subscribe((e) => kept.push(e));
    const unsubscribe = f.subscribe((e) => removed.push(e));
    await f.ready;
    await f.publish(event(1));
    await eventually(() => kept.length === 1 && removed.length === 1);
    unsubscribe();
    await f.publish(event(2));
    await eventually(() => kept.length === 2);
    expect(removed).toHaveLength(1);
  });

  it('calls onReconnect each time the subscription is back after a lost connection, not at first', async () => {
    const name = `test-fanout-${randomUUID()}`;
    const f = fanout(prefix, name);
    const publisher = fanout(prefix);
    const got: FanoutEvent[] = [];
    let reconnects = 0;
    f.onReconnect(() => reconnects++);
    f.onReconnect(() => {
      throw new Error('listener bug'); // must not keep the others from running
    });
    f.subscribe((e) => got.push(e));
    await f.ready;
    await sleep(100);
    expect(reconnects).toBe(0);

    for (let round = 1; round <= 2; round++) {
      const ids = await clientIds(`${name}:sub`);
      expect(ids).toHaveLength(1);
      await admin.client('KILL', 'ID', ids[0] ?? '');
      await eventually(() => reconnects === round);
      // When onReconnect runs the subscription is active: a publish now is heard.
      await publisher.publish(event(round));
      await eventually(() => got.length === round);
    }
    expect(got).toEqual([event(1), event(2)]);
    expect(await clientIds(`${name}:sub`)).toHaveLength(1);
  });

  it('close() ends both connections, is idempotent, and refuses to publish afterwards', async () => {
    const name = `test-fanout-${randomUUID()}`;
    const f = new RedisFanout({ url: REDIS_URL, prefix, name });
    const got: FanoutEvent[] = [];
    f.subscribe((e) => got.push(e));
    await f.ready;
    await f.publish(event(1));
    await eventually(() => got.length === 1);
    expect(await clientIds(`${name}:pub`)).toHaveLength(1);
    expect(await clientIds(`${name}:sub`)).toHaveLength(1);

    await f.close();
    await f.close();
    expect(await clientIds(`${name}:pub`)).toHaveLength(0);
    expect(await clientIds(`${name}:sub`)).toHaveLength(0);
    await expect(f.publish(event(2))).rejects.toThrow('closed');
  });

  // The definitive open-handle check: a process whose only work was a RedisFanout must exit
  // on its own right after close(). An unref'd 150 ms timer reports anything that keeps it
  // alive longer (ioredis's own disconnect timer would, for 200 ms).
  it.each([
    ['after publishing and receiving', 'live'],
    ['while the subscriber is between reconnect attempts', 'killed'],
    ['before Redis was ever reached', 'unreachable'],
  ])(
    'close() %s leaves nothing that keeps the process alive',
    async (_when, scenario) => {
      const { code, output } = await runChild(scenario, `test-fanout-${randomUUID()}`, prefix);
      expect(output).toContain('closed');
      expect(output).not.toContain('alive after close');
      expect(code).toBe(0);
    },
    20_000,
  );

  it('rejects ready when closed before the subscription was ever active', async () => {
    const f = new RedisFanout({ url: 'redis://127.0.0.1:1', prefix });
    const ready = f.connect();
    await sleep(50);
    await f.close();
    await expect(ready).rejects.toThrow('closed');
    await expect(f.connect()).rejects.toThrow('closed');
  });

  it('opens no connection until it publishes or subscribes', async () => {
    const name = `test-fanout-${randomUUID()}`;
    const f = fanout(prefix, name);
    await sleep(50);
    expect(await clientIds(`${name}:pub`)).toHaveLength(0);
    expect(await clientIds(`${name}:sub`)).toHaveLength(0);
    expect(f.channel).toBe(`${prefix}fanout`);
  });
});

const ROOT = resolve(__dirname, '../../../..');

/** The child's script: plain JS, requiring the TypeScript source through @swc-node/register. */
const CHILD = `
const { Redis } = require('ioredis');
const { RedisFanout } = require('./libs/core/src/fanout/redis.fanout.ts');
const [scenario, name, prefix, url] = process.argv.slice(1);
(async () => {
  const f = new RedisFanout({ url: scenario === 'unreachable' ? 'redis://127.0.0.1:1' : url, prefix, name });
  if (scenario === 'unreachable') {
    f.connect().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
  } else {
    let got = 0;
    f.subscribe(() => got++);
    await f.ready;
    await f.publish({ recipients: ['bob'], message: { msg_id: 'm', id: 'c', from: 'alice', to: 'bob',
      body: 'x', ts: 1, server_ts: 2, sig: 's' } });
    while (got === 0) await new Promise((r) => setTimeout(r, 5));
  }
  if (scenario === 'killed') {
    const admin = new Redis(url);
    const list = String(await admin.client('LIST'));
    const line = list.split('\\n').find((l) => l.split(' ').includes('name=' + name + ':sub'));
    const id = line.split(' ').find((field) => field.startsWith('id=')).slice(3);
    await admin.client('KILL', 'ID', id);
    await admin.quit();
    await new Promise((r) => setTimeout(r, 20)); // the first retry waits 50-250 ms
  }
  await f.close();
  console.log('closed');
  setTimeout(() => console.log('alive after close', process.getActiveResourcesInfo()), 150).unref();
})().catch((error) => { console.log('failed', error.message); process.exitCode = 1; });
`;

async function runChild(
  scenario: string,
  name: string,
  prefix: string,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(
    process.execPath,
    ['-r', '@swc-node/register', '-e', CHILD, scenario, name, prefix, REDIS_URL],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  clearTimeout(timer);
  return { code, output };
}
