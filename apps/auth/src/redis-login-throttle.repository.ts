import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type FactoryProvider,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  closeConnection,
  CONFIG,
  DISCONNECT_TIMEOUT_MS,
  pingConnection,
  type RedisEndpoint,
  redisProvider,
  reportOutagesOnce,
  type SecureChatConfig,
} from '@securechat/core';
import { Redis } from 'ioredis';

import { LoginThrottleRepository } from './login-throttle.repository';

/** Nest token for RedisLoginThrottleOptions (see `RedisLoginThrottleRepository.provider`). */
export const REDIS_LOGIN_THROTTLE_OPTIONS = Symbol('RedisLoginThrottleOptions');

/**
 * Where the counters live. With `url` the repository opens its own connection and closes it
 * at shutdown; with `redis` it borrows the caller's client and leaves it open. Without
 * options (like MemoryLoginThrottleRepository) it connects to config.redisUrl.
 */
export type RedisLoginThrottleOptions = (
  | { readonly url: string; readonly redis?: undefined }
  | { readonly redis: Redis; readonly url?: undefined }
) & {
  /** Prepended to every key, so that deployments can share one Redis. Default config.redisPrefix. */
  readonly prefix?: string;
};

/** The same retention as MemoryLoginThrottleRepository: a username idle for a day starts afresh. */
const USERNAME_RETENTION_MS = 24 * 60 * 60 * 1000;

/** 2^31 s is far beyond any maxDelay; capping the exponent keeps the arithmetic finite. */
const MAX_EXPONENT = 31;
const MAX_EXPONENT_LUA = String(MAX_EXPONENT);

/**
 * One failure for each key in KEYS (1 or 2), atomically: concurrent auth instances never lose
 * an increment. ARGV[1] is `now` (ms, as a decimal string), ARGV[1 + i] the retention of
 * KEYS[i]. An entry idle longer than its retention by the caller's clock is counted afresh,
 * exactly as the memory table forgets it on lookup; PEXPIRE removes it from Redis once
 * nothing refers to it. `last` is stored as the caller's string (ARGV[1]): Lua would print a
 * number of that size in exponent notation. COUNT_FAILURE_LUA is that count for one key,
 * shared with ATTEMPT_LUA.
 */
const COUNT_FAILURE_LUA = `
local function count_failure(key, now, retention)
  local last = redis.call('HGET', key, 'last')
  if last and now - tonumber(last) > retention then
    redis.call('DEL', key)
  end
  redis.call('HINCRBY', key, 'f', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('PEXPIRE', key, retention)
end
`;

const RECORD_FAILURE_LUA = `${COUNT_FAILURE_LUA}
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  count_failure(key, now, tonumber(ARGV[i + 1]))
end
return 0
`;

/**
 * `attempt`: READ's check and RECORD_FAILURE's count in one script, so no other command runs
 * between them. KEYS as RECORD_FAILURE's; ARGV[1] is `now`, then per key threshold, maxDelay
 * (ms) and retention (ms). Returns the whole seconds blocked (nothing counted) or 0 (counted).
 * The arithmetic is blockedUntil's below; Lua numbers are doubles, exact for epoch ms.
 */
const ATTEMPT_LUA = `${COUNT_FAILURE_LUA}
local now = tonumber(ARGV[1])
local until_ms = 0
for i, key in ipairs(KEYS) do
  local threshold = tonumber(ARGV[3 * i - 1])
  local max_delay = tonumber(ARGV[3 * i])
  local retention = tonumber(ARGV[3 * i + 1])
  local entry = redis.call('HMGET', key, 'f', 'last')
  if entry[1] and entry[2] then
    local failures = tonumber(entry[1])
    local last = tonumber(entry[2])
    if now - last <= retention and failures >= threshold then
      local delay = math.min(2 ^ math.min(failures - threshold, ${MAX_EXPONENT_LUA}) * 1000, max_delay)
      until_ms = math.max(until_ms, last + delay)
    end
  end
end
if until_ms > now then
  return math.ceil((until_ms - now) / 1000)
end
for i, key in ipairs(KEYS) do
  count_failure(key, now, tonumber(ARGV[3 * i + 1]))
end
return 0
`;

