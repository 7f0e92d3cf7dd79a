/** The dependencies /readyz asks, one check each. */
import { sql } from 'drizzle-orm';

import { type Database } from '../database/database';

/** One dependency: resolves when it answers, rejects (or never settles) when it does not. */
export interface ReadinessCheck {
  /** The key under `checks` in the /readyz answer (`postgres`, `redis`). */
  readonly name: string;
  check(): Promise<unknown>;
}

/** Something that can say whether its Redis connections answer (transports, fan-out, stores). */
export interface RedisPingable {
  ping(): Promise<unknown>;
}

/** PostgreSQL (or PGlite) answers `select 1`. */
export function postgresCheck(db: Database): ReadinessCheck {
  return { name: 'postgres', check: () => db.execute(sql`select 1`) };
}

/** Every Redis connection of the process answers PING (one failing is enough to be unready). */
export function redisCheck(connections: readonly RedisPingable[]): ReadinessCheck {
  return {
    name: 'redis',
    check: () => Promise.all([...new Set(connections)].map((c) => c.ping())),
  };
}
