/**
 * `npm run db:migrate`: brings the PostgreSQL database at DATABASE_URL up to the checked-in
 * migrations, says which ones it applied, and exits. Every service migrates at start anyway
 * (under an advisory lock); this lets a deployment migrate once, before any service starts, and
 * fail there with a readable message rather than in every service at once. A database that does
 * not exist yet is created first where the role may (else the error says how).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from 'pg';

import { ConfigError, loadConfig } from '@securechat/core/config/config.schema';
import { databaseAddress, ensureDatabase } from '@securechat/core/database/create-database';
import { migrationsFolder, openDatabase } from '@securechat/core/database/database';
import { runMain } from '@securechat/core/process/process-infrastructure';

interface JournalEntry {
  readonly tag: string;
  /** Drizzle records this as `created_at` of the applied migration. */
  readonly when: number;
}

/** Where Drizzle's node-postgres migrator records what it applied (its defaults). */
const MIGRATIONS_TABLE = 'drizzle.__drizzle_migrations';

/**
 * The `created_at` of every migration already applied; none before the first migration. Read
 * over a connection of its own because openDatabase() migrates as it opens.
 */
async function appliedMigrations(url: string): Promise<Set<number>> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ present: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS present',
      [MIGRATIONS_TABLE],
    );
    if (!rows[0]?.present) return new Set();
    const applied = await client.query<{ created_at: string }>(
      `SELECT created_at FROM ${MIGRATIONS_TABLE}`,
    );
    return new Set(applied.rows.map((row) => Number(row.created_at)));
  } finally {
    await client.end();
  }
}

/** The database's address without its credentials, for the log. */
function describeTarget(url: string): string {
  const { host, port, database } = databaseAddress(url);
  return `${host}:${port}/${database}`;
}

runMain(async () => {
  const { databaseUrl } = loadConfig();
  if (!databaseUrl) throw new ConfigError(['DATABASE_URL: required to migrate']);
  const folder = migrationsFolder(__dirname);
  const journal = (
    JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as {
      entries: JournalEntry[];
    }
  ).entries;

  const target = describeTarget(databaseUrl);
  if (await ensureDatabase(databaseUrl)) console.log(`${target}: created the database`);
  const before = await appliedMigrations(databaseUrl);
  const handle = await openDatabase({ kind: 'postgres', url: databaseUrl, poolSize: 1 });
  await handle.close();
  const after = await appliedMigrations(databaseUrl);

  const applied = journal.filter((entry) => after.has(entry.when) && !before.has(entry.when));
  const missing = journal.filter((entry) => !after.has(entry.when));
  if (missing.length > 0) {
    throw new Error(`migrations not applied: ${missing.map((entry) => entry.tag).join(', ')}`);
  }
  const latest = journal.at(-1)?.tag ?? 'none';
  console.log(
    applied.length === 0
      ? `${target}: up to date (${journal.length} migrations, latest ${latest})`
      : `${target}: applied ${applied.length} of ${journal.length} migrations: ` +
          `${applied.map((entry) => entry.tag).join(', ')} (latest ${latest})`,
  );
  console.log(
    JSON.stringify({
      event: 'migrated',
      applied: applied.map((entry) => entry.tag),
      latest,
      total: journal.length,
    }),
  );
});
