import { sql } from 'drizzle-orm';

import { fingerprint } from '@securechat/protocol';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { ed25519Key } from '../test/auth-fixtures';
import { UserExistsError } from './errors/user-exists.error';
import { type NewUserRecord, UserRepository } from './user.repository';

const T0 = new Date('2025-06-01T12:00:00.000Z');

function newUser(username: string): NewUserRecord {
  const { spki } = ed25519Key();
  return {
    username,
    passwordHash:
      '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGg',
    publicKey: spki,
    fingerprint: fingerprint(spki),
    createdAt: T0,
  };
}

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('UserRepository on %s', (_name, open) => {
  let handle: TestDatabase;
  let users: UserRepository;
  beforeAll(async () => {
    handle = await open();
    users = new UserRepository(handle.db);
  }, 30_000); // PGlite's start-up alone takes seconds when the whole suite runs in parallel
  afterAll(() => handle.close());

  it('creates a user and finds it again, bytes and all', async () => {
    const alice = newUser('alice');
    const created = await users.create(alice);
    expect(created).toEqual({
      ...alice,
      disabled: false,
      deletedAt: null,
      credentialsVersion: 0,
      updatedAt: T0,
    });
    const found = await users.findByUsername('alice');
    expect(found).toEqual(created);
    expect(Buffer.isBuffer(found?.publicKey)).toBe(true);
    expect(found?.publicKey.equals(alice.publicKey)).toBe(true);
    expect(await users.findByUsername('Alice')).toBeUndefined();
    expect(await users.findByUsername('nobody')).toBeUndefined();
  });

  it('refuses a duplicate name with UserExistsError and keeps the first account', async () => {
    const first = newUser('bob');
    await users.create(first);
    const second = newUser('bob');
    await expect(users.create(second)).rejects.toBeInstanceOf(UserExistsError);
    expect((await users.findByUsername('bob'))?.fingerprint).toBe(first.fingerprint);
  });

  it('disables and re-enables', async () => {
    await users.create(newUser('carol'));
    const later = new Date(T0.getTime() + 60_000);
    expect(await users.setDisabled('carol', true, later)).toBe(true);
    expect(await users.findByUsername('carol')).toMatchObject({ disabled: true, updatedAt: later });
    expect(await users.setDisabled('carol', false, later)).toBe(true);
    expect((await users.findByUsername('carol'))?.disabled).toBe(false);
    expect(await users.setDisabled('nobody', true, later)).toBe(false);
  });

  it('marks a user deleted and keeps the row, which still holds the name', async () => {
    const dave = newUser('dave');
    await users.create(dave);
    const when = new Date(T0.getTime() + 120_000);
    expect(await users.markDeleted('dave', when)).toBe(true);
    const row = await users.findByUsername('dave');
    expect(row).toMatchObject({ username: 'dave', deletedAt: when, fingerprint: dave.fingerprint });
    expect(row?.publicKey.equals(dave.publicKey)).toBe(true);
    // Deleted is final: no second deletion, no re-enabling, no new account under the name.
    expect(await users.markDeleted('dave', when)).toBe(false);
    expect(await users.setDisabled('dave', false, when)).toBe(false);
    await expect(users.create(newUser('dave'))).rejects.toBeInstanceOf(UserExistsError);
    const count = await handle.db.execute(
      sql`select count(*)::int as n from users where username = 'dave'`,
    );
    expect((count as { rows: { n: number }[] }).rows[0]?.n).toBe(1);
  });

  it('lists every account by name, deleted ones included', async () => {
    expect((await users.list()).map((u) => [u.username, u.deletedAt !== null])).toEqual([
      ['alice', false],
      ['bob', false],
      ['carol', false],
      ['dave', true],
    ]);
  });

  it('searches by substring and pages by name, deleted accounts included', async () => {
    const page = (query: string | undefined, after: string | undefined, limit: number) =>
      users
        .search({ ...(query === undefined ? {} : { query }), ...(after ? { after } : {}), limit })
        .then((rows) => rows.map((u) => u.username));
    expect(await page(undefined, undefined, 3)).toEqual(['alice', 'bob', 'carol']);
    expect(await page(undefined, 'carol', 3)).toEqual(['dave']);
    expect(await page('a', undefined, 10)).toEqual(['alice', 'carol', 'dave']);
    expect(await page('a', 'alice', 1)).toEqual(['carol']);
    expect(await page('ali', undefined, 10)).toEqual(['alice']);
    // The query is text, not a pattern: `_` and `%` match only themselves.
    expect(await page('_', undefined, 10)).toEqual([]);
    expect(await page('%', undefined, 10)).toEqual([]);
  });

  it('replaces the password hash and the key of live accounts only', async () => {
    const later = new Date(T0.getTime() + 180_000);
    expect(await users.setPasswordHash('alice', 'new-hash', later)).toBe(true);
    expect(await users.findByUsername('alice')).toMatchObject({
      passwordHash: 'new-hash',
      updatedAt: later,
    });
    expect(await users.setPasswordHash('dave', 'new-hash', later)).toBe(false);
    expect(await users.setPasswordHash('nobody', 'new-hash', later)).toBe(false);

    const { spki } = ed25519Key();
    const updated = await users.setPublicKey('alice', spki, fingerprint(spki), later);
    expect(updated?.fingerprint).toBe(fingerprint(spki));
    expect((await users.findByUsername('alice'))?.publicKey.equals(spki)).toBe(true);
    expect(await users.setPublicKey('dave', spki, fingerprint(spki), later)).toBeUndefined();
    expect(await users.setPublicKey('nobody', spki, fingerprint(spki), later)).toBeUndefined();
  });

  it('raises the credential generation on every change that ends sessions, and only then', async () => {
    await users.create(newUser('frank'));
    const later = new Date(T0.getTime() + 240_000);
    const version = async () => (await users.findByUsername('frank'))?.credentialsVersion;
    expect(await version()).toBe(0);
    await users.setPasswordHash('frank', 'another-hash', later);
    expect(await version()).toBe(1);
    const { spki } = ed25519Key();
    expect(
      (await users.setPublicKey('frank', spki, fingerprint(spki), later))?.credentialsVersion,
    ).toBe(2);
    await users.setDisabled('frank', true, later);
    expect(await version()).toBe(3);
    // Enabling lets new logins in; it ends nothing, so sessions need not notice it.
    await users.setDisabled('frank', false, later);
    expect(await version()).toBe(3);
    // Concurrent changes each count: none is lost to another's read of the old value.
    await Promise.all([
      users.setPasswordHash('frank', 'h1', later),
      users.setPasswordHash('frank', 'h2', later),
    ]);
    expect(await version()).toBe(5);
    await users.markDeleted('frank', later);
    expect(await version()).toBe(6);
  });

  it('reads the states of many accounts in one query, leaving out names never taken', async () => {
    expect(await users.states([])).toEqual([]);
    const states = await users.states(['alice', 'carol', 'dave', 'frank', 'nobody']);
    expect(states.sort((a, b) => a.username.localeCompare(b.username))).toEqual([
      { username: 'alice', disabled: false, deletedAt: null, credentialsVersion: 2 },
      { username: 'carol', disabled: false, deletedAt: null, credentialsVersion: 1 },
      {
        username: 'dave',
        disabled: false,
        deletedAt: new Date(T0.getTime() + 120_000),
        credentialsVersion: 1,
      },
      {
        username: 'frank',
        disabled: false,
        deletedAt: new Date(T0.getTime() + 240_000),
        credentialsVersion: 6,
      },
    ]);
  });

  it('lets exactly one of two concurrent creations of one name win', async () => {
    const results = await Promise.allSettled([
      users.create(newUser('erin')),
      users.create(newUser('erin')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(UserExistsError);
  });
});
