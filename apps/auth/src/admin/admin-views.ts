/**
 * The JSON the admin API answers with: snake_case like the request bodies, timestamps as ISO
 * 8601 strings, nothing secret (no hash, no key bytes: the fingerprint names the key).
 */
import { type PresenceEntry } from '@securechat/core';

import { type UserSummary } from '../auth.service';
import { type AuditEntry } from './admin-audit.repository';

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
