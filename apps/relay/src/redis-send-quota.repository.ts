import {
  type FactoryProvider,
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';

import {
  closeConnection,
  CONFIG,
  DISCONNECT_TIMEOUT_MS,
  type RedisEndpoint,
  redisProvider,
  reportOutagesOnce,
  type SecureChatConfig,
} from '@securechat/core';
import { Redis } from 'ioredis';

import {
  DAY_MS,
  type QuotaDecision,
  type QuotaPolicy,
  SendQuotaRepository,
} from './send-quota.repository';

/**
 * MemorySendQuotaRepository's arithmetic in one script, so that a run is checked and counted
 * with no other command in between, whichever relay instance runs it. KEYS[1] is the user's
 * hash: `t` tokens, `r` when they were last refilled (ms), `d` the UTC day number, `b` body
 * bytes that day. ARGV: now (ms), rate, burst, bytes per day, the day's length (ms), then one
 * body size per send. Returns { accepted, retryAfter }. The key expires once a fresh entry
 * would equal it (bucket full again and, if bytes were counted, the day over), so idle users
 * cost nothing. Lua numbers are doubles: exact for epoch ms and byte counts.
 */
const CHARGE_LUA = `
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local per_day = tonumber(ARGV[4])
local day_ms = tonumber(ARGV[5])
local day = math.floor(now / day_ms)
local state = redis.call('HMGET', KEYS[1], 't', 'r', 'd', 'b')
local tokens = tonumber(state[1]) or burst
local refilled = tonumber(state[2]) or now
local bytes = tonumber(state[4]) or 0
if tonumber(state[3]) ~= day then bytes = 0 end
if rate > 0 then
  tokens = math.min(burst, tokens + math.max(0, now - refilled) / 1000 * rate)
end
local accepted = 0
local retry = 0
for i = 6, #ARGV do
  local size = tonumber(ARGV[i])
  if rate > 0 and tokens < 1 then
    retry = math.max(1, math.ceil((1 - tokens) / rate))
    break
  end
  if per_day > 0 and bytes + size > per_day then
    retry = math.max(1, math.ceil(((day + 1) * day_ms - now) / 1000))
    break
  end
  if rate > 0 then tokens = tokens - 1 end
  bytes = bytes + size
  accepted = accepted + 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'r', ARGV[1], 'd', tostring(day), 'b', tostring(bytes))
local ttl = 1000
if rate > 0 then ttl = math.max(ttl, math.ceil((burst - tokens) / rate * 1000) + 1000) end
if per_day > 0 and bytes > 0 then ttl = math.max(ttl, (day + 1) * day_ms - now + 1000) end
redis.call('PEXPIRE', KEYS[1], ttl)
return { accepted, retry }
`;

/** Nest token for RedisSendQuotaOptions (tests: another URL or key prefix). */
export const REDIS_SEND_QUOTA_OPTIONS = Symbol('RedisSendQuotaOptions');

export interface RedisSendQuotaOptions {
  /** Default config.redisUrl. */
  readonly url?: string;
  /** Prepended to every key. Default config.redisPrefix. */
  readonly prefix?: string;
}

interface QuotaCommands {
  scQuotaCharge(numKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
}

/**
 * SendQuotaRepository for the distributed mode: the counts live in Redis, so every relay
 * instance charges the same bucket. One round trip per run of sends (the gateway sends a
 * connection's run as one `send_batch`). Layout: one hash per user, `${prefix}quota:${username}`.
 * While Redis is down the charge fails and the sends are answered as a storage failure
 * (`internal`, nothing stored): an outage never reads as "no quota".
 */
@Injectable()
export class RedisSendQuotaRepository extends SendQuotaRepository implements OnApplicationShutdown {
  readonly #logger = new Logger('SendQuota');
  readonly #policy: QuotaPolicy;
  readonly #prefix: string;
  readonly #redis: Redis & QuotaCommands;
  #closing: Promise<void> | undefined;

  constructor(
    @Inject(CONFIG) config: SecureChatConfig,
    @Optional() @Inject(REDIS_SEND_QUOTA_OPTIONS) options?: RedisSendQuotaOptions,
  ) {
    super();
    const url = options?.url ?? config.redisUrl;
    if (url === undefined)
      throw new Error('RedisSendQuotaRepository needs a Redis URL (REDIS_URL)');
    this.#policy = config.quotas;
    this.#prefix = options?.prefix ?? config.redisPrefix;
    const redis = new Redis(url, {
      connectionName: 'securechat-relay-quota',
      maxRetriesPerRequest: 2,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    });
    reportOutagesOnce(redis, this.#logger, 'connection');
    redis.defineCommand('scQuotaCharge', { lua: CHARGE_LUA });
    this.#redis = redis as Redis & QuotaCommands;
  }

  /**
   * The provider for a Nest module: binds `SendQuotaRepository` to an instance with its own
   * connection to `redis.url`, closed at application shutdown (the quotas from CONFIG).
   */
  static provider(redis: RedisEndpoint): FactoryProvider<SendQuotaRepository> {
    return redisProvider(
      SendQuotaRepository,
      (config: SecureChatConfig) => new RedisSendQuotaRepository(config, redis),
      { inject: [CONFIG] },
    );
  }

  override async charge(
    username: string,
    bodyBytes: readonly number[],
    now: number,
  ): Promise<QuotaDecision> {
    const { messagesPerSecond, messageBurst, bytesPerDay } = this.#policy;
    if (bodyBytes.length === 0 || (messagesPerSecond <= 0 && bytesPerDay <= 0)) {
      return { accepted: bodyBytes.length, retryAfter: 0 };
    }
    const [accepted, retryAfter] = await this.#redis.scQuotaCharge(
      1,
      `${this.#prefix}quota:${username}`,
      String(Math.trunc(now)),
      messagesPerSecond,
      messageBurst,
      bytesPerDay,
      DAY_MS,
      ...bodyBytes,
    );
    return { accepted: Number(accepted), retryAfter: Number(retryAfter) };
  }

  close(): Promise<void> {
    this.#closing ??= closeConnection(this.#redis, true);
    return this.#closing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