/** `refund`: one failure fewer for KEYS[1], never below zero; the entry goes at zero. */
const REFUND_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HINCRBY', KEYS[1], 'f', -1) <= 0 then
    redis.call('DEL', KEYS[1])
  end
end
return 0
`;

/** Both entries in one round trip and one consistent snapshot: { f, last } per key. */
const READ_LUA = `
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, 'f', 'last')
end
return out
`;

type RawEntry = [failures: string | null, lastFailureAt: string | null];

interface ThrottleCommands {
  scThrottleRecord(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  scThrottleRead(numKeys: number, ...keys: string[]): Promise<RawEntry[]>;
  scThrottleAttempt(numKeys: number, ...args: (string | number)[]): Promise<number>;
  scThrottleRefund(numKeys: number, key: string): Promise<unknown>;
}

/** The policy of one kind of key; the arithmetic of MemoryLoginThrottleRepository's table. */
interface Policy {
  readonly threshold: number;
  readonly maxDelayMs: number;
  readonly retentionMs: number;
}

/**
 * LoginThrottleRepository for the distributed mode: the counters live in Redis, so every auth
 * instance throttles on the same counts and a guesser gains nothing by being balanced across
 * instances. Same policy as MemoryLoginThrottleRepository (see LoginThrottleRepository);
 * callers pass keys from throttle-keys.ts as they do to the memory one.
 *
 * Layout: one hash per key, `${prefix}throttle:u:${username}` / `${prefix}throttle:a:${address}`,
 * fields `f` (consecutive failures) and `last` (ms of the last failure). Idle entries expire
 * by TTL: usernames after max(24 h, maxDelay), addresses after 2 × maxDelay. There is no count
 * bound like the memory table's maxEntries: a spray of fresh names costs ~100 bytes a key
 * for a day, which Redis's maxmemory policy has to cover.
 *
 * Both keys are touched by one script, so in Redis Cluster they would need a common hash
 * slot; the deployment runs a standalone (or Sentinel) Redis.
 *
 * In Nest, any of: `RedisLoginThrottleRepository.provider({ url, prefix })`;
 * `{ provide: LoginThrottleRepository, useClass: RedisLoginThrottleRepository }` alone (it then
 * reads config.redisUrl and config.redisPrefix from CONFIG, exactly as the memory one is bound);
 * or that plus `{ provide: REDIS_LOGIN_THROTTLE_OPTIONS, useValue: { url } }` (or `{ redis }`).
 */
@Injectable()
export class RedisLoginThrottleRepository
  extends LoginThrottleRepository
  implements OnApplicationShutdown
{
  readonly #logger = new Logger('LoginThrottle');
  readonly #redis: Redis & ThrottleCommands;
  readonly #ownsConnection: boolean;
  #closing: Promise<void> | undefined;
  readonly #prefix: string;
  readonly #usernames: Policy;
  readonly #addresses: Policy;

  constructor(
    @Inject(CONFIG) config: SecureChatConfig,
    @Optional() @Inject(REDIS_LOGIN_THROTTLE_OPTIONS) options?: RedisLoginThrottleOptions,
  ) {
    super();
    const { userFailures, addressFailures, maxDelaySeconds } = config.throttle;
    const maxDelayMs = maxDelaySeconds * 1000;
    this.#usernames = {
      threshold: userFailures,
      maxDelayMs,
      retentionMs: Math.max(USERNAME_RETENTION_MS, maxDelayMs),
    };
    this.#addresses = { threshold: addressFailures, maxDelayMs, retentionMs: 2 * maxDelayMs };
    this.#prefix = options?.prefix ?? config.redisPrefix;
    this.#ownsConnection = options?.redis === undefined;
    const redis = options?.redis ?? this.#connect(options?.url ?? config.redisUrl);
    // Defining the same script again is harmless, so a shared client may carry several of us.
    redis.defineCommand('scThrottleRecord', { lua: RECORD_FAILURE_LUA });
    redis.defineCommand('scThrottleRead', { lua: READ_LUA });
    redis.defineCommand('scThrottleAttempt', { lua: ATTEMPT_LUA });
    redis.defineCommand('scThrottleRefund', { lua: REFUND_LUA });
    this.#redis = redis as Redis & ThrottleCommands;
  }

  /**
   * The provider for a Nest module: binds `LoginThrottleRepository` to an instance with its
   * own connection to `redis.url`, closed at application shutdown (the policy from CONFIG).
   */
  static provider(redis: RedisEndpoint): FactoryProvider<LoginThrottleRepository> {
    return redisProvider(
      LoginThrottleRepository,
      (config: SecureChatConfig) => new RedisLoginThrottleRepository(config, redis),
      { inject: [CONFIG] },
    );
  }

  override async blockedFor(
    username: string | null,
    address: string,
    now: number,
  ): Promise<number> {
    const addressKey = this.#addressKey(address);
    const keys = username === null ? [addressKey] : [addressKey, this.#usernameKey(username)];
    const [addressEntry, usernameEntry] = await this.#redis.scThrottleRead(keys.length, ...keys);
    const until = Math.max(
      blockedUntil(this.#addresses, addressEntry, now),
      blockedUntil(this.#usernames, usernameEntry, now),
    );
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  override async recordFailure(
    username: string | null,
    address: string,
    now: number,
  ): Promise<void> {
    const keys = [this.#addressKey(address)];
    const retentions = [this.#addresses.retentionMs];
    if (username !== null) {
      keys.push(this.#usernameKey(username));
      retentions.push(this.#usernames.retentionMs);
    }
    await this.#redis.scThrottleRecord(
      keys.length,
      ...keys,
      String(Math.trunc(now)),
      ...retentions,
    );
  }

  override async attempt(username: string | null, address: string, now: number): Promise<number> {
    const args: (string | number)[] = [this.#addressKey(address)];
    const policies = [this.#addresses];
    if (username !== null) {
      args.push(this.#usernameKey(username));
      policies.push(this.#usernames);
    }
    const keyCount = args.length;
    args.push(String(Math.trunc(now)));
    for (const policy of policies) {
      args.push(policy.threshold, policy.maxDelayMs, policy.retentionMs);
    }
    return Number(await this.#redis.scThrottleAttempt(keyCount, ...args));
  }

  override async refund(address: string): Promise<void> {
    await this.#redis.scThrottleRefund(1, this.#addressKey(address));
  }

  override async recordSuccess(username: string): Promise<void> {
    await this.#redis.del(this.#usernameKey(username));
  }

  override async clear(username: string): Promise<void> {
    await this.#redis.del(this.#usernameKey(username));
  }

  /** Closes the connection if this repository opened it; a borrowed client stays open. */
  /** Readiness (/readyz): every login needs this connection. */
  ping(): Promise<void> {
    return pingConnection(this.#redis);
  }

  close(): Promise<void> {
    this.#closing ??= this.#ownsConnection ? closeConnection(this.#redis, true) : Promise.resolve();
    return this.#closing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /**
   * An own connection. ioredis prints every `error` nobody listens to; one warning per outage
   * is enough (the message names the server, never a key). While Redis is down commands
   * fail after ioredis's retries and AuthService rejects the login (the gateway answers
   * `internal`): an outage never reads as "not throttled".
   */
  #connect(url: string | undefined): Redis {
    if (url === undefined) {
      throw new Error('RedisLoginThrottleRepository needs a Redis URL (REDIS_URL) or client');
    }
    // A login waits on these commands: give up after two reconnect attempts, not twenty.
    const redis = new Redis(url, {
      connectionName: 'securechat-auth-throttle',
      maxRetriesPerRequest: 2,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    });
    reportOutagesOnce(redis, this.#logger, 'connection');
    return redis;
  }

  #usernameKey(username: string): string {
    return `${this.#prefix}throttle:u:${username}`;
  }

  #addressKey(address: string): string {
    return `${this.#prefix}throttle:a:${address}`;
  }
}

/** Epoch ms until which an entry blocks; 0 when it does not (absent, below threshold, idle). */
function blockedUntil(policy: Policy, entry: RawEntry | undefined, now: number): number {
  if (entry === undefined) return 0;
  const [rawFailures, rawLast] = entry;
  if (rawFailures === null || rawLast === null) return 0;
  const failures = Number(rawFailures);
  const lastFailureAt = Number(rawLast);
  if (now - lastFailureAt > policy.retentionMs || failures < policy.threshold) return 0;
  const exponent = Math.min(failures - policy.threshold, MAX_EXPONENT);
  return lastFailureAt + Math.min(2 ** exponent * 1000, policy.maxDelayMs);
}
