import { Logger } from '@nestjs/common';

import { fingerprint } from '@securechat/protocol';

import {
  type ConfigOverrides,
  ed25519Key,
  loginCommand,
  rsaKey,
  type UserKey,
} from '../test/auth-fixtures';
import { type Harness, PASSWORD, serviceHarness, T0 } from '../test/service-harness';
import { InvalidUserInputError } from './errors/invalid-user-input.error';
import { UserExistsError } from './errors/user-exists.error';
import { UserNotFoundError } from './errors/user-not-found.error';

const AUTH_FAILED = { ok: false, code: 'auth_failed' };

let rsa: UserKey;
let ed: UserKey;
beforeAll(() => {
  for (const level of ['log', 'warn', 'error'] as const) {
    jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  }
  rsa = rsaKey(2048);
  ed = ed25519Key();
});

const harness = (overrides: ConfigOverrides = {}) => serviceHarness({ rsa, ed }, overrides);

describe('UserAccountService account administration', () => {
  it('creates accounts under the registration rules, with typed errors', async () => {
    const h = await harness({ allowRegistration: false });
    const created = await h.accounts.createUser({
      username: 'op_made',
      password: PASSWORD,
      publicKey: ed.spki,
    });
    expect(created).toEqual({
      username: 'op_made',
      fingerprint: fingerprint(ed.spki),
      disabled: false,
      deletedAt: null,
      createdAt: new Date(T0),
    });

    const attempt = (username: string, password: string, publicKey: Buffer) =>
      h.accounts.createUser({ username, password, publicKey }).catch((e: unknown) => e);
    const badName = await attempt('x', PASSWORD, ed.spki);
    expect(badName).toBeInstanceOf(InvalidUserInputError);
    expect(badName).toMatchObject({ code: 'invalid_user_input', field: 'username' });
    const badPassword = (await attempt('someone', 'short', ed.spki)) as Error;
    expect(badPassword).toMatchObject({ code: 'invalid_user_input', field: 'password' });
    expect(badPassword.message).not.toContain('short');
    expect(await attempt('someone', PASSWORD, rsaKey(1024).spki)).toMatchObject({
      field: 'public_key',
    });
    const taken = await attempt('alice', PASSWORD, ed.spki);
    expect(taken).toBeInstanceOf(UserExistsError);
    expect(taken).toMatchObject({ code: 'user_exists', username: 'alice' });
  });

  it('disables, re-enables and deletes, refusing unknown or deleted accounts', async () => {
    const h = await harness();
    await h.accounts.setDisabled('alice', true);
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toStrictEqual(AUTH_FAILED);
    await h.accounts.setDisabled('alice', false);
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toMatchObject({ ok: true });

    h.clock.advance(5000);
    await h.accounts.deleteUser('alice');
    expect(h.users.rows.get('alice')?.deletedAt).toEqual(new Date(T0 + 5000));
    await expect(h.accounts.deleteUser('alice')).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(h.accounts.setDisabled('alice', true)).rejects.toMatchObject({
      code: 'user_not_found',
    });
    await expect(h.accounts.setDisabled('nobody', true)).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(h.accounts.deleteUser('NOT VALID')).rejects.toBeInstanceOf(UserNotFoundError);
  });

  it('lists accounts, deleted ones included, without hashes or key bytes', async () => {
    const h = await harness();
    await h.accounts.deleteUser('erin');
    const list = await h.accounts.searchUsers({ limit: 10 });
    expect(list.map((u) => [u.username, u.deletedAt !== null])).toEqual([
      ['alice', false],
      ['erin', true],
    ]);
    expect(JSON.stringify(list)).not.toContain('fake$');
    expect(Object.keys(list[0]!).sort()).toEqual([
      'createdAt',
      'deletedAt',
      'disabled',
      'fingerprint',
      'username',
    ]);
  });
});

