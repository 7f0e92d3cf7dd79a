/**
 * The JSON the admin API answers with: snake_case like the request bodies, timestamps as ISO
 * 8601 strings, nothing secret (no hash, no key bytes: the fingerprint names the key).
 */
import { type PresenceEntry } from '@securechat/core';
import { type PurgeOutcome } from '@securechat/relay';

import { type UserSummary } from '../auth.service';
import { type AuditEntry } from './admin-audit.repository';
import { purgeCursor } from './admin.schemas';

export interface UserView {
  readonly username: string;
  readonly fingerprint: string;
  readonly disabled: boolean;
  readonly deleted: boolean;
  readonly deleted_at: string | null;
  readonly created_at: string;
}

export function userView(user: UserSummary): UserView {
  return {
    username: user.username,
    fingerprint: user.fingerprint,
    disabled: user.disabled,
    deleted: user.deletedAt !== null,
    deleted_at: user.deletedAt?.toISOString() ?? null,
    created_at: user.createdAt.toISOString(),
  };
}

export interface AuditEntryView {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: AuditEntry['details'];
  readonly source_address: string | null;
}

export function auditEntryView(entry: AuditEntry): AuditEntryView {
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

export interface SessionView {
  readonly session_id: string;
  readonly username: string;
  readonly gateway: string;
  readonly source_address: string;
  readonly since: string;
}

export function sessionView(entry: PresenceEntry): SessionView {
  return {
    session_id: entry.sessionId,
    username: entry.username,
    gateway: entry.gateway,
    source_address: entry.sourceAddress,
    since: new Date(entry.since).toISOString(),
  };
}

export interface PurgedSessionView {
  readonly session_id: string;
  readonly username: string;
  readonly mode: string;
  readonly status: string;
  readonly started_at: string;
  readonly ended_at: string | null;
  /** The receipt is kept: it verifies against the stored chain heads after the purge. */
  readonly receipt: boolean;
  readonly countersigned: boolean;
  readonly chunks: number;
  readonly bytes: number;
}

export interface TranscriptPurgeView {
  readonly before: string;
  readonly dry_run: boolean;
  readonly sessions: PurgedSessionView[];
  readonly totals: {
    readonly sessions: number;
    readonly chunks: number;
    readonly bytes: number;
    readonly with_receipt: number;
    readonly without_receipt: number;
  };
  readonly more: boolean;
  readonly next_cursor: string | null;
}

export function transcriptPurgeView(outcome: PurgeOutcome): TranscriptPurgeView {
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
