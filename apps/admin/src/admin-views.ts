/**
 * The JSON the admin API answers with, from what the services return. Its shape is
 * @securechat/admin-api's (snake_case, instants as ISO 8601 strings, nothing secret), which
 * types each view here, so a view that strays from the published schema does not compile.
 */
import {
  type AdminAuditEntry,
  type AdminPurgeResult,
  type AdminSession,
  type AdminTranscriptSession,
  type AdminUser,
} from '@securechat/admin-api';
import { type UserSummary } from '@securechat/auth';
import { type PresenceEntry } from '@securechat/core';
import { type PurgeOutcome, type TranscriptSessionSummary } from '@securechat/relay';

import { type AuditEntry } from './admin-audit.repository';
import { purgeCursor } from './admin.schemas';

export function userView(user: UserSummary): AdminUser {
  return {
    username: user.username,
    fingerprint: user.fingerprint,
    disabled: user.disabled,
    deleted: user.deletedAt !== null,
    deleted_at: user.deletedAt?.toISOString() ?? null,
    created_at: user.createdAt.toISOString(),
  };
}

export function auditEntryView(entry: AuditEntry): AdminAuditEntry {
  return {
    id: entry.id,
    at: entry.at.toISOString(),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    details: entry.details,
    source_address: entry.sourceAddress,
  };
}

export function sessionView(entry: PresenceEntry): AdminSession {
  return {
    session_id: entry.sessionId,
    username: entry.username,
    gateway: entry.gateway,
    source_address: entry.sourceAddress,
    since: new Date(entry.since).toISOString(),
  };
}

export function transcriptSessionView(s: TranscriptSessionSummary): AdminTranscriptSession {
  return {
    session_id: s.sessionId,
    username: s.username,
    gateway: s.gateway,
    mode: s.mode,
    status: s.status,
    started_at: new Date(s.startedAt).toISOString(),
    ended_at: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
    records_purged_at:
      s.recordsPurgedAt === null ? null : new Date(s.recordsPurgedAt).toISOString(),
  };
}

export function transcriptPurgeView(outcome: PurgeOutcome): AdminPurgeResult {
  const { totals } = outcome;
  return {
    before: new Date(outcome.before).toISOString(),
    dry_run: outcome.dryRun,
    sessions: outcome.sessions.map((s) => ({
      session_id: s.sessionId,
      username: s.username,
      mode: s.mode,
      status: s.status,
      started_at: new Date(s.startedAt).toISOString(),
      ended_at: s.endedAt === undefined ? null : new Date(s.endedAt).toISOString(),
      receipt: s.receipt,
      countersigned: s.countersigned,
      chunks: s.chunks,
      bytes: s.bytes,
    })),
    totals: {
      sessions: totals.sessions,
      chunks: totals.chunks,
      bytes: totals.bytes,
      with_receipt: totals.withReceipt,
      without_receipt: totals.withoutReceipt,
    },
    more: outcome.more,
    next_cursor: outcome.next === undefined ? null : purgeCursor(outcome.next),
  };
}
