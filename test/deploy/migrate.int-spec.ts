/**
 * `npm run db:migrate` (db/migrate.ts), the compose `migrate` service, run as a real process
 * against a fresh PostgreSQL database: it applies every checked-in migration once, reports what
 * it did, is a no-op the second time, and fails with a readable message and no secret.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { Client } from 'pg';

import { TEST_DATABASE_URL } from '../../libs/core/test/test-database';

const ROOT = resolve(__dirname, '../..');
const journalTags = (
  JSON.parse(readFileSync(join(ROOT, 'db/migrations/meta/_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  }
).entries.map((entry) => entry.tag);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function runMigrate(databaseUrl: string): Promise<Run> {
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['-r', '@swc-node/register', 'db/migrate.ts'],
      { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', DATABASE_URL: databaseUrl } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

function runShell(command: string): Promise<void> {
  return new Promise((resolveRun, reject) => {
    execFile('sh', ['-c', command], (error, _stdout, stderr) => {
      if (error) reject(new Error(`${command}: ${stderr}`));
      else resolveRun();
    });
  });
}

function migratedEvent(run: Run): { applied: string[]; latest: string; total: number } {
  const line = run.stdout.split('\n').find((l) => l.startsWith('{"event":"migrated"'));
  if (!line) throw new Error(`no migrated line (exit ${run.code}):\n${run.stdout}${run.stderr}`);
  return JSON.parse(line) as { applied: string[]; latest: string; total: number };
}

async function admin<T>(work: (client: Client) => Promise<T>, url = TEST_DATABASE_URL) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe('npm run db:migrate', () => {
  jest.setTimeout(60_000);
  const name = `securechat_migrate_${randomBytes(6).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;

  beforeAll(() => admin((client) => client.query(`CREATE DATABASE ${name}`)));
  afterAll(() => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));

  it('applies every migration to an empty database and says which', async () => {
    const run = await runMigrate(url.toString());

    expect(run.code).toBe(0);
    expect(migratedEvent(run)).toEqual({
      event: 'migrated',
      applied: journalTags,
      latest: journalTags.at(-1),
      total: journalTags.length,
    });
    const recorded = await admin(
      (client) => client.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations'),
      url.toString(),
    );
    expect(recorded.rows[0]).toEqual({ n: journalTags.length });
    const users = await admin(
      (client) => client.query(`SELECT to_regclass('public.users') IS NOT NULL AS present`),
      url.toString(),
    );
    expect(users.rows[0]).toEqual({ present: true });
  });

  it('applies nothing the second time', async () => {
    const run = await runMigrate(url.toString());

    expect(run.code).toBe(0);
    expect(migratedEvent(run).applied).toEqual([]);
    expect(run.stdout).toContain('up to date');
  });

  it('refuses to run without DATABASE_URL, as a configuration error', async () => {
    const run = await runMigrate('');

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DATABASE_URL: required to migrate');
  });

  it('fails on an unreachable database without printing its password', async () => {
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const run = await runMigrate(`postgres://postgres:${password}@127.0.0.1:1/${name}`);

    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toContain(password);
  });
});

describe('npm run db:migrate on a server without the database', () => {
  jest.setTimeout(60_000);
  // Upper case, a space and a double quote: only a quoted identifier creates exactly this name.
  const name = `SecureChat "fresh" ${randomBytes(6).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${encodeURIComponent(name)}`;
  const quoted = `"${name.replaceAll('"', '""')}"`;
  const exists = () =>
    admin((client) =>
      client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [
        name,
      ]),
    ).then((result) => result.rows[0]?.n === 1);

  afterAll(() => admin((client) => client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`)));

  it('creates it, says so, and migrates it', async () => {
    expect(await exists()).toBe(false);

    const run = await runMigrate(url.toString());

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`127.0.0.1:5432/${name}: created the database`);
    expect(migratedEvent(run).applied).toEqual(journalTags);
    expect(await exists()).toBe(true);
  });

  it('does not create it again', async () => {
    const run = await runMigrate(url.toString());

    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('created the database');
    expect(migratedEvent(run).applied).toEqual([]);
  });
});

describe('npm run db:migrate as a role that may not create databases', () => {
  jest.setTimeout(60_000);
  const role = `securechat_nocreatedb_${randomBytes(6).toString('hex')}`;
  const name = `securechat_missing_${randomBytes(6).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.username = role;
  url.pathname = `/${name}`;

  beforeAll(() => admin((client) => client.query(`CREATE ROLE ${role} LOGIN NOCREATEDB`)));
  afterAll(() =>
    admin(async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${role}`);
    }),
  );

  it('fails naming the command that creates it, and the command works', async () => {
    const run = await runMigrate(url.toString());

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`database "${name}" does not exist on 127.0.0.1:5432`);
    const command = `createdb -h 127.0.0.1 -p 5432 -U postgres -O ${role} ${name}`;
    expect(run.stderr).toContain(command);
    expect(run.stderr).toContain(`CREATE DATABASE "${name}" OWNER "${role}";`);

    // The command it printed, run as printed, is what makes the next migrate succeed.
    await runShell(command);
    const again = await runMigrate(url.toString());
    expect(again.code).toBe(0);
    expect(migratedEvent(again).applied).toEqual(journalTags);
  });
});
