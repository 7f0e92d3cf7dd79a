import { Inject, Injectable } from '@nestjs/common';
import { and, asc, eq, isNull } from 'drizzle-orm';

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

/** The `users` table: every query auth makes, and nothing else touches it. */
@Injectable()
export class UserRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /** The account with this exact name, whatever its state (disabled, deleted). */
  async findByUsername(username: string): Promise<UserRecord | undefined> {
    const rows = await this.db.select().from(users).where(eq(users.username, username)).limit(1);
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

  /** Sets `disabled` on an account that is not deleted; false when there is none. */
  async setDisabled(username: string, disabled: boolean, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ disabled, updatedAt: now })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning({ username: users.username });
    return rows.length === 1;
  }

  /**
   * Marks an account deleted (it can no longer log in or be looked up) and keeps the row: its
   * key still verifies stored messages and transcripts, and the name stays taken. False when
   * there is no such account or it was already deleted.
   */
  async markDeleted(username: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ deletedAt: now, updatedAt: now })
      .where(and(eq(users.username, username), isNull(users.deletedAt)))
      .returning({ username: users.username });
    return rows.length === 1;
  }

  /** Every account, deleted ones included, by name. */
  list(): Promise<UserRecord[]> {
    return this.db.select().from(users).orderBy(asc(users.username));
  }
}
