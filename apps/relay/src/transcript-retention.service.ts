/**
 * Transcript retention: deleting the records of old sessions while keeping what makes them
 * evidence. A purge deletes a session's record chunks and marks its row `records_purged_at`;
 * the row keeps H2, both chain heads, the receipt and the countersignature, so a receipt
 * verifies against the stored heads after the purge as before (the client keeps its own
 * records, and its own transcript verifies against the same receipt). What is lost is the
 * server's copy of the records: the session can no longer be rebuilt or exported from the
 * store (TranscriptPurgedError). Sessions that ended without a receipt (`incomplete`, or never
 * ended) keep nothing signed once their records are gone; a purge says which those were.
 *
 * Two callers: the admin API (`POST /admin/transcripts/purge`, a cutoff given by the operator)
 * and the relay's own periodic purge (TranscriptRetentionScheduler, a cutoff of
 * SECURECHAT_TRANSCRIPT_RETENTION_DAYS before now; 0, the default, keeps everything).
 */
import { Injectable } from '@nestjs/common';

import { ClockRepository } from '@securechat/core';

import {
  type PurgeableSession,
  type PurgePosition,
  TranscriptRepository,
} from './transcript.repository';

/** Sessions purged per transaction by the periodic purge: a few thousand, never the table. */
export const PURGE_BATCH = 2000;
/** Sessions one admin purge call handles and lists, at most (it is one transaction). */
export const PURGE_MAX_LIMIT = 1000;
export const PURGE_DEFAULT_LIMIT = 100;

const DAY_MS = 24 * 60 * 60 * 1000;

/** What a purge removed (or, in a dry run, would remove). */
export interface PurgeTotals {
  readonly sessions: number;
  readonly chunks: number;
  readonly bytes: number;
  /** Sessions whose stored receipt still verifies against the stored chain heads. */
  readonly withReceipt: number;
  /** Sessions without a receipt: once their records are gone, nothing signed remains. */
  readonly withoutReceipt: number;
}

export interface PurgeRequest {
  /** The cutoff, ms since the epoch: sessions that ended (never ended: started) before it. */
  readonly before: number;
  /** Sessions handled by this call: 1..PURGE_MAX_LIMIT, default PURGE_DEFAULT_LIMIT. */
  readonly limit?: number;
  /** List what would be purged, delete nothing. */
  readonly dryRun?: boolean;
  /** Dry run only: continue after this session (the previous page's `next`). */
  readonly after?: PurgePosition;
}

export interface PurgeOutcome {
  readonly before: number;
  readonly dryRun: boolean;
  /** The sessions this call purged (would purge), oldest first. */
  readonly sessions: PurgeableSession[];
  readonly totals: PurgeTotals;
  /**
   * More sessions are due for this cutoff: purge again (each call takes the oldest ones left),
   * or, in a dry run, list the next page from `next`.
   */
  readonly more: boolean;
  /** Dry run: where the next page starts (pass as `after`); undefined on the last page. */
  readonly next: PurgePosition | undefined;
}

export function purgeTotals(sessions: readonly PurgeableSession[]): PurgeTotals {
  let chunks = 0;
  let bytes = 0;
  let withReceipt = 0;
  for (const session of sessions) {
    chunks += session.chunks;
    bytes += session.bytes;
    if (session.receipt) withReceipt += 1;
  }
  return {
    sessions: sessions.length,
    chunks,
    bytes,
    withReceipt,
    withoutReceipt: sessions.length - withReceipt,
  };
}

function addTotals(a: PurgeTotals, b: PurgeTotals): PurgeTotals {
  return {
    sessions: a.sessions + b.sessions,
    chunks: a.chunks + b.chunks,
    bytes: a.bytes + b.bytes,
    withReceipt: a.withReceipt + b.withReceipt,
    withoutReceipt: a.withoutReceipt + b.withoutReceipt,
  };
}

const positionOf = (session: PurgeableSession): PurgePosition => ({
  at: session.endedAt ?? session.startedAt,
  sessionId: session.sessionId,
});

@Injectable()
export class TranscriptRetentionService {
  constructor(
    private readonly transcripts: TranscriptRepository,
    private readonly clock: ClockRepository,
  ) {}

  /**
   * One bounded step of a purge with the operator's cutoff: deletes the records of the oldest
   * `limit` sessions due (one transaction) and says whether more are due; or, with `dryRun`,
   * lists them (a page from `after`) and deletes nothing. Idempotent: a session whose records
   * are gone is not due again, so a repeated call continues where the last one stopped.
   */
  async purge(request: PurgeRequest): Promise<PurgeOutcome> {
    const limit = Math.min(
      Math.max(Math.trunc(request.limit ?? PURGE_DEFAULT_LIMIT), 1),
      PURGE_MAX_LIMIT,
    );
    const dryRun = request.dryRun === true;
    if (dryRun) {
      // One more than asked tells whether there is a next page without a count.
      const page = await this.transcripts.listPurgeable(request.before, limit + 1, request.after);
      const sessions = page.slice(0, limit);
      const last = sessions.at(-1);
      const more = page.length > limit;
      return {
        before: request.before,
        dryRun,
        sessions,
        totals: purgeTotals(sessions),
        more,
        next: more && last ? positionOf(last) : undefined,
      };
    }
    const sessions = await this.transcripts.purgeRecords(request.before, limit, this.clock.now());
    return {
      before: request.before,
      dryRun,
      sessions,
      totals: purgeTotals(sessions),
      more: await this.transcripts.hasPurgeable(request.before),
      next: undefined,
    };
  }

  /**
   * The periodic purge: the records of every session that ended (never ended: started) more
   * than `retentionDays` days ago, in transactions of `batchSize` (PURGE_BATCH) sessions until
   * none is due, or until `stop()` says to stop (checked between batches). Several relays may
   * run it at once: each takes sessions the others do not hold. Answers the cutoff and what
   * it deleted.
   */
  async purgeExpired(
    retentionDays: number,
    options: { readonly stop?: () => boolean; readonly batchSize?: number } = {},
  ): Promise<PurgeTotals & { readonly before: number }> {
    const batchSize = options.batchSize ?? PURGE_BATCH;
    const now = this.clock.now();
    const before = now - retentionDays * DAY_MS;
    let totals = purgeTotals([]);
    for (;;) {
      const batch = await this.transcripts.purgeRecords(before, batchSize, now);
      totals = addTotals(totals, purgeTotals(batch));
      if (batch.length < batchSize || options.stop?.() === true) break;
    }
    return { before, ...totals };
  }
}