describe('UserAccountService changes, as the next login sees them', () => {
  const loginAs = (h: Harness, password: string, key: UserKey) =>
    h.service.login(loginCommand({ username: 'alice', password, key }));

  it('gets one account, deleted ones included, and pages through a search', async () => {
    const h = await harness();
    await h.accounts.deleteUser('erin');
    expect(await h.accounts.getUser('erin')).toMatchObject({
      username: 'erin',
      deletedAt: new Date(T0),
    });
    await expect(h.accounts.getUser('nobody')).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(h.accounts.getUser('NOT VALID')).rejects.toBeInstanceOf(UserNotFoundError);
    expect(h.users.findByUsername).not.toHaveBeenCalledWith('NOT VALID');
    expect((await h.accounts.searchUsers({ query: 'i', limit: 1 })).map((u) => u.username)).toEqual(
      ['alice'],
    );
    expect(
      (await h.accounts.searchUsers({ query: 'i', after: 'alice', limit: 1 })).map(
        (u) => u.username,
      ),
    ).toEqual(['erin']);
  });

  it('resets a password: the old one fails at once, the new one logs in', async () => {
    const h = await harness();
    await h.accounts.resetPassword('alice', 'a brand new password');
    expect(await loginAs(h, PASSWORD, rsa)).toStrictEqual(AUTH_FAILED);
    expect(await loginAs(h, 'a brand new password', rsa)).toMatchObject({ ok: true });
    const short = await h.accounts.resetPassword('alice', 'short').catch((e: unknown) => e);
    expect(short).toMatchObject({ code: 'invalid_user_input', field: 'password' });
    await h.accounts.deleteUser('erin');
    await expect(h.accounts.resetPassword('erin', PASSWORD)).rejects.toBeInstanceOf(
      UserNotFoundError,
    );
    await expect(h.accounts.resetPassword('nobody', PASSWORD)).rejects.toBeInstanceOf(
      UserNotFoundError,
    );
  });

  it('replaces a public key under the key policy; the next login needs the new key', async () => {
    const h = await harness();
    const updated = await h.accounts.setPublicKey('alice', ed.spki);
    expect(updated).toMatchObject({ username: 'alice', fingerprint: fingerprint(ed.spki) });
    expect(await loginAs(h, PASSWORD, rsa)).toStrictEqual(AUTH_FAILED);
    expect(await loginAs(h, PASSWORD, ed)).toMatchObject({ ok: true });
    for (const bad of [
      rsaKey(1024).spki,
      Buffer.from('not a key'),
      Buffer.concat([ed.spki, Buffer.of(0)]),
    ]) {
      await expect(h.accounts.setPublicKey('alice', bad)).rejects.toMatchObject({
        code: 'invalid_user_input',
        field: 'public_key',
      });
    }
    await expect(h.accounts.setPublicKey('nobody', ed.spki)).rejects.toBeInstanceOf(
      UserNotFoundError,
    );
  });

  it('raises the credential generation a login answers with on every change that ends sessions', async () => {
    const h = await harness();
    const version = async () => {
      const result = await loginAs(h, PASSWORD, rsa);
      return result.ok ? result.credentialsVersion : result.code;
    };
    expect(await version()).toBe(0);
    await h.accounts.resetPassword('alice', PASSWORD);
    expect(await version()).toBe(1);
    await h.accounts.setPublicKey('alice', rsa.spki);
    expect(await version()).toBe(2);
    await h.accounts.setDisabled('alice', true);
    await h.accounts.setDisabled('alice', false);
    expect(await version()).toBe(3);
  });

  it('clears the login throttle of a username, under the key logins are counted by', async () => {
    const h = await harness();
    for (let i = 0; i < 5; i++) await loginAs(h, 'wrong password!', rsa);
    expect(await loginAs(h, PASSWORD, rsa)).toMatchObject({ code: 'rate_limited' });
    await h.accounts.clearThrottle('alice');
    expect(await loginAs(h, PASSWORD, rsa)).toMatchObject({ ok: true });
  });
});
