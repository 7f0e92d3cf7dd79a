import { Injectable } from '@nestjs/common';

import { ClockRepository } from '@securechat/core';

import { type AuditDetails, type AuditEntry, AdminAuditRepository } from './admin-audit.repository';
import { type AdminRequestContext } from './admin-request-context';

/** What the admin API records. One name per kind of action, stable: operators grep for them. */
export type AuditAction =
  | 'user.create'
  | 'user.disable'
  | 'user.enable'
  | 'user.password_reset'
  | 'user.public_key_set'
  | 'user.delete'
  | 'user.throttle_clear'
  | 'session.close'
  | 'user.sessions_close'
  | 'transcript.export'
  | 'transcript.purge';

/** A page of the audit log. */
export interface AuditPage {
  readonly entries: AuditEntry[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  readonly nextCursor: string | null;
}

/**
 * The audit log of the admin API. An action is recorded once it has taken effect, so the log
 * lists what was done, not what was attempted; refused requests (bad input, unknown user, bad
 * token) change nothing and are not recorded.
 */
@Injectable()
export class AdminAuditService {
  constructor(
    private readonly audit: AdminAuditRepository,
    private readonly clock: ClockRepository,
  ) {}

  async record(
    context: AdminRequestContext,
    action: AuditAction,
    target: string,
    details: AuditDetails = {},
  ): Promise<void> {
    await this.audit.append({
      at: new Date(this.clock.now()),
      actor: context.actor,
      action,
      target,
      details,
      sourceAddress: context.sourceAddress,
    });
  }

  async list(limit: number, cursor?: string): Promise<AuditPage> {
    // One row more than asked tells whether there is a next page without a count.
    const rows = await this.audit.list({ limit: limit + 1, ...(cursor ? { before: cursor } : {}) });
    const entries = rows.slice(0, limit);
    return {
      entries,
      nextCursor: rows.length > limit ? (entries[entries.length - 1]?.id ?? null) : null,
    };
  }
}
