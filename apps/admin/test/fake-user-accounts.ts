/**
 * An in-memory stand-in for UserAccountService (apps/auth), for specs of what the admin API
 * adds around it. It keeps names and states only; the rules of an account's values are
 * UserAccountService's (its own spec), so a refusal is staged with `mockRejectedValueOnce`.
 */
import { createHash } from 'node:crypto';

import {
  type NewUser,
  type UserAccountService,
  UserExistsError,
  UserNotFoundError,
  type UserSummary,
} from '@securechat/auth';

interface Row {
  username: string;
  publicKey: Buffer;
  fingerprint: string;
  disabled: boolean;
  deletedAt: Date | null;
  createdAt: Date;
  /** How many changes that end sessions were made (password, key, disable, delete). */
  changes: number;
}

const fingerprintOf = (spki: Uint8Array) =>
  `sha256:${createHash('sha256').update(spki).digest('hex')}`;

/** `work`'s result, or its throw, as a promise (the service's methods are all async). */
function settle<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => resolve(work()));
}

function summary(row: Row): UserSummary {
  const { username, fingerprint, disabled, deletedAt, createdAt } = row;
  return { username, fingerprint, disabled, deletedAt, createdAt };
}

export function fakeUserAccounts(now: Date) {
  const rows = new Map<string, Row>();
  const live = (username: string): Row => {
    const row = rows.get(username);
    if (row === undefined || row.deletedAt !== null) throw new UserNotFoundError(username);
    return row;
  };
  return {
    rows,
    createUser: jest.fn((input: NewUser) => {
      if (rows.has(input.username)) return Promise.reject(new UserExistsError(input.username));
      const row: Row = {
        username: input.username,
        publicKey: input.publicKey,
        fingerprint: fingerprintOf(input.publicKey),
        disabled: false,
        deletedAt: null,
        createdAt: now,
        changes: 0,
      };
      rows.set(row.username, row);
      return Promise.resolve(summary(row));
    }),
    setDisabled: jest.fn((username: string, disabled: boolean) =>
      settle(() => {
        const row = live(username);
        row.disabled = disabled;
        row.changes += 1;
      }),
    ),
    deleteUser: jest.fn((username: string) =>
      settle(() => {
        const row = live(username);
        row.deletedAt = now;
        row.changes += 1;
      }),
    ),
    searchUsers: jest.fn((search: { query?: string; after?: string; limit: number }) =>
      Promise.resolve(
        [...rows.values()]
          .filter((u) => search.query === undefined || u.username.includes(search.query))
          .filter((u) => search.after === undefined || u.username > search.after)
          .sort((a, b) => (a.username < b.username ? -1 : 1))
          .slice(0, search.limit)
          .map(summary),
      ),
    ),
    getUser: jest.fn((username: string) =>
      settle(() => {
        const row = rows.get(username);
        if (row === undefined) throw new UserNotFoundError(username);
        return summary(row);
      }),
    ),
    resetPassword: jest.fn((username: string, _password: string) =>
      settle(() => {
        live(username).changes += 1;
      }),
    ),
    setPublicKey: jest.fn((username: string, spki: Uint8Array) =>
      settle(() => {
        const row = live(username);
        row.publicKey = Buffer.from(spki);
        row.fingerprint = fingerprintOf(spki);
        row.changes += 1;
        return summary(row);
      }),
    ),
    clearThrottle: jest.fn((_username: string) => Promise.resolve()),
  };
}

export function asUserAccounts(fake: ReturnType<typeof fakeUserAccounts>): UserAccountService {
  return fake as unknown as UserAccountService;
}
