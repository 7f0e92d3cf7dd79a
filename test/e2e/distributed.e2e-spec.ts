/**
 * The distributed deployment (two auth, two relay and two gateway processes on PostgreSQL and
 * Redis): first the whole chat suite through one gateway, then what only a cluster can show.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

import { Client } from 'pg';

import { type Ack, type ServerMessage } from '@securechat/protocol';

import { Cluster } from '../support/distributed-cluster';
import { TestClient } from '../support/protocol-client';
import { CHAT_SUITE_ENV, defineChatSuite } from './chat-suite';

jest.setTimeout(120_000);

describe('chat suite on the cluster', () => {
  defineChatSuite(async (env) => {
    const cluster = await Cluster.start({ auth: 2, relay: 2, gateway: 2, env });
    const gateway = cluster.gateways[0]!;
    return {
      port: gateway.port,
      fingerprint: gateway.fingerprint,
      output: () => cluster.processes.map((p) => p.output()).join('\n'),
      stop: () => cluster.stop(),
    };
  });
});

describe('across gateways and instances', () => {
  const PASSWORD = 'correct horse battery staple';
  const keys: Record<string, KeyObject> = {};
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.start({ auth: 2, relay: 2, gateway: 2, env: CHAT_SUITE_ENV });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  function connect(username: string, gateway: number, action: 'login' | 'register' = 'login') {
    keys[username] ??= generateKeyPairSync('ed25519').privateKey;
    const target = cluster.gateways[gateway]!;
    return TestClient.connect({
      port: target.port,
      username,
      password: PASSWORD,
      key: keys[username],
      action,
      fingerprint: target.fingerprint,
    });
  }

  /** The acks for `ids`, in arrival order, once all are in; taken out of the inbox. */
  async function arrived(client: TestClient, ids: string[]): Promise<Ack[]> {
    const wanted = new Set(ids);
    const isOurs = (m: ServerMessage): m is Ack => m.type === 'ack' && wanted.has(m.id);
    for (let i = 0; i < 1000 && client.inbox.filter(isOurs).length < ids.length; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const acks = client.inbox.filter(isOurs);
    for (const ack of acks) client.inbox.splice(client.inbox.indexOf(ack), 1);
    return acks;
  }

  it('gateways share one identity key', () => {
    const [first, second] = cluster.gateways;
    expect(first!.fingerprint).toBe(second!.fingerprint);
    expect(first!.port).not.toBe(second!.port);
  });

  it('delivers between users on different gateways, and to one user on both', async () => {
    await (await connect('xalice', 0, 'register')).close();
    await (await connect('xbob', 1, 'register')).close();
    const alice = await connect('xalice', 0);
    const bobHere = await connect('xbob', 1);
    const bobThere = await connect('xbob', 0);
    const ack = await alice.sendAndAck('xbob', 'across the cluster');
    expect(ack.type).toBe('ack');
    expect((await bobHere.receive()).body).toBe('across the cluster');
    expect((await bobThere.receive()).body).toBe('across the cluster');
    await Promise.all([alice.close(), bobHere.close(), bobThere.close()]);
  });

  it('handles each request once with two relays and two auth instances', async () => {
    await (await connect('yalice', 0, 'register')).close();
    await (await connect('ybob', 1, 'register')).close();
    const alice = await connect('yalice', 0);
    const bob = await connect('ybob', 1);
    const ids = Array.from({ length: 200 }, (_, i) => `once-${i}`);
    for (const id of ids) alice.sendMessage('ybob', `n ${id}`, id); // pipelined
    const acks = await Promise.all(ids.map((id) => alice.next('ack', (a) => a.id === id)));
    expect(new Set(acks.map((a) => a.msg_id)).size).toBe(200);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add((await bob.receive()).msg_id);
    expect(seen.size).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(bob.inbox.filter((m) => m.type === 'deliver')).toHaveLength(0); // no second copy

    const db = new Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    const { rows } = await db.query<{ n: number }>(
      "select count(*)::int as n from messages where sender = 'yalice'",
    );
    await db.end();
    expect(rows[0]!.n).toBe(200);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('stores 32 pipelined sends in client order and acks them in order, with two relays', async () => {
    await (await connect('zalice', 0, 'register')).close();
    await (await connect('zbob', 1, 'register')).close();
    const alice = await connect('zalice', 0);
    const bob = await connect('zbob', 1);
    for (let round = 0; round < 5; round++) {
      const ids = Array.from({ length: 32 }, (_, i) => `r${round}-${String(i).padStart(2, '0')}`);
      for (const id of ids) alice.sendMessage('zbob', `ordered ${id}`, id); // 32 in flight
      // Nobody waits on them, so the inbox keeps the acks in the order they arrived.
      const answers = await arrived(alice, ids);
      expect(answers.map((a) => a.id)).toEqual(ids);
      // Stored in client order: msg_ids grow in send order, and bob receives them so.
      const msgIds = answers.map((a) => BigInt(a.msg_id));
      expect([...msgIds].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(msgIds);
      const received: string[] = [];
      for (let i = 0; i < ids.length; i++) received.push((await bob.receive()).id);
      expect(received).toEqual(ids);
    }
    await Promise.all([alice.close(), bob.close()]);
  });
});
