/**
 * Session transcripts (tables `transcript_sessions`, `transcript_records`; docs/PROTOCOL.md
 * §8). Append-only: a session row is inserted when the session opens and completed exactly
 * once when it closes; records are only ever inserted. Nothing here updates a closed session
 * or deletes anything, so what was stored is what an auditor later verifies (§8.5).
 */
import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';

import {
  DATABASE,
  type Database,
  type TranscriptBatch,
  type TranscriptMode,
  type TranscriptStatus,
  type TranscriptView,
} from '@securechat/core';
import { transcriptRecords, transcriptSessions } from '@db/schema';

import { type TranscriptAppendResult } from './relay.results';

/** Record rows per insert statement: 5 parameters each, well under Postgres' 65,535. */
const RECORD_ROWS_PER_STATEMENT = 1_000;

/** A view (§8.3 inputs) as stored: raw chain bytes. */
export interface StoredView {
  readonly c2sCount: number;
  readonly c2sChain: Buffer;
  readonly s2cCount: number;
  readonly s2cChain: Buffer;
}

export interface StoredTranscriptSession {
  readonly sessionId: string;
  readonly username: string;
  readonly gateway: string;
  readonly mode: TranscriptMode;
  /** H2: the start of both chains (§8.1). */
  readonly h2: Buffer;
  readonly startedAt: number;
  readonly endedAt: number | undefined;
  readonly status: TranscriptStatus;
  /** The server's view at the end: the receipt's when one was sent. */
  readonly serverView: StoredView | undefined;
  readonly receiptSignature: Buffer | undefined;
  /** The client's view from `countersign`, when one arrived. */
  readonly clientView: StoredView | undefined;
  readonly countersignature: Buffer | undefined;
}

/** A session row without chains and signatures: one line of a listing. */
export interface StoredSessionSummary {
  readonly sessionId: string;
  readonly username: string;
  readonly gateway: string;
  readonly mode: TranscriptMode;
  readonly status: TranscriptStatus;
  readonly startedAt: number;
  readonly endedAt: number | undefined;
}

/** A session's place in a newest-first listing: the last one of a page, to continue after. */
export interface SessionListPosition {
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly sessionId: string;
}

export interface StoredTranscriptRecord {
  readonly position: number;
  readonly direction: 'c2s' | 's2c';
  readonly chained: boolean;
  readonly plaintext: Buffer;
}

export interface StoredTranscript {
  readonly session: StoredTranscriptSession;
  /** In position order. Empty for `digest` sessions. */
  readonly records: StoredTranscriptRecord[];
}

const fromBase64 = (text: string) => Buffer.from(text, 'base64');

function storedView(
  c2sCount: number | null,
  c2sChain: Buffer | null,
  s2cCount: number | null,
  s2cChain: Buffer | null,
): StoredView | undefined {
  if (c2sCount === null || c2sChain === null || s2cCount === null || s2cChain === null) {
    return undefined;
  }
  return { c2sCount, c2sChain, s2cCount, s2cChain };
}

function viewColumns(view: TranscriptView | undefined) {
  return view
    ? {
        c2sCount: view.c2sCount,
        c2sChain: fromBase64(view.c2sChain),
        s2cCount: view.s2cCount,
        s2cChain: fromBase64(view.s2cChain),
      }
    : { c2sCount: null, c2sChain: null, s2cCount: null, s2cChain: null };
}

const RECORD_COLUMNS = {
  position: transcriptRecords.position,
  direction: transcriptRecords.direction,
  chained: transcriptRecords.chained,
  plaintext: transcriptRecords.plaintext,
};

function storedRecord(row: {
  position: number;
  direction: string;
  chained: boolean;
  plaintext: Buffer;
}): StoredTranscriptRecord {
  return { ...row, direction: row.direction as 'c2s' | 's2c' };
}

