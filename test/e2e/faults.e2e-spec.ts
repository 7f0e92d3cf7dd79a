/**
 * Faults in the distributed deployment, each reported as counts of acked and arrived messages:
 * a relay killed with 1,000 messages in flight, Redis restarted mid-stream, PostgreSQL
 * unreachable, a gateway killed. "Arrived" counts distinct msg_ids at the recipient over live
 * delivery plus the redelivery at its next login (PROTOCOL.md §6: at least once, deduplicated by
 * msg_id).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

import { Client } from 'pg';

import { Cluster } from '../support/distributed-cluster';
import { TestClient } from '../support/protocol-client';
import { PrivateRedis } from '../support/redis-server';

jest.setTimeout(240_000);

const PASSWORD = 'correct horse battery staple';
const ENV = { ALLOW_REGISTRATION: 'true' };

class Users {
  readonly keys: Record<string, KeyObject> = {};
  constructor(private readonly cluster: Cluster) {}

  connect(username: string, gateway = 0, action: 'login' | 'register' = 'login') {
    this.keys[username] ??= generateKeyPairSync('ed25519').privateKey;
    const target = this.cluster.gateways[gateway]!;
    return TestClient.connect({
      port: target.port,
      username,
      password: PASSWORD,
      key: this.keys[username],
      action,
      fingerprint: target.fingerprint,
    });
  }

  async register(...names: string[]): Promise<void> {
    for (const name of names) await (await this.connect(name, 0, 'register')).close();
  }
}

/**
 * Sends `count` messages, `window` at a time pipelined, and resends (same id, same signature)
 * any that failed until each is acked.
 */
async function sendAll(
  sender: TestClient,
  to: string,
  prefix: string,
  count: number,
  options: { window?: number; onProgress?: (acked: number) => void } = {},
) {
  const ts = Date.now();
  const window = options.window ?? count;
  const acked = new Map<string, string>();
  let failures = 0;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  for (let start = 0; start < ids.length; start += window) {
    let pending = ids.slice(start, start + window);
    for (let round = 0; pending.length > 0; round++) {
      if (round >= 20) throw new Error(`${pending.length} messages never acked`);
      if (round > 0) await new Promise((r) => setTimeout(r, 500));
      for (const id of pending) sender.sendMessage(to, `body of ${id}`, id, ts);
      const answers = await Promise.all(
        pending.map((id) =>
          sender.nextWhere(
            (m): m is Extract<typeof m, { type: 'ack' | 'error' }> =>
              (m.type === 'ack' || m.type === 'error') && m.id === id,
            `an answer to ${id}`,
            60_000,
          ),
        ),
      );
      pending = [];
      for (const answer of answers) {
        if (answer.type === 'ack') {
          acked.set(answer.id, answer.msg_id);
          options.onProgress?.(acked.size);
        } else {
          failures += 1;
          pending.push(answer.id!);
        }
      }
    }
  }
  return { acked, failures };
}

