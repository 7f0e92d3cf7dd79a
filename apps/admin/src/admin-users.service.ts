import { Injectable, Logger } from '@nestjs/common';

import { type UserSummary, UserAccountService } from '@securechat/auth';
import { SessionControl } from '@securechat/core';

import { AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';

/** A page of accounts. */
export interface UserPage {
  readonly users: UserSummary[];
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** Why a session was ended, as its gateway is told (see SessionControl). */
export const CLOSE_REASON = {
  disabled: 'account disabled by an operator',
  deleted: 'account deleted by an operator',
  passwordReset: 'password reset by an operator',
  publicKeySet: 'public key replaced by an operator',
} as const;

/** A key change, and how ending the sessions opened with the old key went (see disable). */
export interface PublicKeyChange {
  readonly user: UserSummary;
  /** How many sessions were ordered closed; null when the order could not be sent. */
  readonly sessionsClosed: number | null;
}

/**
 * Account administration for the admin API: UserAccountService does the work under the same rules
 * as registration, this adds what operators need around it: ending the live sessions opened
 * before a change of what a login checks (disable, delete, password reset, key change), and
 * one audit entry per change.
 *
 * Ending them is an order to every gateway, at most once: a gateway that misses it (cut off
 * from Redis at that moment) still ends those sessions within SECURECHAT_SESSION_RECHECK_SECONDS,
 * since each of these changes raises the account's credential generation, which gateways
 * recheck (apps/gateway-tcp session-recheck.ts).
 */
@Injectable()
export class AdminUsersService {
  readonly #logger = new Logger(AdminUsersService.name);

  constructor(
    private readonly accounts: UserAccountService,
    private readonly sessions: SessionControl,
    private readonly audit: AdminAuditService,
  ) {}

  async create(
    context: AdminRequestContext,
    input: { username: string; password: string; publicKey: Buffer },
  ): Promise<UserSummary> {
    const created = await this.accounts.createUser(input);
    await this.audit.record(context, 'user.create', created.username, {
      fingerprint: created.fingerprint,
    });
    return created;
  }

  async list(options: { query?: string; cursor?: string; limit: number }): Promise<UserPage> {
    const rows = await this.accounts.searchUsers({
      ...(options.query === undefined ? {} : { query: options.query }),
      ...(options.cursor === undefined ? {} : { after: options.cursor }),
      limit: options.limit + 1,
    });
    const users = rows.slice(0, options.limit);
    return {
      users,
      nextCursor: rows.length > options.limit ? (users[users.length - 1]?.username ?? null) : null,
    };
  }

  get(username: string): Promise<UserSummary> {
    return this.accounts.getUser(username);
  }

  /**
   * Disables the account, audits that, then ends its live sessions at once: a disabled user
   * must not keep chatting on a session opened before. Logins are refused from the first step
   * on, so a failure to reach the gateways leaves no way back in, only sessions to close
   * again: the change stands, is audited and answered as done, with `null` for the sessions.
   */
  async disable(context: AdminRequestContext, username: string): Promise<number | null> {
    await this.accounts.setDisabled(username, true);
    await this.audit.record(context, 'user.disable', username);
    return this.#closeSessions(username, CLOSE_REASON.disabled);
  }

  async enable(context: AdminRequestContext, username: string): Promise<void> {
    await this.accounts.setDisabled(username, false);
    await this.audit.record(context, 'user.enable', username);
  }

  /**
   * Sets a new password, audits that, then ends the live sessions, as disable does: whoever
   * logged in with the old password (the reason for a reset, often) must not stay logged in.
   * Returns how many sessions were ordered closed, null when the order could not be sent.
   */
  async resetPassword(
    context: AdminRequestContext,
    username: string,
    password: string,
  ): Promise<number | null> {
    await this.accounts.resetPassword(username, password);
    await this.audit.record(context, 'user.password_reset', username);
    return this.#closeSessions(username, CLOSE_REASON.passwordReset);
  }

  /**
   * Replaces the key, audits that, then ends the live sessions, as disable does: a session
   * opened with the old key (perhaps the reason for the change) must not outlive it. The new
   * key applies from the next login.
   */
  async setPublicKey(
    context: AdminRequestContext,
    username: string,
    publicKey: Buffer,
  ): Promise<PublicKeyChange> {
    const updated = await this.accounts.setPublicKey(username, publicKey);
    await this.audit.record(context, 'user.public_key_set', username, {
      fingerprint: updated.fingerprint,
    });
    return {
      user: updated,
      sessionsClosed: await this.#closeSessions(username, CLOSE_REASON.publicKeySet),
    };
  }

  /**
   * Deactivates the account (its messages and transcripts stay) and ends its sessions, as
   * disable does. Once deactivated the name is not found any more, so a retry could never
   * record the change: the audit entry is written before the gateways are asked.
   */
  async delete(context: AdminRequestContext, username: string): Promise<number | null> {
    await this.accounts.deleteUser(username);
    await this.audit.record(context, 'user.delete', username);
    return this.#closeSessions(username, CLOSE_REASON.deleted);
  }

  /** Throws UserNotFoundError for a name never taken, so a typo does not pass silently. */
  async clearThrottle(context: AdminRequestContext, username: string): Promise<void> {
    await this.accounts.getUser(username);
    await this.accounts.clearThrottle(username);
    await this.audit.record(context, 'user.throttle_clear', username);
  }

  /** How many sessions were ordered closed; null when the order could not be sent. */
  async #closeSessions(username: string, reason: string): Promise<number | null> {
    try {
      return await this.sessions.closeUser(username, reason);
    } catch (error) {
      this.#logger.warn(
        `live sessions of ${username} not closed, session control unavailable: ${error instanceof Error ? `${error.name}: ${error.message}` : 'error'}`,
      );
      return null;
    }
  }
}
