import { Logger, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { Redis } from 'ioredis';

import { closeConnection, DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { reportOutagesOnce } from '../redis/outage-reporter';
import { pingConnection } from '../redis/ping-connection';
import { type RedisEndpoint, redisProvider } from '../redis/redis-provider';

/** One use of a sealed login's id. */
export interface LoginSealClaim {
  /** The envelope's id. */
  readonly id: string;
  /**
   * Which delivery of the request this is: the Redis stream entry id, the same when the
   * transport hands one entry to a second instance after the first died; anything unique
   * where there are no redeliveries.
   */
  readonly delivery: string;
  /** How long the id must be remembered, in ms. */
  readonly ttlMs: number;
  /** The caller's clock, ms since the Unix epoch. */
  readonly now: number;
}

/**
 * The ids of sealed logins seen lately, so that one is acted on once: a copy of a command
 * (from Redis's append-only file, a backup, a stream read) sent again is refused. An
 * abstract class doubling as the Nest token: memory in the embedded process, Redis — shared
 * by every auth instance — in the distributed one.
 */
export abstract class LoginSealReplayRepository {
  /**
   * Records the id. True when it is new, or was recorded by this same delivery (a redelivered
   * stream entry, taken over from an instance that died mid-login); false for a replay.
   * Rejects when it cannot tell (Redis unreachable): an outage never reads as "not replayed".
   */
  abstract claim(claim: LoginSealClaim): Promise<boolean>;
}

/** Most ids the memory table keeps; past it, new logins are refused until old ids expire. */
const MEMORY_MAX_IDS = 1_000_000;

/** For the embedded mode: one process, so one table. Expired ids are swept as claims arrive. */
export class MemoryLoginSealReplayRepository extends LoginSealReplayRepository {
  /** id → delivery and expiry; insertion order is expiry order (one TTL for all). */
  readonly #seen = new Map<string, { delivery: string; expires: number }>();

  override claim({ id, delivery, ttlMs, now }: LoginSealClaim): Promise<boolean> {
    for (const [key, entry] of this.#seen) {
      if (entry.expires > now) break;
      this.#seen.delete(key);
    }
    const previous = this.#seen.get(id);
    if (previous) return Promise.resolve(previous.delivery === delivery);
    if (this.#seen.size >= MEMORY_MAX_IDS) return Promise.resolve(false);
    this.#seen.set(id, { delivery, expires: now + ttlMs });
    return Promise.resolve(true);
  }
}

export interface RedisLoginSealReplayOptions {
  readonly url: string;
  /** Prepended to every key. Default `sc:`. */
  readonly prefix?: string;
}

/**
 * For the distributed mode: `${prefix}login-seal:${id}` holds the delivery that claimed it,
 * with a TTL. `SET … NX GET` makes claiming and reading one atomic step (Redis ≥ 7.0), so two
 * auth instances handed copies of one command cannot both win.
 */
export class RedisLoginSealReplayRepository
  extends LoginSealReplayRepository
  implements OnApplicationShutdown
{
  readonly #logger = new Logger('LoginSealReplay');
  readonly #redis: Redis;
  readonly #prefix: string;
  #closing: Promise<void> | undefined;

  constructor(options: RedisLoginSealReplayOptions) {
    super();
    this.#prefix = options.prefix ?? 'sc:';
    // A login waits on this command: give up after two reconnect attempts, as the throttle does.
    this.#redis = new Redis(options.url, {
      connectionName: 'securechat-login-seal',
      maxRetriesPerRequest: 2,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    });
    reportOutagesOnce(this.#redis, this.#logger, 'connection');
  }

  /** `{ provide: LoginSealReplayRepository, … }` with an own connection. */
  static provider(redis: RedisEndpoint): Provider {
    return redisProvider(
      LoginSealReplayRepository,
      () => new RedisLoginSealReplayRepository(redis),
    );
  }

  override async claim({ id, delivery, ttlMs }: LoginSealClaim): Promise<boolean> {
    const previous = await this.#redis.call(
      'SET',
      `${this.#prefix}login-seal:${id}`,
      delivery,
      'PX',
      String(Math.max(1, Math.ceil(ttlMs))),
      'NX',
      'GET',
    );
    return previous === null || previous === delivery;
  }

  /** Readiness (/readyz): every login needs this connection. */
  ping(): Promise<void> {
    return pingConnection(this.#redis);
  }

  close(): Promise<void> {
    this.#closing ??= closeConnection(this.#redis, true);
    return this.#closing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
