/**
 * The database handle every repository uses: Drizzle over `pg` (distributed mode) or over
 * PGlite (embedded mode). Same schema, same SQL, same migrations.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { type PgDatabase, type PgQueryResultHKT } from 'drizzle-orm/pg-core';

import * as schema from '@db/schema';

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export { schema };

/** Nest injection token for Database. */
export const DATABASE = Symbol('Database');

export type DatabaseTarget =
  { kind: 'pglite'; dataDir: string } | { kind: 'postgres'; url: string; poolSize?: number };

/** Advisory lock held while migrating, so that instances starting together migrate once. */
const MIGRATION_LOCK_KEY = 727_272_001;

export interface DatabaseHandle {
  readonly db: Database;
  close(): Promise<void>;
}

/** Finds db/migrations from the source tree or from a build (dist/...) alike. */
export function migrationsFolder(start = __dirname): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, 'db', 'migrations');
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error('db/migrations not found above ' + start);
  }
}

/** Opens the database and applies the checked-in migrations. */
export async function openDatabase(target: DatabaseTarget): Promise<DatabaseHandle> {
  if (target.kind === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const { drizzle } = await import('drizzle-orm/pglite');
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    if (target.dataDir !== 'memory://') mkdirSync(target.dataDir, { recursive: true, mode: 0o700 });
    const client = new PGlite(target.dataDir);
    const db = drizzle(client, { schema });
    await migrate(db, { migrationsFolder: migrationsFolder() });
    return { db: db as unknown as Database, close: () => client.close() };
  }
  const { Pool } = await import('pg');
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const { migrate } = await import('drizzle-orm/node-postgres/migrator');
  const pool = new Pool({
    connectionString: target.url,
    max: target.poolSize ?? 10,
    // A query waits at most this long for a connection while PostgreSQL is unreachable, so
    // callers get an error (never a false ack) instead of hanging.
    connectionTimeoutMillis: 5_000,
  });
  // An idle connection that breaks (PostgreSQL restarted or unreachable) is reported on the
  // pool; without a listener that event would crash the process. The pool replaces it.
  const onLost = (error: Error) => console.warn(`database connection lost: ${error.message}`);
  pool.on('error', onLost);
  // A connection checked out between two statements (inside a transaction) reports a break on
  // the client itself, where the pool's listener is not attached: listen there too.
  pool.on('connect', (client) => client.on('error', onLost));
  const db = drizzle(pool, { schema });
  // Concurrent instances start together: one migrates, the others wait on the lock and then
  // find nothing left to do (session-level advisory lock, released when the client is).
  const lockClient = await pool.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await migrate(drizzle(lockClient, { schema }), { migrationsFolder: migrationsFolder() });
  } finally {
    await lockClient
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      .catch(() => undefined);
    lockClient.release();
  }
  return { db: db as unknown as Database, close: () => pool.end() };
}
