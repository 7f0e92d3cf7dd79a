import { Injectable } from '@nestjs/common';

import { TranscriptExportService, type TranscriptSessionSummary } from '@securechat/relay';

import { AuthService } from '../auth.service';
import { AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';
import { transcriptCursor } from './admin.schemas';

/** A page of a user's stored sessions, newest first. */
export interface TranscriptPage {
  readonly sessions: TranscriptSessionSummary[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  readonly nextCursor: string | null;
}

/**
 * Stored transcripts for the admin API (TranscriptExportService does the work). An export
 * hands out a whole conversation, so it is audited like a change.
 */
@Injectable()
export class AdminTranscriptsService {
  constructor(
    private readonly transcripts: TranscriptExportService,
    private readonly auth: AuthService,
    private readonly audit: AdminAuditService,
  ) {}

  /** Throws UserNotFoundError for a name never taken (a deleted user's sessions are listed). */
  async list(
    username: string,
    options: { limit: number; cursor?: { startedAt: number; sessionId: string } },
  ): Promise<TranscriptPage> {
    await this.auth.getUser(username);
    const sessions = await this.transcripts.listSessions(username, {
      limit: options.limit,
      ...(options.cursor === undefined ? {} : { after: options.cursor }),
    });
    const last = sessions[sessions.length - 1];
    return {
      sessions,
      nextCursor: sessions.length === options.limit && last ? transcriptCursor(last) : null,
    };
  }

  /**
   * JSON lines in the libs/client transcript-log format (see TranscriptExportService), one
   * string per line, read from the store as they are consumed. Refusals (unknown session,
   * digest mode, no server key) are thrown here, unaudited. An export that will go out is
   * audited before its first line: its size is not known until it has been sent, so the
   * entry says it was streamed.
   */
  async export(context: AdminRequestContext, sessionId: string): Promise<AsyncIterable<string>> {
    const lines = await this.transcripts.exportLines(sessionId);
    await this.audit.record(context, 'transcript.export', sessionId, { streamed: true });
    return lines;
  }
}
