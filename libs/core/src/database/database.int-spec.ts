import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { sql } from 'drizzle-orm';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../test/test-database';

const JOURNAL = JSON.parse(
  readFileSync(join(__dirname, '../../../../db/migrations/meta/_journal.json'), 'utf8'),
) as { entries: unknown[] };

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('openDatabase on %s', (_name, open) => {
  let handle: TestDatabase;
  beforeAll(async () => {
    handle = await open();
  });
  afterAll(() => handle.close());

  it('applies the checked-in migrations', async () => {
    const result = await handle.db.execute(
      sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    const rows = (result as { rows: { table_name: string }[] }).rows;
    expect(rows.map((r) => r.table_name)).toEqual([
      'admin_audit',
      'deliveries',
      'messages',
      'room_members',
      'rooms',
      'transcript_chunks',
      'transcript_sessions',
      'users',
    ]);
  });
});

describe('migrations on PostgreSQL', () => {
  it('run once when several instances start together (advisory lock)', async () => {
    const { Client } = await import('pg');
    const { randomBytes } = await import('node:crypto');
    const { TEST_DATABASE_URL } = await import('../../test/test-database');
    const { openDatabase } = await import('./database');
    const name = `securechat_test_${randomBytes(6).toString('hex')}`;
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    try {
      const handles = await Promise.all(
        [1, 2, 3, 4].map(() =>
          openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 2 }),
        ),
      );
      const result = await handles[0]!.db.execute(
        sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
      );
      // Each checked-in migration exactly once, however many instances raced.
      expect((result as { rows: { n: number }[] }).rows[0]!.n).toBe(JOURNAL.entries.length);
      await Promise.all(handles.map((h) => h.close()));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
