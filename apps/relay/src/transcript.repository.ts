/**
 * Session transcripts (tables `transcript_sessions`, `transcript_chunks`; docs/PROTOCOL.md
 * §8). Append-only: a session row is inserted when the session opens and completed exactly
 * once when it closes; records are only ever inserted, in chunks of consecutive records as a
 * gateway shipped them (one row per session per flush, not per record). Nothing here updates a
 * closed session or deletes anything, so what was stored is what an auditor later verifies
 * (§8.5).
 */
import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';

import {
  ChunkFormatError,
  DATABASE,
  type Database,
  decodeChunk,
  type TranscriptBatch,
  type TranscriptMode,
  type TranscriptStatus,
  type TranscriptView,
} from '@securechat/core';
import { transcriptChunks, transcriptSessions } from '@db/schema';

import { RelayFailure } from './relay-failure.error';
import { type TranscriptAppendResult } from './relay.results';

/** Chunks read per query while paging through a session's records. */
const CHUNKS_PER_READ = 16;

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

/** `execute` answers `{ rows }` on both drivers (pg's QueryResult, PGlite's Results). */
const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;

/** A stored chunk's records with their positions. */
function chunkRecords(firstPosition: number, records: Buffer): StoredTranscriptRecord[] {
  return decodeChunk(records).map((record, i) => ({ position: firstPosition + i, ...record }));
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
    // Most batches are chunks alone: one statement, atomic by itself, without BEGIN and COMMIT
    // (two round trips fewer per flush of every gateway).
    if (batch.opens.length === 0 && batch.closes.length === 0) {
      return { ok: true, opened: 0, recorded: await this.#insertChunks(this.db, batch), closed: 0 };
    }
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

      const recorded = await this.#insertChunks(tx, batch);

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

  /**
   * The batch's chunks in one statement; returns how many records the newly stored ones hold.
   * One row of parameters per chunk: the bytes go as a binary parameter each (a `bytea[]`
   * array would travel as hex text, twice the size), and a batch holds a chunk per session.
   */
  async #insertChunks(db: Pick<Database, 'execute'>, batch: TranscriptBatch): Promise<number> {
    if (batch.chunks.length === 0) return 0;
    const rows = batch.chunks.map((chunk) => {
      const bytes = Buffer.from(chunk.records, 'base64');
      return sql`(${chunk.sessionId}, ${chunk.firstPosition}::int, ${recordCount(bytes)}::int, ${bytes}::bytea)`;
    });
    const stored = rowsOf<{ record_count: number }>(
      await db.execute(sql`
        insert into ${transcriptChunks} (session_id, first_position, record_count, records)
        values ${sql.join(rows, sql`, `)}
        -- a gateway retrying a batch sends the same chunks: the stored ones stay as they are
        on conflict do nothing
        returning record_count`),
    );
    return stored.reduce((n, row) => n + Number(row.record_count), 0);
  }

  /** The session and its records in position order; undefined for an unknown session. */
  async load(sessionId: string): Promise<StoredTranscript | undefined> {
    const session = await this.loadSession(sessionId);
    if (!session) return undefined;
    const chunks = await this.db
      .select({ first: transcriptChunks.firstPosition, records: transcriptChunks.records })
      .from(transcriptChunks)
      .where(eq(transcriptChunks.sessionId, sessionId))
      .orderBy(asc(transcriptChunks.firstPosition));
    return { session, records: chunks.flatMap((c) => chunkRecords(c.first, c.records)) };
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
    const records: StoredTranscriptRecord[] = [];
    let from = after ?? -1;
    while (records.length < limit) {
      // Chunks that hold a position past `from`: keyset on the primary key's order.
      const chunks = await this.db
        .select({ first: transcriptChunks.firstPosition, records: transcriptChunks.records })
        .from(transcriptChunks)
        .where(
          and(
            eq(transcriptChunks.sessionId, sessionId),
            gt(sql`${transcriptChunks.firstPosition} + ${transcriptChunks.recordCount}`, from + 1),
          ),
        )
        .orderBy(asc(transcriptChunks.firstPosition))
        .limit(CHUNKS_PER_READ);
      for (const chunk of chunks) {
        for (const record of chunkRecords(chunk.first, chunk.records)) {
          if (record.position > from && records.length < limit) {
            records.push(record);
            from = record.position;
          }
        }
      }
      if (chunks.length < CHUNKS_PER_READ) break;
    }
    return records;
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

/** How many records a shipped chunk holds; a malformed one fails its whole batch. */
function recordCount(chunk: Buffer): number {
  try {
    return decodeChunk(chunk).length;
  } catch (error) {
    if (error instanceof ChunkFormatError) {
      throw new RelayFailure(`transcript chunk malformed: ${error.message}`);
    }
    throw error;
  }
}
