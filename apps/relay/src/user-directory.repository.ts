/**
 * The relay's read-only view of the `users` table, which the auth service owns: whether a
 * username exists, whether it was deleted, and its public key (for transcript verification).
 * Password hashes are never selected.
 */
import { Inject, Injectable } from '@nestjs/common';
import { eq } from 'drizzle-orm';

import { DATABASE, type Database } from '@securechat/core';
import { users } from '@db/schema';

export interface DirectoryEntry {
  readonly username: string;
  /** Deleted accounts cannot receive new messages; their old messages and history stay. */
  readonly deleted: boolean;
  /** SubjectPublicKeyInfo DER. */
  readonly publicKey: Buffer;
}

@Injectable()
export class UserDirectoryRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async find(username: string): Promise<DirectoryEntry | undefined> {
    const [row] = await this.db
      .select({ username: users.username, deletedAt: users.deletedAt, publicKey: users.publicKey })
      .from(users)
      .where(eq(users.username, username))
      .limit(1);
    if (!row) return undefined;
    return { username: row.username, deleted: row.deletedAt !== null, publicKey: row.publicKey };
  }
}
