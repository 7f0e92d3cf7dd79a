import { generateKeyPairSync } from 'node:crypto';

import { Logger } from '@nestjs/common';

import {
  InvalidUserInputError,
  type InvalidUserField,
  UserExistsError,
  UserNotFoundError,
} from '@securechat/auth';
import { type SessionControl } from '@securechat/core';

import { asUserAccounts, fakeUserAccounts } from '../test/fake-user-accounts';
import { type AdminAuditRepository, type NewAuditEntry } from './admin-audit.repository';
import { AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';
import { AdminSessionsService } from './admin-sessions.service';
import { AdminUsersService, CLOSE_REASON } from './admin-users.service';

const T0 = Date.UTC(2026, 0, 1);
const CONTEXT: AdminRequestContext = { actor: 'token:abcdef012345', sourceAddress: '127.0.0.1' };
const PASSWORD = 'a long password';

/** SPKI DER of a fresh Ed25519 key. */
function newSpki(): Buffer {
  return generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
}
const spki = newSpki();

beforeAll(() => {
  jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
});

function harness() {
  const clock = { now: () => T0 };
  const users = fakeUserAccounts(new Date(T0));
  const accounts = asUserAccounts(users);
  const appended: NewAuditEntry[] = [];
  const auditRepository = {
    append: jest.fn((entry: NewAuditEntry) => {
      appended.push(entry);
      return Promise.resolve({ ...entry, id: String(appended.length) });
    }),
    list: jest.fn(),
  };
  const audit = new AdminAuditService(auditRepository as unknown as AdminAuditRepository, clock);
  const sessions = {
    list: jest.fn(() => Promise.resolve([])),
    listUser: jest.fn(() => Promise.resolve([])),
    closeSession: jest.fn(() => Promise.resolve(1)),
    closeUser: jest.fn(() => Promise.resolve(2)),
  };
  const control = sessions as unknown as SessionControl;
  const service = new AdminUsersService(accounts, control, audit);
  return {
    users,
    sessions,
    appended,
    service,
    sessionsService: new AdminSessionsService(control, accounts, audit),
    create: (username: string) =>
      service.create(CONTEXT, { username, password: PASSWORD, publicKey: spki }),
  };
}

/** The audit rows as (action, target, details). */
const log = (appended: NewAuditEntry[]) => appended.map((e) => [e.action, e.target, e.details]);

describe('AdminUsersService', () => {
  it('creates an account and audits it with its fingerprint, actor and address', async () => {
    const h = harness();
    const created = await h.create('alice');
    expect(created.username).toBe('alice');
    expect(h.appended).toEqual([
      {
        at: new Date(T0),
        actor: CONTEXT.actor,
        action: 'user.create',
        target: 'alice',
        details: { fingerprint: created.fingerprint },
        sourceAddress: '127.0.0.1',
      },
    ]);
    expect(JSON.stringify(h.appended)).not.toContain(PASSWORD);
  });

  it('audits nothing when a change is refused', async () => {
    const h = harness();
    await h.create('alice');
    h.appended.length = 0;
    const invalid = (field: InvalidUserField) => new InvalidUserInputError(field, 'is invalid');
    await expect(h.create('alice')).rejects.toBeInstanceOf(UserExistsError);
    h.users.createUser.mockRejectedValueOnce(invalid('username'));
    await expect(h.create('x')).rejects.toBeInstanceOf(InvalidUserInputError);
    await expect(h.service.disable(CONTEXT, 'nobody')).rejects.toBeInstanceOf(UserNotFoundError);
    h.users.resetPassword.mockRejectedValueOnce(invalid('password'));
    await expect(h.service.resetPassword(CONTEXT, 'alice', 'short')).rejects.toBeInstanceOf(
      InvalidUserInputError,
    );
    h.users.setPublicKey.mockRejectedValueOnce(invalid('public_key'));
    await expect(h.service.setPublicKey(CONTEXT, 'alice', newSpki())).rejects.toBeInstanceOf(
      InvalidUserInputError,
    );
    await expect(h.service.clearThrottle(CONTEXT, 'nobody')).rejects.toBeInstanceOf(
      UserNotFoundError,
    );
    expect(h.appended).toEqual([]);
    expect(h.sessions.closeUser).not.toHaveBeenCalled();
  });

  it('ends the live sessions of a disabled or deleted account, in that order', async () => {
    const h = harness();
    await h.create('alice');
    await h.create('bob');
    h.sessions.closeUser.mockImplementationOnce(() => {
      // The account is already disabled when the gateways are told: no way back in.
      expect(h.users.rows.get('alice')?.disabled).toBe(true);
      return Promise.resolve(3);
    });
    expect(await h.service.disable(CONTEXT, 'alice')).toBe(3);
    expect(h.sessions.closeUser).toHaveBeenLastCalledWith('alice', CLOSE_REASON.disabled);
    await h.service.enable(CONTEXT, 'alice');
    expect(h.users.rows.get('alice')?.disabled).toBe(false);
    expect(await h.service.delete(CONTEXT, 'bob')).toBe(2);
    expect(h.sessions.closeUser).toHaveBeenLastCalledWith('bob', CLOSE_REASON.deleted);
    expect(h.users.rows.get('bob')?.deletedAt).toEqual(new Date(T0));
    expect(log(h.appended).slice(2)).toEqual([
      ['user.disable', 'alice', {}],
      ['user.enable', 'alice', {}],
      ['user.delete', 'bob', {}],
    ]);
  });

  it('audits a disable or delete before the gateways are asked, and answers null when they cannot be', async () => {
    const h = harness();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await h.create('alice');
    await h.create('bob');
    const down = (action: string) => () => {
      // The change is already recorded when the order goes out (and fails).
      expect(h.appended.at(-1)?.action).toBe(action);
      return Promise.reject(new Error('redis publish timed out'));
    };
    h.sessions.closeUser
      .mockImplementationOnce(down('user.disable'))
      .mockImplementationOnce(down('user.delete'));
    expect(await h.service.disable(CONTEXT, 'alice')).toBeNull();
    expect(h.users.rows.get('alice')?.disabled).toBe(true);
    expect(await h.service.delete(CONTEXT, 'bob')).toBeNull();
    expect(h.users.rows.get('bob')?.deletedAt).toEqual(new Date(T0));
    expect(log(h.appended).slice(2)).toEqual([
      ['user.disable', 'alice', {}],
      ['user.delete', 'bob', {}],
    ]);
    expect(warn).toHaveBeenCalledTimes(2);
    warn.mockRestore();
  });

  it('resets passwords, replaces keys and clears throttles, each audited', async () => {
    const h = harness();
    await h.create('alice');
    const other = newSpki();
    await h.service.resetPassword(CONTEXT, 'alice', 'another long password');
    const { user: updated } = await h.service.setPublicKey(CONTEXT, 'alice', other);
    expect(h.users.rows.get('alice')?.publicKey.equals(other)).toBe(true);
    await h.service.clearThrottle(CONTEXT, 'alice');
    expect(log(h.appended).slice(1)).toEqual([
      ['user.password_reset', 'alice', {}],
      ['user.public_key_set', 'alice', { fingerprint: updated.fingerprint }],
      ['user.throttle_clear', 'alice', {}],
    ]);
  });

  it('ends the live sessions after a password reset or a key change, once the change is made and audited', async () => {
    const h = harness();
    await h.create('alice');
    const other = newSpki();
    h.sessions.closeUser
      .mockImplementationOnce(() => {
        // The password is replaced and the change is on record when the gateways hear.
        expect(h.users.resetPassword).toHaveBeenCalledWith('alice', 'another long password');
        expect(h.appended.at(-1)?.action).toBe('user.password_reset');
        return Promise.resolve(2);
      })
      .mockImplementationOnce(() => {
        expect(h.users.rows.get('alice')?.publicKey.equals(other)).toBe(true);
        expect(h.appended.at(-1)?.action).toBe('user.public_key_set');
        return Promise.resolve(1);
      });
    expect(await h.service.resetPassword(CONTEXT, 'alice', 'another long password')).toBe(2);
    expect(h.sessions.closeUser).toHaveBeenLastCalledWith('alice', CLOSE_REASON.passwordReset);
    const change = await h.service.setPublicKey(CONTEXT, 'alice', other);
    expect(change).toMatchObject({ user: { username: 'alice' }, sessionsClosed: 1 });
    expect(h.sessions.closeUser).toHaveBeenLastCalledWith('alice', CLOSE_REASON.publicKeySet);
  });

  it('answers null for the sessions of a password reset or key change the gateways cannot hear', async () => {
    const h = harness();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await h.create('alice');
    h.sessions.closeUser.mockRejectedValue(new Error('redis publish timed out'));
    expect(await h.service.resetPassword(CONTEXT, 'alice', 'another long password')).toBeNull();
    const change = await h.service.setPublicKey(CONTEXT, 'alice', newSpki());
    expect(change.sessionsClosed).toBeNull();
    // The changes stand and are audited all the same.
    expect(
      log(h.appended)
        .slice(1)
        .map(([action]) => action),
    ).toEqual(['user.password_reset', 'user.public_key_set']);
    expect(h.users.rows.get('alice')?.changes).toBe(2);
    expect(warn).toHaveBeenCalledTimes(2);
    warn.mockRestore();
  });

  it('pages by name with a cursor that is the last name of the page', async () => {
    const h = harness();
    for (const name of ['dora', 'alice', 'carol', 'bob', 'adam']) await h.create(name);
    const first = await h.service.list({ limit: 2 });
    expect(first.users.map((u) => u.username)).toEqual(['adam', 'alice']);
    expect(first.nextCursor).toBe('alice');
    const second = await h.service.list({ limit: 2, cursor: 'alice' });
    expect(second.users.map((u) => u.username)).toEqual(['bob', 'carol']);
    const last = await h.service.list({ limit: 2, cursor: 'carol' });
    expect(last).toMatchObject({ nextCursor: null });
    expect(last.users.map((u) => u.username)).toEqual(['dora']);
    // A page that ends exactly at the last name says there is no next page.
    expect((await h.service.list({ limit: 5 })).nextCursor).toBeNull();
    expect((await h.service.list({ limit: 10, query: 'a' })).users.map((u) => u.username)).toEqual([
      'adam',
      'alice',
      'carol',
      'dora',
    ]);
  });
});

describe('AdminSessionsService', () => {
  it('closes one session by id, audited whether or not presence listed it', async () => {
    const h = harness();
    expect(await h.sessionsService.closeSession(CONTEXT, 's-1')).toEqual({
      closed: 1,
      listed: true,
    });
    expect(h.sessions.closeSession).toHaveBeenCalledWith('s-1', 'closed by an operator');
    // The order went out: some gateway may still hold the session, so this is no 404.
    h.sessions.closeSession.mockResolvedValueOnce(0);
    expect(await h.sessionsService.closeSession(CONTEXT, 's-2')).toEqual({
      closed: 0,
      listed: false,
    });
    // An order that could not be sent is neither done nor audited.
    h.sessions.closeSession.mockRejectedValueOnce(new Error('redis down'));
    await expect(h.sessionsService.closeSession(CONTEXT, 's-3')).rejects.toThrow('redis down');
    expect(log(h.appended)).toEqual([
      ['session.close', 's-1', { listed: true }],
      ['session.close', 's-2', { listed: false }],
    ]);
  });

  it("lists and closes a user's sessions only for a name that exists", async () => {
    const h = harness();
    await h.create('alice');
    expect(await h.sessionsService.closeUser(CONTEXT, 'alice')).toBe(2);
    expect(await h.sessionsService.listUser('alice')).toEqual([]);
    await expect(h.sessionsService.closeUser(CONTEXT, 'nobody')).rejects.toBeInstanceOf(
      UserNotFoundError,
    );
    await expect(h.sessionsService.listUser('nobody')).rejects.toBeInstanceOf(UserNotFoundError);
    expect(h.sessions.closeUser).toHaveBeenCalledTimes(1);
    expect(log(h.appended).slice(1)).toEqual([
      ['user.sessions_close', 'alice', { sessions_closed: 2 }],
    ]);
  });
});