/** Collects distinct msg_ids: live deliveries on `live`, then whatever a new login brings. */
async function arrivedAt(
  users: Users,
  live: TestClient,
  username: string,
  expected: number,
  gateway = 0,
) {
  const seen = new Set<string>();
  let copies = 0;
  const drain = (client: TestClient) => {
    for (const m of client.inbox.splice(0)) {
      if (m.type === 'deliver') {
        copies += 1;
        seen.add(m.msg_id);
        client.write({ type: 'delivered', msg_id: m.msg_id });
      }
    }
  };
  await new Promise((r) => setTimeout(r, 500));
  drain(live);
  live.destroy();
  // After an outage the services may still be reconnecting: a login may fail for a while.
  let again: TestClient | undefined;
  for (let attempt = 0; !again; attempt++) {
    try {
      again = await users.connect(username, gateway);
    } catch (error) {
      if (attempt >= 30) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const deadline = Date.now() + 30_000;
  while (seen.size < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    drain(again);
  }
  await again.close();
  return { arrived: seen, duplicatesDropped: copies - seen.size };
}

async function storedCount(cluster: Cluster, sender: string): Promise<number> {
  const db = new Client({ connectionString: cluster.databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ n: number }>(
      'select count(*)::int as n from messages where sender = $1',
      [sender],
    );
    return rows[0]!.n;
  } finally {
    await db.end();
  }
}

/** On failure, what the processes said: the only way to see inside them. */
function dumpOutputs(cluster: Cluster): void {
  for (const p of cluster.processes) {
    process.stdout.write(`----- ${p.name}\n${p.output().split('\n').slice(-40).join('\n')}\n`);
  }
}

function report(what: string, numbers: Record<string, number>): void {
  process.stdout.write(
    `[fault] ${what}: ${Object.entries(numbers)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
}

it('kill -9 a relay with 1,000 messages in flight: every acked message arrives, stored once', async () => {
  const cluster = await Cluster.start({ auth: 1, relay: 2, gateway: 1, env: ENV });
  try {
    const users = new Users(cluster);
    await users.register('ksender', 'krecipient');
    const sender = await users.connect('ksender');
    const recipient = await users.connect('krecipient');
    const victim = cluster.of('relay')[0]!;
    let killed = false;
    let restarted: Promise<unknown> = Promise.resolve();
    const result = await sendAll(sender, 'krecipient', 'k', 1000, {
      onProgress: (acked) => {
        if (!killed && acked >= 50) {
          killed = true;
          restarted = victim.stop('SIGKILL').then(() => cluster.add('relay'));
        }
      },
    });
    await restarted;
    expect(killed).toBe(true);
    expect(result.acked.size).toBe(1000);
    const { arrived, duplicatesDropped } = await arrivedAt(users, recipient, 'krecipient', 1000);
    report('relay kill -9', {
      acked: result.acked.size,
      arrived: arrived.size,
      duplicatesDropped,
      errorsRetried: result.failures,
    });
    for (const msgId of result.acked.values()) expect(arrived.has(msgId)).toBe(true);
    expect(await storedCount(cluster, 'ksender')).toBe(1000);
    await sender.close();
  } catch (error) {
    dumpOutputs(cluster);
    throw error;
  } finally {
    await cluster.stop();
  }
});

it('restart Redis mid-stream: no acked message lost', async () => {
  const redis = await PrivateRedis.start();
  const cluster = await Cluster.start({
    auth: 1,
    relay: 1,
    gateway: 1,
    env: ENV,
    redisUrl: redis.url,
  });
  try {
    const users = new Users(cluster);
    await users.register('rsender', 'rrecipient');
    const sender = await users.connect('rsender');
    const recipient = await users.connect('rrecipient');
    let restart: Promise<void> | undefined;
    const result = await sendAll(sender, 'rrecipient', 'r', 500, {
      window: 10,
      onProgress: (acked) => {
        if (!restart && acked >= 100) {
          restart = redis
            .down()
            .then(() => new Promise((r) => setTimeout(r, 1000)))
            .then(() => redis.up());
        }
      },
    });
    expect(restart).toBeDefined();
    await restart;
    expect(result.acked.size).toBe(500);
    const { arrived, duplicatesDropped } = await arrivedAt(users, recipient, 'rrecipient', 500);
    report('Redis restart', {
      acked: result.acked.size,
      arrived: arrived.size,
      duplicatesDropped,
      errorsRetried: result.failures,
    });
    for (const msgId of result.acked.values()) expect(arrived.has(msgId)).toBe(true);
    expect(await storedCount(cluster, 'rsender')).toBe(500);
    await sender.close();
  } catch (error) {
    dumpOutputs(cluster);
    throw error;
  } finally {
    await cluster.stop();
    await redis.stop();
  }
});

it('PostgreSQL unreachable: sends get an error, never a false ack, and service resumes', async () => {
  const cluster = await Cluster.start({
    auth: 1,
    relay: 1,
    gateway: 1,
    env: ENV,
    proxyDatabase: true,
  });
  try {
    const users = new Users(cluster);
    await users.register('psender', 'precipient');
    const sender = await users.connect('psender');
    expect((await sender.sendAndAck('precipient', 'before')).type).toBe('ack');

    cluster.databaseProxy!.cut();
    const during = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        sender.sendAndAck('precipient', `during ${i}`, `during-${i}`, 30_000),
      ),
    );
    const falseAcks = during.filter((a) => a.type === 'ack').length;
    expect(during.every((a) => a.type === 'error' && a.code === 'internal')).toBe(true);

    cluster.databaseProxy!.restore();
    let after: Awaited<ReturnType<TestClient['sendAndAck']>> | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      after = await sender.sendAndAck('precipient', 'after', `after-${attempt}`);
      if (after.type === 'ack') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(after?.type).toBe('ack');
    const stored = await storedCount(cluster, 'psender');
    report('PostgreSQL unreachable', {
      sentDuringOutage: 20,
      falseAcks,
      errors: during.length - falseAcks,
      storedAfter: stored,
    });
    expect(stored).toBe(2); // "before" and "after": nothing from the outage
    await sender.close();
  } catch (error) {
    dumpOutputs(cluster);
    throw error;
  } finally {
    await cluster.stop();
  }
});

it('a gateway killed: its users reconnect to another and get everything pending', async () => {
  const cluster = await Cluster.start({ auth: 1, relay: 1, gateway: 2, env: ENV });
  try {
    const users = new Users(cluster);
    await users.register('gsender', 'grecipient');
    const sender = await users.connect('gsender', 1);
    const recipient = await users.connect('grecipient', 0);
    const acked: string[] = [];
    for (let i = 0; i < 50; i++) {
      const ack = await sender.sendAndAck('grecipient', `g ${i}`);
      if (ack.type === 'ack') acked.push(ack.msg_id);
    }
    // the recipient saw some live, acknowledged none; then its gateway dies
    await new Promise((r) => setTimeout(r, 300));
    const liveBeforeKill = recipient.inbox.filter((m) => m.type === 'deliver').length;
    await cluster.gateways[0]!.process.stop('SIGKILL');
    await recipient.closed;

    const again = await users.connect('grecipient', 0); // index 0 is now the surviving gateway
    const arrived: string[] = [];
    while (arrived.length < acked.length) arrived.push((await again.receive()).msg_id);
    report('gateway kill -9', {
      acked: acked.length,
      deliveredLiveBeforeKill: liveBeforeKill,
      arrivedAfterReconnect: arrived.length,
    });
    expect(arrived).toEqual(acked);
    await Promise.all([again.close(), sender.close()]);
  } catch (error) {
    dumpOutputs(cluster);
    throw error;
  } finally {
    await cluster.stop();
  }
});
