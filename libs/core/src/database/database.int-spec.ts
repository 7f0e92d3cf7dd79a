import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { sql } from 'drizzle-orm';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../test/test-database';
import { type Database, openDatabase, PGLITE_SETTINGS } from './database';

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

describe('PGlite settings and data directory', () => {
  jest.setTimeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'securechat-pglite-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Each of PGLITE_SETTINGS (`name=value`) as the running database reports it. */
  async function settingsOf(db: Database): Promise<Record<string, string>> {
    const shown: Record<string, string> = {};
    for (const name of PGLITE_SETTINGS.map((setting) => setting.split('=')[0]!)) {
      const result = await db.execute(sql`select current_setting(${name}) as value`);
      shown[name] = (result as { rows: { value: string }[] }).rows[0]!.value;
    }
    return shown;
  }
  const expected = Object.fromEntries(PGLITE_SETTINGS.map((setting) => setting.split('=')));

  it('runs with PGLITE_SETTINGS in memory', async () => {
    const handle = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    try {
      expect(await settingsOf(handle.db)).toEqual(expected);
    } finally {
      await handle.close();
    }
  });

  it('creates a new data directory that keeps what was committed', async () => {
    const dataDir = join(dir, 'pglite');
    const first = await openDatabase({ kind: 'pglite', dataDir });
    expect(await settingsOf(first.db)).toEqual(expected);
    await first.db.execute(sql`insert into rooms (name, created_by) values ('#kept', 'alice')`);
    await first.close();
    // initdb wrote the settings into postgresql.conf too, so the directory tells its truth.
    const conf = readFileSync(join(dataDir, 'postgresql.conf'), 'utf8');
    expect(conf).toContain(`\nshared_buffers = ${expected.shared_buffers}\t`);
    const second = await openDatabase({ kind: 'pglite', dataDir });
    try {
      const rooms = await second.db.execute(sql`select name from rooms`);
      expect((rooms as { rows: { name: string }[] }).rows).toEqual([{ name: '#kept' }]);
      expect(await settingsOf(second.db)).toEqual(expected);
    } finally {
      await second.close();
    }
  });

  it('opens a data directory made with PGlite defaults (128 MB of buffers) with PGLITE_SETTINGS', async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const dataDir = join(dir, 'pglite');
    const old = await PGlite.create(dataDir);
    await old.close();
    expect(readFileSync(join(dataDir, 'postgresql.conf'), 'utf8')).toMatch(
      /^shared_buffers = 128MB/m,
    );
    const handle = await openDatabase({ kind: 'pglite', dataDir });
    try {
      expect(await settingsOf(handle.db)).toEqual(expected);
    } finally {
      await handle.close();
    }
  });

  it('reports why a new data directory could not be created', async () => {
    // A file where the new cluster's `base` directory has to go.
    writeFileSync(join(dir, 'base'), 'not a directory');
    await expect(openDatabase({ kind: 'pglite', dataDir: dir })).rejects.toThrow(
      `creating the PGlite database in ${dir} failed`,
    );
  });
});