@Injectable()
export class TranscriptRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Applies one gateway batch in one transaction, in order: opens, records, closes. Every
   * step is idempotent, so a gateway that did not get an answer resends the same batch:
   * existing sessions and positions are left as they are, and a close only applies to a
   * session that is still `open`.
   */
  async append(batch: TranscriptBatch): Promise<TranscriptAppendResult> {
    return this.db.transaction(async (tx) => {
      let opened = 0;
      if (batch.opens.length > 0) {
        const rows = await tx
          .insert(transcriptSessions)
          .values(
            batch.opens.map((open) => ({
              sessionId: open.sessionId,
              username: open.username,
              gateway: open.gateway,
              mode: open.mode,
              h2: fromBase64(open.h2),
              startedAt: new Date(open.startedAt),
              status: 'open',
            })),
          )
          .onConflictDoNothing()
          .returning({ sessionId: transcriptSessions.sessionId });
        opened = rows.length;
      }

      let recorded = 0;
      for (let i = 0; i < batch.records.length; i += RECORD_ROWS_PER_STATEMENT) {
        const rows = await tx
          .insert(transcriptRecords)
          .values(
            batch.records.slice(i, i + RECORD_ROWS_PER_STATEMENT).map((record) => ({
              sessionId: record.sessionId,
              position: record.position,
              direction: record.direction,
              chained: record.chained,
              plaintext: fromBase64(record.plaintext),
            })),
          )
          .onConflictDoNothing()
          .returning({ position: transcriptRecords.position });
        recorded += rows.length;
      }

      let closed = 0;
      for (const close of batch.closes) {
        const client = viewColumns(close.clientView);
        const rows = await tx
          .update(transcriptSessions)
          .set({
            endedAt: new Date(close.endedAt),
            status: close.status,
            ...viewColumns(close.serverView),
            receiptSignature:
              close.receiptSignature === undefined ? null : fromBase64(close.receiptSignature),
            clientC2sCount: client.c2sCount,
            clientC2sChain: client.c2sChain,
            clientS2cCount: client.s2cCount,
            clientS2cChain: client.s2cChain,
            countersignature:
              close.countersignature === undefined ? null : fromBase64(close.countersignature),
          })
          // Only while open: a closed session is final, whatever a later batch claims.
          .where(
            and(
              eq(transcriptSessions.sessionId, close.sessionId),
              eq(transcriptSessions.status, 'open'),
            ),
          )
          .returning({ sessionId: transcriptSessions.sessionId });
        closed += rows.length;
      }

      return { ok: true, opened, recorded, closed };
    });
  }

  /** The session and its records in position order; undefined for an unknown session. */
  async load(sessionId: string): Promise<StoredTranscript | undefined> {
    const session = await this.loadSession(sessionId);
    if (!session) return undefined;
    const records = await this.db
      .select(RECORD_COLUMNS)
      .from(transcriptRecords)
      .where(eq(transcriptRecords.sessionId, sessionId))
      .orderBy(asc(transcriptRecords.position));
    return { session, records: records.map(storedRecord) };
  }

  /** The session row alone, without its records; undefined for an unknown session. */
  async loadSession(sessionId: string): Promise<StoredTranscriptSession | undefined> {
    const [row] = await this.db
      .select()
      .from(transcriptSessions)
      .where(eq(transcriptSessions.sessionId, sessionId))
      .limit(1);
    if (!row) return undefined;
    return {
      sessionId: row.sessionId,
      username: row.username,
      gateway: row.gateway,
      mode: row.mode as TranscriptMode,
      h2: row.h2,
      startedAt: row.startedAt.getTime(),
      endedAt: row.endedAt?.getTime(),
      status: row.status as TranscriptStatus,
      serverView: storedView(row.c2sCount, row.c2sChain, row.s2cCount, row.s2cChain),
      receiptSignature: row.receiptSignature ?? undefined,
      clientView: storedView(
        row.clientC2sCount,
        row.clientC2sChain,
        row.clientS2cCount,
        row.clientS2cChain,
      ),
      countersignature: row.countersignature ?? undefined,
    };
  }

  /**
   * At most `limit` records of a session in position order, from the first one after
   * position `after` (from the start without it). Keyset paging on the primary key, so each
   * page is an index range however long the session is, and a reader holds one page at a
   * time: an export of a long session must not hold every record (16 KiB each) at once.
   */
  async loadRecords(
    sessionId: string,
    limit: number,
    after?: number,
  ): Promise<StoredTranscriptRecord[]> {
    const rows = await this.db
      .select(RECORD_COLUMNS)
      .from(transcriptRecords)
      .where(
        after === undefined
          ? eq(transcriptRecords.sessionId, sessionId)
          : and(eq(transcriptRecords.sessionId, sessionId), gt(transcriptRecords.position, after)),
      )
      .orderBy(asc(transcriptRecords.position))
      .limit(limit);
    return rows.map(storedRecord);
  }

  /**
   * The sessions of one user, newest first by (started_at, session_id), at most `limit`; with
   * `after`, only those that come after that session in this order. The position is the pair,
   * not the time alone: sessions that start in the same millisecond would otherwise be
   * skipped, or repeated, at a page boundary.
   */
  async listSessions(
    username: string,
    limit: number,
    after?: SessionListPosition,
  ): Promise<StoredSessionSummary[]> {
    const rows = await this.db
      .select({
        sessionId: transcriptSessions.sessionId,
        username: transcriptSessions.username,
        gateway: transcriptSessions.gateway,
        mode: transcriptSessions.mode,
        status: transcriptSessions.status,
        startedAt: transcriptSessions.startedAt,
        endedAt: transcriptSessions.endedAt,
      })
      .from(transcriptSessions)
      .where(
        after === undefined
          ? eq(transcriptSessions.username, username)
          : and(
              eq(transcriptSessions.username, username),
              sql`(${transcriptSessions.startedAt}, ${transcriptSessions.sessionId}) < (${sql.param(
                new Date(after.startedAt),
                transcriptSessions.startedAt,
              )}, ${after.sessionId})`,
            ),
      )
      .orderBy(desc(transcriptSessions.startedAt), desc(transcriptSessions.sessionId))
      .limit(limit);
    return rows.map((row) => ({
      sessionId: row.sessionId,
      username: row.username,
      gateway: row.gateway,
      mode: row.mode as TranscriptMode,
      status: row.status as TranscriptStatus,
      startedAt: row.startedAt.getTime(),
      endedAt: row.endedAt?.getTime(),
    }));
  }
}
