/**
 * docker-compose.yml's Redis ACL users against a real redis-server: a private one on a free
 * port (no persistence), started with exactly the `--user` arguments of the compose file. Each
 * service's Redis code — the real classes, not a list of commands — runs under its own user
 * and Redis denies none of it (ACL LOG stays empty); then what each user must not do is
 * refused. A command added to the code without its ACL rule fails here, not in a deployment.
 */
import 'reflect-metadata';

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { Controller, type INestMicroservice, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, type MicroserviceOptions, Payload } from '@nestjs/microservices';
import { Redis } from 'ioredis';

import { RedisLoginThrottleRepository } from '@securechat/auth';
import { RedisSendQuotaRepository } from '@securechat/relay';
import {
  type FanoutEvent,
  loadConfig,
  RedisFanout,
  RedisLoginSealReplayRepository,
  RedisPresenceRepository,
  RedisSessionCommands,
  RedisStreamsClient,
  RedisStreamsServer,
  request,
  type SessionCommand,
} from '@securechat/core';

import { composeRedisUserArgs, REDIS_ROLES, type RedisRole } from '../support/compose-redis';
import { PrivateRedis } from '../support/redis-server';
import { eventually } from '../../libs/core/test/eventually';

jest.setTimeout(60_000);

/** Not the default: the rules must follow SECURECHAT_REDIS_PREFIX. */
const PREFIX = 'acl-test.1:';
const PASSWORDS = Object.fromEntries(
  REDIS_ROLES.map((role) => [role, randomBytes(16).toString('hex')]),
) as Record<RedisRole, string>;
/** The test's own user, to read ACL LOG: not part of the compose file. */
const INSPECTOR = { user: 'acl-inspector', password: randomBytes(16).toString('hex') };

let redis: PrivateRedis;
let inspector: Redis;

function url(role: RedisRole | 'healthcheck', password?: string): string {
  const secret = password ?? (role === 'healthcheck' ? 'anything' : PASSWORDS[role]);
  return `redis://${role}:${secret}@127.0.0.1:${redis.port}`;
}

/** Denials Redis recorded, without the noise (the entries name command, key or channel). */
async function deniedSoFar(): Promise<string[]> {
  const log = (await inspector.call('ACL', 'LOG')) as unknown[][];
  return log.map((entry) => {
    const fields: Record<string, unknown> = {};
    for (let i = 0; i + 1 < entry.length; i += 2) fields[String(entry[i])] = entry[i + 1];
    return `${String(fields.username)}: ${String(fields.reason)} ${String(fields.object)}`;
  });
}

@Controller()
class EchoController {
  @MessagePattern('auth.echo')
  auth(@Payload() data: unknown): unknown {
    return data;
  }

  @MessagePattern('relay.echo')
  relay(@Payload() data: unknown): unknown {
    return data;
  }

