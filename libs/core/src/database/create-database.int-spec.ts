/**
 * Creating the database DATABASE_URL names on a real PostgreSQL server: the services' start
 * (openDatabase) makes a missing one, and processes that start together all succeed.
 */
import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { TEST_DATABASE_URL } from '../../test/test-database';
import { createDatabase, ensureDatabase, quoteIdentifier } from './create-database';
import { openDatabase } from './database';

async function admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function exists(name: string): Promise<boolean> {
  const result = await admin((client) =>
    client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [
      name,
    ]),
  );
  return result.rows[0]?.n === 1;
}

describe('creating the database', () => {
  jest.setTimeout(60_000);
  const created: string[] = [];

  /** A name no database has, and its URL; dropped after the tests. */
  function freshDatabase(prefix: string): { name: string; url: string } {
    const name = `${prefix}_${randomBytes(6).toString('hex')}`;
    created.push(name);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${encodeURIComponent(name)}`;
    return { name, url: url.toString() };
  }

  afterAll(async () => {
    for (const name of created) {
      await admin((client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
      );
    }
  });

  it('happens when a service opens a database that does not exist', async () => {
    const { name, url } = freshDatabase('securechat_open');
    expect(await exists(name)).toBe(false);

    const told: string[] = [];
    const handle = await openDatabase({
      kind: 'postgres',
      url,
      poolSize: 1,
      onCreated: (created) => told.push(created),
    });
    await handle.close();

    expect(await exists(name)).toBe(true);
    // Said, so that an operator sees a typo in DATABASE_URL; and only the first time.
    expect(told).toEqual([name]);
    const again = await openDatabase({
      kind: 'postgres',
      url,
      poolSize: 1,
      onCreated: (created) => told.push(created),
    });
    await again.close();
    expect(told).toEqual([name]);
  });

  it('succeeds for every one of several processes starting together, created once', async () => {
    const { name, url } = freshDatabase('Securechat race "x"');

    const results = await Promise.all(Array.from({ length: 6 }, () => createDatabase(url)));

    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await exists(name)).toBe(true);
  });

  it('leaves an existing database alone', async () => {
    const { name, url } = freshDatabase('securechat_existing');
    await admin((client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));

    expect(await ensureDatabase(url)).toBe(false);
    expect(await ensureDatabase(url)).toBe(false);
  });
});
