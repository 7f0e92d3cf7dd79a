/**
 * The database handle every repository uses: Drizzle over `pg` (distributed mode) or over
 * PGlite (embedded mode). Same schema, same SQL, same migrations.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';

import { type PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { type PgDatabase, type PgQueryResultHKT } from 'drizzle-orm/pg-core';

import * as schema from '@db/schema';

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export { schema };

/** Nest injection token for Database. */
export const DATABASE = Symbol('Database');

export type DatabaseTarget =
  | { kind: 'pglite'; dataDir: string }
  | {
      kind: 'postgres';
      url: string;
      poolSize?: number;
      /**
       * Told when the database did not exist and was created here: worth a warning, since a
       * typo in DATABASE_URL would otherwise start a service quietly on a new, empty database.
       */
      onCreated?: (name: string) => void;
    };

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

/**
 * PostgreSQL settings of the embedded database, on top of PGlite's own
 * (`PGlite.defaultStartParams`). PGlite is one PostgreSQL backend (single-user mode) inside this
 * process; PostgreSQL's shared memory is allocated in its WebAssembly memory, zeroed at start
 * and never given back. The defaults are sized for a server (128 MB of buffers, 100
 * connections): 145 MB of shared memory, resident from the first second. Durability settings
 * (fsync, synchronous_commit, full_page_writes) are PGlite's, unchanged.
 */
export const PGLITE_SETTINGS: readonly string[] = [
  // The buffer cache, resident in full. A page not in it is read through the OS page cache, one
  // read call away. The write path keeps a few pages per active user hot (the tables' last
  // pages, the indexes' right edges per sender, conversation and recipient): 32 MB holds those
  // of several hundred users chatting at once; past that, each miss costs CPU.
  'shared_buffers=32MB',
  // What 128 MB of buffers implied (a 32nd): the WAL path, commits included, works as before.
  'wal_buffers=4MB',
  // Sizes the shared lock and process tables only: single-user mode never has a second backend.
  'max_connections=10',
];

/**
 * V8 setting for PGlite's WebAssembly: baseline (Liftoff) code only. By default V8 recompiles
 * the hot functions of PostgreSQL with its optimizing compiler on background threads; each
 * thread's scratch memory stays resident in its malloc arena after the work is done (50 to 100
 * MiB an idle embedded server held, 15 s after start), while the optimized code ran our write
 * and read path no faster (CPU time within 3 % either way, measured with PGlite on a data
 * directory; start-up is faster without the recompilation). Read when a module is compiled, so
 * it is set before PGlite loads.
 */
export const PGLITE_V8_FLAGS = '--liftoff-only';

/** PGlite's options: PGLITE_SETTINGS both at run time and for initdb (postgresql.conf). */
function pgliteOptions(defaultStartParams: readonly string[]): PGliteOptions {
  const settings = PGLITE_SETTINGS.flatMap((setting) => ['-c', setting]);
  return { startParams: [...defaultStartParams, ...settings], initDbStartParams: settings };
}

/** Run by `node -e` with the PGlite module, the directory and the options as arguments. */
const INIT_DATA_DIR_SCRIPT = `
const [module, dataDir, options] = process.argv.slice(1);
require(module).PGlite.create(dataDir, JSON.parse(options)).then((pg) => pg.close()).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});`;

/**
 * Creates the database cluster in a new data directory, in a child process. PGlite runs initdb
 * in a second PGlite instance, restores a copy of its heap before every step and moves the
 * result over as a tar archive: about 450 MiB of WebAssembly memory and buffers that, in this
 * process, would stay resident until a full garbage collection (which an idle server may never
 * run), and partly as freed malloc memory after it. The child returns all of it when it exits.
 */
async function initPgliteDataDir(dataDir: string, options: PGliteOptions): Promise<void> {
  const args = [
    PGLITE_V8_FLAGS,
    '-e',
    INIT_DATA_DIR_SCRIPT,
    require.resolve('@electric-sql/pglite'),
  ];
  args.push(dataDir, JSON.stringify(options));
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }, (error, _out, stderr) => {
      const why = stderr.trim() || error?.message;
      if (error) reject(new Error(`creating the PGlite database in ${dataDir} failed: ${why}`));
      else resolve();
    });
  });
}

/** PGlite on `dataDir` (a directory, or `memory://`), with PGLITE_SETTINGS. */
async function openPglite(dataDir: string): Promise<PGlite> {
  setFlagsFromString(PGLITE_V8_FLAGS);
  const { PGlite } = await import('@electric-sql/pglite');
  const options = pgliteOptions(PGlite.defaultStartParams);
  if (dataDir !== 'memory://') {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await initPgliteDataDir(dataDir, options);
  }
  return PGlite.create(dataDir, options);
}

/** Opens the database and applies the checked-in migrations. */
export async function openDatabase(target: DatabaseTarget): Promise<DatabaseHandle> {
  if (target.kind === 'pglite') {
    const { drizzle } = await import('drizzle-orm/pglite');
    const { migrate } = await import('drizzle-orm/pglite/migrator');
    const client = await openPglite(target.dataDir);
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
  // A fresh server has no database yet: make it (or say exactly how) rather than fail on it.
  const { createDatabase, isMissingDatabase } = await import('./create-database');
  const lockClient = await pool.connect().catch(async (error: unknown) => {
    if (!isMissingDatabase(error)) throw error;
    if (await createDatabase(target.url)) {
      target.onCreated?.(decodeURIComponent(new URL(target.url).pathname.slice(1)));
    }
    return pool.connect();
  });
  // Concurrent instances start together: one migrates, the others wait on the lock and then
  // find nothing left to do (session-level advisory lock, released when the client is).
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
