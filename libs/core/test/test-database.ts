/**
 * Databases for tests. `pglite`: a fresh in-memory PGlite (fast, for unit-level repository
 * tests). `postgres`: a fresh database on the real server (DATABASE_URL, else
 * postgres://postgres@127.0.0.1:5432/test), created for the test file and dropped after, for
 * `*.int-spec.ts`. Under CI=true a missing server fails the test instead of skipping it.
 */
import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { type Database, openDatabase } from '../src/database/database';

export const TEST_DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  readonly db: Database;
  close(): Promise<void>;
}

export async function pgliteTestDatabase(): Promise<TestDatabase> {
  return openDatabase({ kind: 'pglite', dataDir: 'memory://' });
}

export async function postgresTestDatabase(): Promise<TestDatabase> {
  const name = `securechat_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const handle = await openDatabase({ kind: 'postgres', url: url.toString() });
  return {
    db: handle.db,
    close: async () => {
      await handle.close();
      const cleanup = new Client({ connectionString: TEST_DATABASE_URL });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}
