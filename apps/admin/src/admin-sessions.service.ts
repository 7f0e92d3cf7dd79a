import { Injectable } from '@nestjs/common';

import { type PresenceEntry, SessionControl } from '@securechat/core';

import { UserAccountService } from '@securechat/auth';

import { AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';

export const OPERATOR_CLOSE_REASON = 'closed by an operator';

/**
 * Live sessions across every gateway for the admin API (SessionControl does the work), with
 * an audit entry for each close. A user's sessions are only asked for once the name is known
 * to exist, so a typo answers user_not_found instead of an empty list.
 */
@Injectable()
export class AdminSessionsService {
  constructor(
    private readonly sessions: SessionControl,
    private readonly accounts: UserAccountService,
    private readonly audit: AdminAuditService,
  ) {}

  list(): Promise<PresenceEntry[]> {
    return this.sessions.list();
  }

  async listUser(username: string): Promise<PresenceEntry[]> {
    await this.accounts.getUser(username);
    return this.sessions.listUser(username);
  }

  /**
   * Orders the session closed on every gateway and audits the order once it is sent. Presence
   * not listing the session does not mean no gateway holds it (presence lags a login, and a
   * gateway may have lost its entry), so that is reported (`listed`), not refused.
   */
  async closeSession(
    context: AdminRequestContext,
    sessionId: string,
  ): Promise<{ closed: number; listed: boolean }> {
    const closed = await this.sessions.closeSession(sessionId, OPERATOR_CLOSE_REASON);
    const listed = closed > 0;
    await this.audit.record(context, 'session.close', sessionId, { listed });
    return { closed, listed };
  }

  async closeUser(context: AdminRequestContext, username: string): Promise<number> {
    await this.accounts.getUser(username);
    const closed = await this.sessions.closeUser(username, OPERATOR_CLOSE_REASON);
    await this.audit.record(context, 'user.sessions_close', username, { sessions_closed: closed });
    return closed;
  }
}
