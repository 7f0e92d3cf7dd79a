/**
 * The distributed deployment on a Redis set up as docker-compose.yml sets it up: the compose
 * file's ACL users (each process logs in as its own), the default user off, and an
 * append-only file written on every command. Users register, log in, fail a login and chat;
 * then the test looks where a password would have gone before the login seal — every command
 * Redis ran (MONITOR) and every file in its directory — and finds none, finds no command any
 * service was refused, and finds that a login command copied out of Redis and sent again is
 * refused.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis } from 'ioredis';

import { composeRedisUserArgs, REDIS_ROLES, type RedisRole } from '../support/compose-redis';
import { Cluster } from '../support/distributed-cluster';
import { TestClient } from '../support/protocol-client';
import { PrivateRedis } from '../support/redis-server';
import { CHAT_SUITE_ENV } from './chat-suite';

jest.setTimeout(120_000);

const PREFIX = `sch${randomBytes(3).toString('hex')}:`;
const PASSWORDS = Object.fromEntries(
  REDIS_ROLES.map((role) => [role, randomBytes(16).toString('hex')]),
) as Record<RedisRole, string>;
/** The test's own all-powerful user (MONITOR, ACL LOG, clean-up): not in the compose file. */
const INSPECTOR = { user: 'inspector', password: randomBytes(16).toString('hex') };
/** What must never reach Redis: distinctive, so that a match cannot be a coincidence. */
const USER_PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString('hex')}`;

/** Every form a password could take in a command or a file. */
function forms(password: string): string[] {
  return [
    password,
    Buffer.from(password).toString('base64'),
    Buffer.from(password).toString('hex'),
    JSON.stringify(password),
  ];
}

/** Every file under `dir`, recursively (Redis 7 keeps its AOF in appendonlydir/). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('Redis as docker-compose.yml runs it', () => {
  let redis: PrivateRedis;
  let inspector: Redis;
  let monitor: Awaited<ReturnType<Redis['monitor']>>;
  const commands: string[][] = [];
  let cluster: Cluster;

  const url = (user: string, password: string) =>
    `redis://${user}:${password}@127.0.0.1:${redis.port}`;

  beforeAll(async () => {
    redis = await PrivateRedis.start([
      ...['--appendonly', 'yes', '--appendfsync', 'always'],
      ...composeRedisUserArgs(PASSWORDS, PREFIX),
      ...['--user', INSPECTOR.user, 'on', `>${INSPECTOR.password}`, '~*', '&*', '+@all'],
    ]);
    inspector = new Redis(url(INSPECTOR.user, INSPECTOR.password));
    monitor = await inspector.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
    cluster = await Cluster.start({
      env: { ...CHAT_SUITE_ENV, SECURECHAT_REDIS_PREFIX: PREFIX },
      // The inspector for the cluster's own clean-up; every process as its compose user.
      redisUrl: url(INSPECTOR.user, INSPECTOR.password),
      redisUrls: {
        auth: url('auth', PASSWORDS.auth),
        relay: url('relay', PASSWORDS.relay),
        gateway: url('gateway', PASSWORDS.gateway),
      },
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    monitor?.disconnect();
    inspector?.disconnect();
    await redis?.stop();
  });

  it('never holds a password, refuses a replayed login, and denies no service anything', async () => {
    const gateway = cluster.gateways[0]!;
    const key = generateKeyPairSync('ed25519').privateKey;
    const connect = (username: string, password: string, action: 'login' | 'register') =>
      TestClient.connect({
        port: gateway.port,
        username,
        password,
        key,
        action,
        fingerprint: gateway.fingerprint,
      });
    await (await connect('hank', USER_PASSWORD, 'register')).close();
    const hank = await connect('hank', USER_PASSWORD, 'login');
    await (await connect('ida', USER_PASSWORD, 'register')).close();
    const ack = await hank.sendAndAck('ida', 'sealed logins only');
    expect(ack.type).toBe('ack');
    await hank.close();
    await expect(connect('hank', WRONG_PASSWORD, 'login')).rejects.toThrow(/auth_failed/);

    // A login command as it sat in the stream, sent again by someone who can write to Redis
    // (with the gateway's own credentials, even): auth refuses it.
    const logins = commands.filter(
      (args) => args[0]?.toLowerCase() === 'xadd' && args.includes('auth.login'),
    );
    expect(logins.length).toBeGreaterThanOrEqual(4);
    const fields = logins[1]!.slice(logins[1]!.indexOf('*') + 1);
    const envelope = fields[fields.indexOf('d') + 1]!;
    const attacker = new Redis(url('gateway', PASSWORDS.gateway));
    const listener = attacker.duplicate();
    const channel = `${PREFIX}reply:replayer`;
    const replies: string[] = [];
    listener.on('message', (_channel: string, message: string) => replies.push(message));
    await listener.subscribe(channel);
    await attacker.xadd(
      `${PREFIX}req:auth`,
      '*',
      'p',
      'auth.login',
      'd',
      envelope,
      'r',
      channel,
      'i',
      'x',
    );
    for (let i = 0; i < 200 && replies.length === 0; i++) await sleep(10);
    attacker.disconnect();
    listener.disconnect();
    expect(replies.map((reply) => JSON.parse(reply) as unknown)).toEqual([
      { i: 'x', response: { ok: false, code: 'bad_request' } },
    ]);

    // Nothing Redis ran carried a password, and nothing it wrote holds one.
    const secrets = [...forms(USER_PASSWORD), ...forms(WRONG_PASSWORD)];
    const ran = commands.map((args) => args.join(' '));
    expect(ran.filter((line) => secrets.some((secret) => line.includes(secret)))).toEqual([]);
    await inspector.call('BGREWRITEAOF').catch(() => undefined);
    await sleep(500);
    const files = filesUnder(redis.directory);
    expect(files.some((file) => file.includes('appendonly'))).toBe(true);
    const holding = files.filter((file) => {
      const content = readFileSync(file).toString('latin1');
      return secrets.some((secret) => content.includes(secret));
    });
    expect(holding).toEqual([]);

    // And every command of every service was allowed by its user.
    const denied = (await inspector.call('ACL', 'LOG')) as unknown[];
    expect(denied).toEqual([]);
  });
});