  /** Slower than claimIdleMs / 2: the reclaim loop keeps it fresh (XCLAIM JUSTID). */
  @MessagePattern('relay.slow')
  async slow(@Payload() data: unknown): Promise<unknown> {
    await sleep(400);
    return data;
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

async function serve(role: 'auth' | 'relay'): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(EchoModule, {
    strategy: new RedisStreamsServer({
      url: url(role),
      service: role,
      prefix: PREFIX,
      claimIdleMs: 300,
    }),
    logger: ['error'],
  });
  await app.listen();
  return app;
}

beforeAll(async () => {
  redis = await PrivateRedis.start([
    ...composeRedisUserArgs(PASSWORDS, PREFIX),
    ...['--user', INSPECTOR.user, 'on', `>${INSPECTOR.password}`, '~*', '&*', '+@all'],
  ]);
  inspector = new Redis(url(INSPECTOR.user as RedisRole, INSPECTOR.password));
  jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
});

afterAll(async () => {
  inspector?.disconnect();
  await redis?.stop();
});

describe("each service's Redis code under its compose ACL user", () => {
  it('runs without a single denial', async () => {
    // auth and relay serve their request streams; a gateway calls both.
    const authApp = await serve('auth');
    const relayApp = await serve('relay');
    const client = new RedisStreamsClient({ url: url('gateway'), prefix: PREFIX });
    await client.connect();
    await expect(request(client, 'auth.echo', { n: 1 }, 5000)).resolves.toEqual({ n: 1 });
    await expect(request(client, 'relay.echo', { n: 2 }, 5000)).resolves.toEqual({ n: 2 });
    await expect(request(client, 'relay.slow', { n: 3 }, 5000)).resolves.toEqual({ n: 3 });
    await client.ping();

    // Fan-out: the relay publishes, a gateway hears.
    const heard: FanoutEvent[] = [];
    const gatewayFanout = new RedisFanout({ url: url('gateway'), prefix: PREFIX });
    const relayFanout = new RedisFanout({ url: url('relay'), prefix: PREFIX });
    gatewayFanout.subscribe((event) => heard.push(event));
    await gatewayFanout.connect();
    const event: FanoutEvent = {
      recipients: ['bob'],
      message: {
        msg_id: 'm1',
        id: 'c1',
        from: 'alice',
        to: 'bob',
        body: 'hi',
        ts: 1,
        server_ts: 2,
        sig: 'c2ln',
      },
    };
    await relayFanout.publish(event);
    await eventually(() => heard.length === 1, { what: 'fan-out event' });
    await Promise.all([gatewayFanout.ping(), relayFanout.ping()]);

    // Session control: auth (admin API) publishes, a gateway hears.
    const orders: SessionCommand[] = [];
    const gatewayOrders = new RedisSessionCommands({ url: url('gateway'), prefix: PREFIX });
    const authOrders = new RedisSessionCommands({ url: url('auth'), prefix: PREFIX });
    gatewayOrders.subscribe((command) => orders.push(command));
    await gatewayOrders.connect();
    await authOrders.publish({ kind: 'close-user', username: 'bob', reason: 'test' });
    await eventually(() => orders.length === 1, { what: 'session command' });
    await Promise.all([gatewayOrders.ping(), authOrders.ping()]);

    // Presence: gateways add, beat and remove; auth lists, and prunes a dead gateway's entries.
    const gatewayPresence = new RedisPresenceRepository({ url: url('gateway'), prefix: PREFIX });
    const deadPresence = new RedisPresenceRepository({
      url: url('gateway'),
      prefix: PREFIX,
      heartbeatTtlMs: 50,
    });
    const authPresence = new RedisPresenceRepository({ url: url('auth'), prefix: PREFIX });
    const entry = {
      sessionId: 's1',
      username: 'bob',
      gateway: 'gw-1',
      sourceAddress: '::1',
      since: 1,
    };
    await gatewayPresence.heartbeat('gw-1');
    await gatewayPresence.add(entry);
    await deadPresence.add({ ...entry, sessionId: 's2', gateway: 'gw-dead' });
    await sleep(120);
    expect(await authPresence.list()).toEqual([entry]);
    expect(await authPresence.listUser('bob')).toEqual([entry]);
    await gatewayPresence.remove('s1', 'bob');
    expect(await authPresence.list()).toEqual([]);
    await Promise.all([gatewayPresence.ping(), authPresence.ping()]);

    // Login throttling and the login seal's replay table: auth.
    const throttle = new RedisLoginThrottleRepository(loadConfig({}), {
      url: url('auth'),
      prefix: PREFIX,
    });
    const now = Date.now();
    expect(await throttle.attempt('bob', '192.0.2.1', now)).toBe(0);
    await throttle.recordFailure('bob', '192.0.2.1', now);
    expect(await throttle.blockedFor('bob', '192.0.2.1', now)).toBe(0);
    await throttle.refund('192.0.2.1');
    await throttle.recordSuccess('bob');
    await throttle.clear('bob');
    await throttle.ping();
    const replays = new RedisLoginSealReplayRepository({ url: url('auth'), prefix: PREFIX });
    const claim = { id: 'AAAAAAAAAAAAAAAAAAAAAA', delivery: '1-0', ttlMs: 1000, now };
    expect(await replays.claim(claim)).toBe(true);
    expect(await replays.claim(claim)).toBe(true);
    expect(await replays.claim({ ...claim, delivery: '2-0' })).toBe(false);
    await replays.ping();

    // Sending quotas: the relay, one script per run of sends.
    const quotas = new RedisSendQuotaRepository(loadConfig({}), {
      url: url('relay'),
      prefix: PREFIX,
    });
    expect(await quotas.charge('bob', [10, 10], now)).toEqual({ accepted: 2, retryAfter: 0 });
    await quotas.close();

    // Shutting down: QUIT, CLIENT UNBLOCK, XPENDING, XGROUP DELCONSUMER.
    await client.close();
    await Promise.all([authApp.close(), relayApp.close()]);
    await Promise.all(
      [gatewayFanout, relayFanout, gatewayOrders, authOrders].map((c) => c.close()),
    );
    await Promise.all(
      [gatewayPresence, deadPresence, authPresence, throttle, replays].map((c) => c.close()),
    );

    expect(await deniedSoFar()).toEqual([]);
  });
});

describe('what the ACL users must not do', () => {
  const connections: Redis[] = [];

  function as(role: RedisRole | 'healthcheck'): Redis {
    const connection = new Redis(url(role), { maxRetriesPerRequest: 0 });
    connections.push(connection);
    return connection;
  }

  afterAll(() => {
    for (const connection of connections) connection.disconnect();
  });

  /** Every one of `commands` is refused to `role` with NOPERM. */
  async function refused(role: RedisRole | 'healthcheck', commands: string[][]): Promise<void> {
    const connection = as(role);
    const allowed: string[] = [];
    for (const [name, ...args] of commands) {
      try {
        await connection.call(name!, ...args);
        allowed.push([name, ...args].join(' '));
      } catch (error) {
        if (!/NOPERM/.test((error as Error).message)) throw error;
      }
    }
    expect(allowed).toEqual([]);
  }

  const key = (name: string) => `${PREFIX}${name}`;
  const everyoneRefused = [
    ['KEYS', '*'],
    ['SCAN', '0'],
    ['FLUSHALL'],
    ['CONFIG', 'GET', '*'],
    ['ACL', 'LIST'],
    ['MONITOR'],
    ['SLOWLOG', 'GET'],
    ['CLIENT', 'LIST'],
    ['CLIENT', 'KILL', 'ID', '1'],
    ['GET', 'elsewhere:key'],
    ['XADD', 'elsewhere:req:auth', '*', 'p', 'x'],
  ];

  it('the default user is off: nothing without credentials', async () => {
    // A bare socket: ioredis would retry a connection whose ready check is refused.
    const socket = connect(redis.port, '127.0.0.1');
    await once(socket, 'connect');
    const replies: string[] = [];
    socket.on('data', (chunk: Buffer) => replies.push(...chunk.toString().split('\r\n')));
    socket.write('PING\r\nAUTH gateway wrong\r\nAUTH default x\r\nGET k\r\n');
    await eventually(() => replies.filter(Boolean).length >= 4, { what: 'four replies' });
    socket.destroy();
    expect(replies.filter(Boolean).map((line) => line.split(' ')[0])).toEqual([
      '-NOAUTH',
      '-WRONGPASS',
      '-WRONGPASS',
      '-NOAUTH',
    ]);
  });

  it('healthcheck: PING only', async () => {
    await expect(as('healthcheck').ping()).resolves.toBe('PONG');
    await refused('healthcheck', [['GET', key('x')], ['PUBLISH', key('fanout'), 'x'], ['INFO']]);
  });

  it('gateway: no PUBLISH (no forged replies, deliveries or orders), no reading requests', async () => {
    await refused('gateway', [
      ...everyoneRefused,
      ['PUBLISH', key('reply:someone'), '{"i":"0","response":{"ok":true}}'],
      ['PUBLISH', key('fanout'), '[]'],
      ['PUBLISH', key('session-control'), '{}'],
      ['XRANGE', key('req:auth'), '-', '+'],
      ['XREADGROUP', 'GROUP', 'auth', 'x', 'STREAMS', key('req:auth'), '>'],
      ['XDEL', key('req:auth'), '0-1'],
      ['DEL', key('req:auth')],
      ['HGETALL', key('throttle:u:alice')],
      ['DEL', key('throttle:u:alice')],
      ['SET', key('login-seal:x'), '1'],
      ['SUBSCRIBE', 'elsewhere:fanout'],
    ]);
  });

  it('relay: nothing of auth’s (throttle, seal ids, presence) and no session control', async () => {
    await refused('relay', [
      ...everyoneRefused,
      ['HGETALL', key('throttle:u:alice')],
      ['SET', key('login-seal:x'), '1'],
      ['SMEMBERS', key('presence-users')],
      ['PUBLISH', key('session-control'), '{}'],
      ['XADD', key('req:auth'), '*', 'p', 'auth.login'],
      ['XREADGROUP', 'GROUP', 'auth', 'x', 'STREAMS', key('req:auth'), '>'],
      ['SUBSCRIBE', key('session-control')],
    ]);
  });

  it('auth: not the relay’s stream or fan-out', async () => {
    await refused('auth', [
      ...everyoneRefused,
      ['PUBLISH', key('fanout'), '[]'],
      ['XREADGROUP', 'GROUP', 'relay', 'x', 'STREAMS', key('req:relay'), '>'],
      ['XADD', key('req:relay'), '*', 'p', 'relay.send'],
      ['HGETALL', key('quota:alice')],
    ]);
  });
});
