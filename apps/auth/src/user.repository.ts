import { Inject, Injectable } from '@nestjs/common';
import { and, asc, eq, gt, inArray, isNull, sql, type SQL } from 'drizzle-orm';

import { users } from '@db/schema';
import { DATABASE, type Database } from '@securechat/core';

import { UserExistsError } from './errors/user-exists.error';

/** A row of `users` as stored. */
export type UserRecord = typeof users.$inferSelect;

/** What creating an account needs; timestamps come from the caller's clock. */
export interface NewUserRecord {
  readonly username: string;
  /** argon2id PHC string. */
  readonly passwordHash: string;
  /** SPKI DER. */
  readonly publicKey: Buffer;
  /** `sha256:` + hex of publicKey. */
  readonly fingerprint: string;
  readonly createdAt: Date;
}

/** What a gateway's recheck of its sessions needs of an account (UserRepository.states). */
export type UserStateRecord = Pick<
  UserRecord,
  'username' | 'disabled' | 'deletedAt' | 'credentialsVersion'
>;

/**
 * The next credential generation, in the UPDATE itself: concurrent changes each raise it, so
 * no two changes leave the same value behind.
 */
const nextCredentialsVersion = sql`${users.credentialsVersion} + 1`;

/** One page of an account search (see UserRepository.search). */
export interface UserSearch {
  /** Only names containing this text; every name when absent. */
  readonly query?: string;
  /** Only names after this one (the last name of the previous page). */
  readonly after?: string;
  readonly limit: number;
}

/**
 * The lookup every login makes, built once (Drizzle's query building cost more than the
 * primary-key read itself) and, on PostgreSQL, prepared once per connection.
 */
function prepareFindByUsername(db: Database) {
  return db
    .select()
    .from(users)
    .where(eq(users.username, sql.placeholder('username')))
    .limit(1)
    .prepare('auth_find_user');
}

/** The `users` table: every query auth makes, and nothing else touches it. */
@Injectable()
export class UserRepository {
  readonly #findByUsername: ReturnType<typeof prepareFindByUsername>;

  constructor(@Inject(DATABASE) private readonly db: Database) {
    this.#findByUsername = prepareFindByUsername(db);
  }

  /** The account with this exact name, whatever its state (disabled, deleted). */
  async findByUsername(username: string): Promise<UserRecord | undefined> {
    const rows = await this.#findByUsername.execute({ username });
    return rows[0];
  }

  /**
   * Inserts the account. Throws UserExistsError when the name is taken, including by a
   * deleted account; the primary key decides, so two concurrent registrations cannot both win.
   */
  async create(user: NewUserRecord): Promise<UserRecord> {
    const rows = await this.db
      .insert(users)
      .values({ ...user, updatedAt: user.createdAt })
      .onConflictDoNothing({ target: users.username })
      .returning();
    const created = rows[0];
    if (created === undefined) throw new UserExistsError(user.username);
    return created;
  }

  /**
   * Sets `disabled` on an account that is not deleted; false when there is none. Disabling
   * raises the credential generation (it ends the sessions opened before); enabling does not.
   */
  async setDisabled(username: string, disabled: boolean, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({
        disabled,
        updatedAt: now,
        ...(disabled ? { credentialsVersion: nextCredentialsVersion } : {}),
      })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning({ username: users.username });
    return rows.length === 1;
  }

  /**
   * Marks an account deleted (it can no longer log in or be looked up) and keeps the row: its
   * key still verifies stored messages and transcripts, and the name stays taken. False when
   * there is no such account or it was already deleted. Raises the credential generation.
   */
  async markDeleted(username: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ deletedAt: now, updatedAt: now, credentialsVersion: nextCredentialsVersion })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning({ username: users.username });
    return rows.length === 1;
  }

  /**
   * The state of each named account that exists, deleted ones included, in one query on the
   * primary key; names that were never taken are left out. The caller bounds the list.
   */
  states(usernames: readonly string[]): Promise<UserStateRecord[]> {
    if (usernames.length === 0) return Promise.resolve([]);
    return this.db
      .select({
        username: users.username,
        disabled: users.disabled,
        deletedAt: users.deletedAt,
        credentialsVersion: users.credentialsVersion,
      })
      .from(users)
      .where(inArray(users.username, [...usernames]));
  }

  /** Every account, deleted ones included, by name. */
  list(): Promise<UserRecord[]> {
    return this.db.select().from(users).orderBy(asc(users.username));
  }

  /**
   * A page of accounts by name, deleted ones included. Keyset-paged on the primary key, so a
   * page costs the same however deep it is. `strpos` rather than LIKE: the query is matched
   * as plain text, with no wildcard to escape.
   */
  search(options: UserSearch): Promise<UserRecord[]> {
    const conditions: SQL[] = [];
    if (options.query !== undefined && options.query !== '') {
      conditions.push(sql`strpos(${users.username}, ${options.query}) > 0`);
    }
    if (options.after !== undefined) conditions.push(gt(users.username, options.after));
    return this.db
      .select()
      .from(users)
      .where(and(...conditions))
      .orderBy(asc(users.username))
      .limit(options.limit);
  }

  /**
   * Replaces the password hash of an account that is not deleted, raising its credential
   * generation; false when there is none.
   */
  async setPasswordHash(username: string, passwordHash: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ passwordHash, updatedAt: now, credentialsVersion: nextCredentialsVersion })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning({ username: users.username });
    return rows.length === 1;
  }

  /**
   * Replaces the public key (and its fingerprint) of an account that is not deleted, raising
   * its credential generation; the row as updated, or undefined when there is none.
   */
  async setPublicKey(
    username: string,
    publicKey: Buffer,
    fingerprint: string,
    now: Date,
  ): Promise<UserRecord | undefined> {
    const rows = await this.db
      .update(users)
      .set({ publicKey, fingerprint, updatedAt: now, credentialsVersion: nextCredentialsVersion })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning();
    return rows[0];
  }
}
