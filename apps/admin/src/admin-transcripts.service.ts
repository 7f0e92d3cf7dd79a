import { Injectable } from '@nestjs/common';

import { UserAccountService } from '@securechat/auth';
import { ClockRepository } from '@securechat/core';
import {
  type PurgeOutcome,
  type PurgePosition,
  TranscriptExportService,
  TranscriptRetentionService,
  type TranscriptSessionSummary,
} from '@securechat/relay';

import { AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';
import { transcriptCursor } from './admin.schemas';
import { AdminBadRequestError } from './errors/admin-bad-request.error';

/** A page of a user's stored sessions, newest first. */
export interface TranscriptPage {
  readonly sessions: TranscriptSessionSummary[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  readonly nextCursor: string | null;
}

/** What the admin API asks a purge to do (admin.schemas.ts transcriptPurgeBody). */
export interface PurgeInput {
  /** ms since the epoch. */
  readonly before: number;
  readonly dryRun: boolean;
  readonly limit: number;
  readonly cursor?: PurgePosition;
}

/**
 * Stored transcripts for the admin API (TranscriptExportService and TranscriptRetentionService
 * do the work). An export hands out a whole conversation and a purge deletes records, so both
 * are audited like a change; a dry run changes nothing and is not.
 */
@Injectable()
export class AdminTranscriptsService {
  constructor(
    private readonly transcripts: TranscriptExportService,
    private readonly accounts: UserAccountService,
    private readonly audit: AdminAuditService,
    private readonly retention: TranscriptRetentionService,
    private readonly clock: ClockRepository,
  ) {}

  /** Throws UserNotFoundError for a name never taken (a deleted user's sessions are listed). */
  async list(
    username: string,
    options: { limit: number; cursor?: { startedAt: number; sessionId: string } },
  ): Promise<TranscriptPage> {
    await this.accounts.getUser(username);
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

  /**
   * One step of a purge (TranscriptRetentionService.purge): the records of at most `limit`
   * sessions that ended before the cutoff are deleted, their rows kept; or, as a dry run,
   * listed. A cutoff in the future is refused: it would take sessions that are still going on.
   * A purge is audited once it has committed, with its counts (the sessions themselves carry
   * `records_purged_at`); the target is the cutoff.
   */
  async purge(context: AdminRequestContext, input: PurgeInput): Promise<PurgeOutcome> {
    if (input.before > this.clock.now()) {
      throw new AdminBadRequestError([{ field: 'before', message: 'must not be in the future' }]);
    }
    const outcome = await this.retention.purge({
      before: input.before,
      dryRun: input.dryRun,
      limit: input.limit,
      ...(input.cursor === undefined ? {} : { after: input.cursor }),
    });
    if (!outcome.dryRun) {
      const { totals } = outcome;
      await this.audit.record(context, 'transcript.purge', new Date(input.before).toISOString(), {
        sessions: totals.sessions,
        chunks: totals.chunks,
        bytes: totals.bytes,
        with_receipt: totals.withReceipt,
        without_receipt: totals.withoutReceipt,
        more: outcome.more,
      });
    }
    return outcome;
  }
}
