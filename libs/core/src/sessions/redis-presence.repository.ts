import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Redis } from 'ioredis';

import { closeConnection, DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { reportOutagesOnce } from '../redis/outage-reporter';
import { pingConnection } from '../redis/ping-connection';
import { type RedisEndpoint, redisProvider } from '../redis/redis-provider';
import { presenceByLogin, type PresenceEntry, PresenceRepository } from './presence.repository';

/** Nest token for RedisPresenceOptions, for `{ provide: PresenceRepository, useClass: … }`. */
export const REDIS_PRESENCE_OPTIONS = Symbol('RedisPresenceOptions');

/**
 * With `url` the repository opens its own connection and closes it at shutdown; with `redis`
 * it borrows the caller's client and leaves it open.
 */
export type RedisPresenceOptions = (
  | { readonly url: string; readonly redis?: undefined }
  | { readonly redis: Redis; readonly url?: undefined }
) & {
  /** Prepended to every key, so that several deployments can share one Redis. Default `sc:`. */
  readonly prefix?: string;
  /**
   * How long a gateway counts as alive after its last heartbeat (or `add`), in ms. Default
   * 15,000: three missed beats at the gateway's 5 s interval.
   */
  readonly heartbeatTtlMs?: number;
};

const DEFAULT_PREFIX = 'sc:';
const DEFAULT_HEARTBEAT_TTL_MS = 15_000;
/** HGETALLs per pipeline in list(): bounded so one listing never queues an unbounded reply. */
const LIST_BATCH = 500;

/**
 * Deletes one entry if, and only if, its gateway is still dead and the entry is unchanged:
 * checked inside the script so that a gateway that came back (its heartbeat or `add` sets the
 * key first) never loses a session it has just re-added.
 * KEYS: user hash, users set, gateway heartbeat. ARGV: sessionId, username, stored JSON.
 */
const PRUNE_LUA = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
`;

/**
 * Removes one session and, with the user's last one, the user from the set, atomically: a
 * concurrent `add` for the same user from another gateway is never left out of the set.
 * KEYS: user hash, users set. ARGV: sessionId, username.
 */
const REMOVE_LUA = `
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 0
`;

interface PresenceCommands {
  scPresencePrune(
    userKey: string,
    usersKey: string,
    heartbeatKey: string,
    sessionId: string,
    username: string,
    json: string,
  ): Promise<number>;
  scPresenceRemove(
    userKey: string,
    usersKey: string,
    sessionId: string,
    username: string,
  ): Promise<number>;
}

interface StoredEntry {
  readonly entry: PresenceEntry;
  /** The hash value as stored, so that a prune deletes exactly what was read. */
  readonly json: string;
}

/**
 * PresenceRepository for the distributed mode, shared by every gateway.
 *
 * Layout: `${prefix}presence:${username}` is a hash sessionId → entry JSON;
 * `${prefix}presence-users` the set of users with at least one entry (not `presence:users`,
 * which would be the hash of a user called `users`; usernames hold no `-`);
 * `${prefix}presence-gateway:${gateway}` a heartbeat key with a TTL.
 *
 * A gateway that dies (kill -9, lost host) never removes its entries. Its heartbeat then
 * expires, and the next `list`/`listUser` that meets its entries leaves them out and deletes
 * them (atomically re-checking the heartbeat, so a gateway that came back keeps what it
 * re-added). Until some listing meets them they cost their bytes, nothing more.
 *
 * The scripts touch several keys, so this needs a standalone (or Sentinel) Redis, not Cluster.
 *
 * In Nest: `RedisPresenceRepository.provider({ url, prefix })`.
 */
@Injectable()
export class RedisPresenceRepository extends PresenceRepository implements OnApplicationShutdown {
  readonly #logger = new Logger('Presence');
  readonly #redis: Redis & PresenceCommands;
  readonly #ownsConnection: boolean;
  #closing: Promise<void> | undefined;
  readonly #prefix: string;
  readonly #usersKey: string;
  readonly #heartbeatTtlMs: number;

  constructor(@Inject(REDIS_PRESENCE_OPTIONS) options: RedisPresenceOptions) {
    super();
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#usersKey = `${this.#prefix}presence-users`;
    this.#heartbeatTtlMs = options.heartbeatTtlMs ?? DEFAULT_HEARTBEAT_TTL_MS;
    this.#ownsConnection = options.redis === undefined;
    const redis = options.redis ?? this.#connect(options.url);
    redis.defineCommand('scPresencePrune', { lua: PRUNE_LUA, numberOfKeys: 3 });
    redis.defineCommand('scPresenceRemove', { lua: REMOVE_LUA, numberOfKeys: 2 });
    this.#redis = redis as Redis & PresenceCommands;
  }

  /** `{ provide: PresenceRepository, … }` with an own connection, opened on first use. */
  static provider(redis: RedisEndpoint): Provider {
    return redisProvider(PresenceRepository, () => new RedisPresenceRepository(redis));
  }

  /** Also refreshes the gateway's heartbeat: a gateway adding a session is alive. */
  override async add(entry: PresenceEntry): Promise<void> {
    const { sessionId, username, gateway, sourceAddress, since } = entry;
    const json = JSON.stringify({ sessionId, username, gateway, sourceAddress, since });
    await this.#redis
      .multi()
      .set(this.#heartbeatKey(gateway), String(Date.now()), 'PX', this.#heartbeatTtlMs)
      .hset(this.#userKey(username), sessionId, json)
      .sadd(this.#usersKey, username)
      .exec()
      .then(throwOnTransactionError);
  }

  override async remove(sessionId: string, username: string): Promise<void> {
    await this.#redis.scPresenceRemove(
      this.#userKey(username),
      this.#usersKey,
      sessionId,
      username,
    );
  }

  override async list(): Promise<PresenceEntry[]> {
    const users = await this.#redis.smembers(this.#usersKey);
    const stored: StoredEntry[] = [];
    for (let i = 0; i < users.length; i += LIST_BATCH) {
      const pipeline = this.#redis.pipeline();
      for (const user of users.slice(i, i + LIST_BATCH)) pipeline.hgetall(this.#userKey(user));
      const replies = (await pipeline.exec()) ?? [];
      for (const [error, hash] of replies) {
        if (error) throw error;
        stored.push(...parseHash(hash));
      }
    }
    return this.#live(stored);
  }

  override async listUser(username: string): Promise<PresenceEntry[]> {
    return this.#live(parseHash(await this.#redis.hgetall(this.#userKey(username))));
  }

  /** SET … GET: one round trip that both refreshes the TTL and says whether it had lapsed. */
  override async heartbeat(gateway: string): Promise<boolean> {
    const previous = await this.#redis.set(
      this.#heartbeatKey(gateway),
      String(Date.now()),
      'PX',
      this.#heartbeatTtlMs,
      'GET',
    );
    return previous !== null;
  }

  /** Closes the connection if this repository opened it; a borrowed client stays open. */
  /** Readiness (/readyz): logins and the admin's session list use this connection. */
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

  /** Drops (and deletes) the entries of gateways whose heartbeat has expired. */
  async #live(stored: StoredEntry[]): Promise<PresenceEntry[]> {
    const gateways = [...new Set(stored.map((s) => s.entry.gateway))];
    if (gateways.length === 0) return [];
    const beats = await this.#redis.mget(...gateways.map((g) => this.#heartbeatKey(g)));
    const alive = new Set(gateways.filter((_, i) => beats[i] !== null));
    const dead = stored.filter((s) => !alive.has(s.entry.gateway));
    if (dead.length > 0) await this.#prune(dead);
    return stored
      .filter((s) => alive.has(s.entry.gateway))
      .map((s) => s.entry)
      .sort(presenceByLogin);
  }

  async #prune(dead: StoredEntry[]): Promise<void> {
    const pipeline = this.#redis.pipeline() as ReturnType<Redis['pipeline']> & {
      scPresencePrune(...args: string[]): unknown;
    };
    for (const { entry, json } of dead) {
      pipeline.scPresencePrune(
        this.#userKey(entry.username),
        this.#usersKey,
        this.#heartbeatKey(entry.gateway),
        entry.sessionId,
        entry.username,
        json,
      );
    }
    // Best effort: the listing is right either way, and the next one retries.
    await pipeline.exec().catch((error: Error) => {
      this.#logger.warn(`pruning dead gateways' presence failed: ${error.message}`);
    });
  }

  /** An own connection; one warning per outage (the message names the server, never a key). */
  #connect(url: string): Redis {
    const redis = new Redis(url, {
      connectionName: 'securechat-presence',
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    });
    reportOutagesOnce(redis, this.#logger, 'connection');
    return redis;
  }

  #userKey(username: string): string {
    return `${this.#prefix}presence:${username}`;
  }

  #heartbeatKey(gateway: string): string {
    return `${this.#prefix}presence-gateway:${gateway}`;
  }
}

function throwOnTransactionError(replies: [Error | null, unknown][] | null): void {
  if (replies === null) throw new Error('presence transaction aborted');
  for (const [error] of replies) if (error) throw error;
}

/** Entries of one user hash; a value that is not a well-formed entry is skipped, not fatal. */
function parseHash(hash: unknown): StoredEntry[] {
  if (typeof hash !== 'object' || hash === null) return [];
  const out: StoredEntry[] = [];
  for (const json of Object.values(hash as Record<string, unknown>)) {
    if (typeof json !== 'string') continue;
    const entry = parseEntry(json);
    if (entry) out.push({ entry, json });
  }
  return out;
}

function parseEntry(json: string): PresenceEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.sessionId !== 'string' ||
    typeof v.username !== 'string' ||
    typeof v.gateway !== 'string' ||
    typeof v.sourceAddress !== 'string' ||
    typeof v.since !== 'number'
  ) {
    return undefined;
  }
  return {
    sessionId: v.sessionId,
    username: v.username,
    gateway: v.gateway,
    sourceAddress: v.sourceAddress,
    since: v.since,
  };
}
