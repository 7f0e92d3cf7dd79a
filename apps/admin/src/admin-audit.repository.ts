import { Inject, Injectable } from '@nestjs/common';
import { desc, lt } from 'drizzle-orm';

import { adminAudit } from '@db/schema';
import { type AdminAuditDetails } from '@securechat/admin-api';
import { DATABASE, type Database } from '@securechat/core';

/** JSON facts about one action, as the API shows them. */
export type AuditDetails = AdminAuditDetails;

/** A row to append. */
export interface NewAuditEntry {
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: AuditDetails;
  readonly sourceAddress: string | null;
}

/** A stored row; `id` as a decimal string (bigserial exceeds a JS number's safe range). */
export interface AuditEntry extends NewAuditEntry {
  readonly id: string;
}

/** The `admin_audit` table: appended to by every admin action, read newest first. */
@Injectable()
export class AdminAuditRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async append(entry: NewAuditEntry): Promise<AuditEntry> {
    const rows = await this.db.insert(adminAudit).values(entry).returning();
    return toEntry(rows[0]!);
  }

  /** Newest first; `before` (an id) starts the page after the previous page's last entry. */
  async list(options: { readonly limit: number; readonly before?: string }): Promise<AuditEntry[]> {
    const rows = await this.db
      .select()
      .from(adminAudit)
      .where(options.before === undefined ? undefined : lt(adminAudit.id, BigInt(options.before)))
      .orderBy(desc(adminAudit.id))
      .limit(options.limit);
    return rows.map(toEntry);
  }
}

function toEntry(row: typeof adminAudit.$inferSelect): AuditEntry {
  return {
    id: row.id.toString(),
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: row.details as AuditDetails,
    sourceAddress: row.sourceAddress,
  };
}
