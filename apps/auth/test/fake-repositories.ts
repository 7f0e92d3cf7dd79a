/** Plain in-memory stand-ins for the auth repositories, with jest.fn()s to count calls. */
import { createHash } from 'node:crypto';

import { type ClockRepository } from '@securechat/core';

import { UserExistsError } from '../src/errors/user-exists.error';
import { type PasswordHasherRepository } from '../src/password-hasher.repository';
import {
  type NewUserRecord,
  type UserRecord,
  type UserRepository,
  type UserSearch,
} from '../src/user.repository';

/** What the fake hasher stores for `password`: deterministic, and not the password itself. */
export function fakeHash(password: string): string {
  return `fake$${createHash('sha256').update(password).digest('hex')}`;
}

export function fakeHasher() {
  return {
    hash: jest.fn((password: string) => Promise.resolve(fakeHash(password))),
    verify: jest.fn((phc: string, password: string) => Promise.resolve(phc === fakeHash(password))),
  };
}

export function asHasher(fake: ReturnType<typeof fakeHasher>): PasswordHasherRepository {
  return fake as unknown as PasswordHasherRepository;
}

/** What every change that ends sessions does to a row (UserRepository raises it in SQL). */
const nextVersion = (row: UserRecord) => ({ credentialsVersion: row.credentialsVersion + 1 });

/**
 * Mirrors UserRepository's semantics (names never reused, updates skip deleted rows, the
 * credential generation raised by password, key, disable and delete).
 */
export function fakeUsers() {
  const rows = new Map<string, UserRecord>();
  const live = (username: string) => {
    const row = rows.get(username);
    return row !== undefined && row.deletedAt === null ? row : undefined;
  };
  return {
    rows,
    /** Puts a row in directly, bypassing every rule (for states createUser cannot produce). */
    seed(
      row: Omit<
        UserRecord,
        'disabled' | 'deletedAt' | 'credentialsVersion' | 'createdAt' | 'updatedAt'
      > &
        Partial<UserRecord>,
    ) {
      const createdAt = new Date(0);
      rows.set(row.username, {
        disabled: false,
        deletedAt: null,
        credentialsVersion: 0,
        createdAt,
        updatedAt: createdAt,
        ...row,
      });
    },
    findByUsername: jest.fn((username: string) => Promise.resolve(rows.get(username))),
    create: jest.fn((user: NewUserRecord) => {
      if (rows.has(user.username)) return Promise.reject(new UserExistsError(user.username));
      const row: UserRecord = {
        ...user,
        disabled: false,
        deletedAt: null,
        credentialsVersion: 0,
        updatedAt: user.createdAt,
      };
      rows.set(user.username, row);
      return Promise.resolve(row);
    }),
    setDisabled: jest.fn((username: string, disabled: boolean, now: Date) => {
      const row = live(username);
      if (row !== undefined) {
        const credentialsVersion = row.credentialsVersion + (disabled ? 1 : 0);
        rows.set(username, { ...row, disabled, credentialsVersion, updatedAt: now });
      }
      return Promise.resolve(row !== undefined);
    }),
    markDeleted: jest.fn((username: string, now: Date) => {
      const row = live(username);
      if (row !== undefined) {
        rows.set(username, { ...row, deletedAt: now, updatedAt: now, ...nextVersion(row) });
      }
      return Promise.resolve(row !== undefined);
    }),
    states: jest.fn((usernames: readonly string[]) =>
      Promise.resolve(
        usernames.flatMap((username) => {
          const row = rows.get(username);
          if (row === undefined) return [];
          const { disabled, deletedAt, credentialsVersion } = row;
          return [{ username, disabled, deletedAt, credentialsVersion }];
        }),
      ),
    ),
    list: jest.fn(() =>
      Promise.resolve([...rows.values()].sort((a, b) => a.username.localeCompare(b.username))),
    ),
    search: jest.fn((search: UserSearch) =>
      Promise.resolve(
        [...rows.values()]
          .filter((u) => search.query === undefined || u.username.includes(search.query))
          .filter((u) => search.after === undefined || u.username > search.after)
          .sort((a, b) => (a.username < b.username ? -1 : 1))
          .slice(0, search.limit),
      ),
    ),
    setPasswordHash: jest.fn((username: string, passwordHash: string, now: Date) => {
      const row = live(username);
      if (row !== undefined) {
        rows.set(username, { ...row, passwordHash, updatedAt: now, ...nextVersion(row) });
      }
      return Promise.resolve(row !== undefined);
    }),
    setPublicKey: jest.fn((username: string, publicKey: Buffer, fingerprint: string, now: Date) => {
      const row = live(username);
      if (row === undefined) return Promise.resolve(undefined);
      const updated = { ...row, publicKey, fingerprint, updatedAt: now, ...nextVersion(row) };
      rows.set(username, updated);
      return Promise.resolve(updated);
    }),
  };
}

export function asUsers(fake: ReturnType<typeof fakeUsers>): UserRepository {
  return fake as unknown as UserRepository;
}

/** A clock that only moves when told. */
export function fixedClock(start: number) {
  let now = start;
  const clock = {
    now: jest.fn(() => now),
    advance(ms: number) {
      now += ms;
    },
  };
  return clock as typeof clock & ClockRepository;
}
