/**
 * Session transcripts (tables `transcript_sessions`, `transcript_chunks`; docs/PROTOCOL.md
 * §8). Append-only: a session row is inserted when the session opens and completed exactly once
 * when it closes; records are only ever inserted, in chunks of consecutive records as a gateway
 * shipped them (one row per session per flush, not per record), so what was stored is what an
 * auditor later verifies (docs/PROTOCOL.md §8.5).
 *
 * The one exception is retention (purgeRecords): it deletes a session's chunks and marks its
 * row `records_purged_at`, and nothing else. The row keeps H2, both views and both signatures,
 * so the receipt and countersignature still verify against the stored chain heads; only the
 * records themselves, and with them a rebuild or an export of the session, are gone.
 */
import { Inject, Injectable } from '@nestjs/common';
import { and, asc, desc, eq, gt, inArray, type SQL, sql } from 'drizzle-orm';

import {
  ChunkFormatError,
  type ChunkRecord,
  DATABASE,
  type Database,
  decodeChunk,
  type TranscriptAppendResult,
  type TranscriptBatch,
  type TranscriptClose,
  type TranscriptMode,
  type TranscriptStatus,
} from '@securechat/core';
import { transcriptChunks, transcriptSessions } from '@db/schema';

import { RelayFailure } from './relay-failure.error';

/** Chunks read per query while paging through a session's records. */
const CHUNKS_PER_READ = 16;

/** A view (docs/PROTOCOL.md §8.3 inputs) as stored: raw chain bytes. */
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
  /** H2: the start of both chains (docs/PROTOCOL.md §8.1). */
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
  /** When retention deleted the session's records (ms since the epoch); undefined: kept. */
  readonly recordsPurgedAt: number | undefined;
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
  readonly recordsPurgedAt: number | undefined;
}

/** A session's place in a newest-first listing: the last one of a page, to continue after. */
export interface SessionListPosition {
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly sessionId: string;
}

/**
 * A session whose records a purge deleted (or, listed without purging, would delete), with
 * what the row keeps.
 */
export interface PurgeableSession {
  readonly sessionId: string;
  readonly username: string;
  readonly mode: TranscriptMode;
  readonly status: TranscriptStatus;
  readonly startedAt: number;
  readonly endedAt: number | undefined;
  /**
   * The server's receipt (its signature over the stored chain heads) is stored: it verifies
   * after the purge as before. False: the session ended without one (or never ended), so once
   * its records are gone nothing signed remains of it.
   */
  readonly receipt: boolean;
  /** The client's countersignature is stored too. */
  readonly countersigned: boolean;
  /** Record chunks deleted (or that would be), and their bytes. */
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * A session's place in the oldest-first order purges go through: when it ended (started, if
 * it never did), then its id. The last session of a page, to continue after.
 */
export interface PurgePosition {
  /** ms since the epoch. */
  readonly at: number;
  readonly sessionId: string;
}

/**
 * One stored record at its position: its plaintext, or — a request the gateway refused before
 * any service saw it (docs/PROTOCOL.md §10 item 25) — only the plaintext's SHA-256 (`digest`).
 */
export type StoredTranscriptRecord = ChunkRecord & { readonly position: number };

export interface StoredTranscript {
  readonly session: StoredTranscriptSession;
  /** In position order. Empty for `digest` sessions. */
  readonly records: StoredTranscriptRecord[];
}

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

/** `execute` answers `{ rows }` on both drivers (pg's QueryResult, PGlite's Results). */
const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;

const timestamptz = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`;

/** A session's purge order: when it ended, or started if it never did (index purge_idx). */
const purgeKey = sql`coalesce(${transcriptSessions.endedAt}, ${transcriptSessions.startedAt})`;

/**
 * The sessions a purge with cutoff `before` deletes the records of: those that ended (or, never
 * ended, started) before it and
 * - whose records were never purged, or
 * - that were purged while still open and have ended since (their gateway may have stored
 *   records after the purge; they are purged once more, and then stay purged), or
 * - that were purged while open, are open still, and hold records again.
 * The second and third arms are the rare sessions a purge caught open (a gateway that died
 * before it could close them, or a session older than the retention); the index
 * `transcript_sessions_purge_idx` holds exactly the rows these arms can match, so a purge never
 * scans the sessions it is done with.
 */
function purgeDue(before: number): SQL {
  const s = transcriptSessions;
  // A scalar subquery, not EXISTS: inside an OR the planner may turn EXISTS into a hashed
  // subplan that reads the whole chunks table; this one is an index probe, and only for the
  // rows that reach it (open ones that were purged).
  return sql`${purgeKey} < ${timestamptz(before)} and (
    ${s.recordsPurgedAt} is null
    or ${s.endedAt} >= ${s.recordsPurgedAt}
    or (${s.endedAt} is null and (
      select 1 from ${transcriptChunks}
      where ${transcriptChunks.sessionId} = ${s.sessionId} limit 1) is not null))`;
}

/** What a purge reports of a session row, before its chunks are counted. */
const purgeColumns = {
  sessionId: transcriptSessions.sessionId,
  username: transcriptSessions.username,
  mode: transcriptSessions.mode,
  status: transcriptSessions.status,
  startedAt: transcriptSessions.startedAt,
  endedAt: transcriptSessions.endedAt,
  receipt: sql<boolean>`(${transcriptSessions.receiptSignature} is not null and ${transcriptSessions.c2sChain} is not null)`,
  countersigned: sql<boolean>`(${transcriptSessions.countersignature} is not null and ${transcriptSessions.clientC2sChain} is not null)`,
};

interface PurgeRow {
  readonly sessionId: string;
  readonly username: string;
  readonly mode: string;
  readonly status: string;
  readonly startedAt: Date;
  readonly endedAt: Date | null;
  readonly receipt: boolean;
  readonly countersigned: boolean;
}

type ChunkTally = ReadonlyMap<string, { chunks: number; bytes: number }>;

function purgeableSession(row: PurgeRow, tally: ChunkTally): PurgeableSession {
  const counted = tally.get(row.sessionId);
  return {
    sessionId: row.sessionId,
    username: row.username,
    mode: row.mode as TranscriptMode,
    status: row.status as TranscriptStatus,
    startedAt: row.startedAt.getTime(),
    endedAt: row.endedAt?.getTime(),
    receipt: row.receipt === true,
    countersigned: row.countersigned === true,
    chunks: counted?.chunks ?? 0,
    bytes: counted?.bytes ?? 0,
  };
}

function tallyOf(rows: readonly { session_id: string; chunks: unknown; bytes: unknown }[]) {
  return new Map(
    rows.map((row) => [row.session_id, { chunks: Number(row.chunks), bytes: Number(row.bytes) }]),
  );
}

/** A stored chunk's records with their positions. */
function chunkRecords(firstPosition: number, records: Buffer): StoredTranscriptRecord[] {
  return decodeChunk(records).map((record, i) => ({ position: firstPosition + i, ...record }));
}

const isoTime = (ms: number) => new Date(ms).toISOString();

/**
 * The columns a close sets besides `status` and `ended_at`: the server's view and receipt, the
 * client's view and countersignature. They travel as text arrays (counts in decimal, bytes in
 * base64, as the batch carries them) and are converted in SQL.
 */
const CLOSE_FIELDS = [
  ['c2s_count', 'count'],
  ['c2s_chain', 'bytes'],
  ['s2c_count', 'count'],
  ['s2c_chain', 'bytes'],
  ['receipt_signature', 'bytes'],
  ['client_c2s_count', 'count'],
  ['client_c2s_chain', 'bytes'],
  ['client_s2c_count', 'count'],
  ['client_s2c_chain', 'bytes'],
  ['countersignature', 'bytes'],
] as const;
const CLOSE_COLUMNS = CLOSE_FIELDS.map(([name]) => name).join(', ');
/** The unnest aliases of the close fields (the same names, as text). */
const CLOSE_INPUTS = CLOSE_COLUMNS;
const CLOSE_VALUES = (from: string) =>
  CLOSE_FIELDS.map(([name, kind]) =>
    kind === 'count'
      ? `${from}.${name}::int as ${name}`
      : `decode(${from}.${name}, 'base64') as ${name}`,
  ).join(', ');
const CLOSE_UPDATES = (from: string) =>
  CLOSE_FIELDS.map(([name]) => `${name} = ${from}.${name}`).join(', ');

/** The close fields' arrays, in CLOSE_FIELDS order; an absent close (an open alone) is nulls. */
function closeArrays(closes: readonly (TranscriptClose | undefined)[]): SQL {
  const views = closes.map((close) => ({
    server: close?.serverView,
    client: close?.clientView,
    receipt: close?.receiptSignature,
    countersignature: close?.countersignature,
  }));
  const values: Record<(typeof CLOSE_FIELDS)[number][0], (string | null)[]> = {
    c2s_count: views.map((v) => v.server?.c2sCount.toString() ?? null),
    c2s_chain: views.map((v) => v.server?.c2sChain ?? null),
    s2c_count: views.map((v) => v.server?.s2cCount.toString() ?? null),
    s2c_chain: views.map((v) => v.server?.s2cChain ?? null),
    receipt_signature: views.map((v) => v.receipt ?? null),
    client_c2s_count: views.map((v) => v.client?.c2sCount.toString() ?? null),
    client_c2s_chain: views.map((v) => v.client?.c2sChain ?? null),
    client_s2c_count: views.map((v) => v.client?.s2cCount.toString() ?? null),
    client_s2c_chain: views.map((v) => v.client?.s2cChain ?? null),
    countersignature: views.map((v) => v.countersignature ?? null),
  };
  return sql.join(
    CLOSE_FIELDS.map(([name]) => sql`${sql.param(values[name])}::text[]`),
    sql`, `,
  );
}

@Injectable()
export class TranscriptRepository {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /**
   * Applies one gateway batch in one transaction, as if in order: opens, records, closes. Every
   * step is idempotent, so a gateway that did not get an answer resends the same batch:
   * existing sessions and positions are left as they are, and a close only applies to a
   * session that is still `open`.
   *
   * At most three statements whatever the batch holds (a login and its logout often share a
   * flush): a session opened and closed in the same batch is inserted closed; the other opens
   * are one insert, the chunks one insert, the other closes one update. Column arrays go
   * through `unnest`, so the SQL text does not grow with the batch.
   */
  async append(batch: TranscriptBatch): Promise<TranscriptAppendResult> {
    // Most batches are chunks alone: one statement, atomic by itself, without BEGIN and COMMIT
    // (two round trips fewer per flush of every gateway).
    if (batch.opens.length === 0 && batch.closes.length === 0) {
      return { ok: true, opened: 0, recorded: await this.#insertChunks(this.db, batch), closed: 0 };
    }
    const opening = new Set(batch.opens.map((open) => open.sessionId));
    const closeOf = new Map<string, TranscriptClose>();
    const laterCloses: TranscriptClose[] = [];
    for (const close of batch.closes) {
      if (!opening.has(close.sessionId)) laterCloses.push(close);
      // A batch closes a session once; should it say so twice, the first close is the one
      // that applies, as with one update per close while the row is open.
      else if (!closeOf.has(close.sessionId)) closeOf.set(close.sessionId, close);
    }
    return this.db.transaction(async (tx) => {
      let opened = 0;
      let closed = 0;
      if (batch.opens.length > 0) {
        const rows = batch.opens.map((open) => ({ open, close: closeOf.get(open.sessionId) }));
        const text = (pick: (row: (typeof rows)[number]) => string | null) =>
          sql.param(rows.map(pick));
        const result = rowsOf<{ inserted: boolean; closed: boolean }>(
          await tx.execute(sql`
            insert into ${transcriptSessions} as t (session_id, username, gateway, mode, h2,
              started_at, status, ended_at, ${sql.raw(CLOSE_COLUMNS)})
            select o.session_id, o.username, o.gateway, o.mode, decode(o.h2, 'base64'),
              o.started_at::timestamptz, o.status, o.ended_at::timestamptz, ${sql.raw(CLOSE_VALUES('o'))}
            from unnest(
              ${text((r) => r.open.sessionId)}::text[], ${text((r) => r.open.username)}::text[],
              ${text((r) => r.open.gateway)}::text[], ${text((r) => r.open.mode)}::text[],
              ${text((r) => r.open.h2)}::text[], ${text((r) => isoTime(r.open.startedAt))}::text[],
              ${text((r) => r.close?.status ?? 'open')}::text[],
              ${text((r) => (r.close ? isoTime(r.close.endedAt) : null))}::text[],
              ${closeArrays(rows.map((r) => r.close))}
            ) as o(session_id, username, gateway, mode, h2, started_at, status, ended_at,
              ${sql.raw(CLOSE_INPUTS)})
            -- Inserted, or already there (a retried batch): then the close applies only while
            -- the row is open, like the update below, and a plain open changes nothing.
            on conflict (session_id) do update set
              status = excluded.status, ended_at = excluded.ended_at, ${sql.raw(CLOSE_UPDATES('excluded'))}
              where t.status = 'open' and excluded.status <> 'open'
            -- xmax is 0 on a row this statement inserted, set on one it updated.
            returning (t.xmax = 0) as inserted, (t.status <> 'open') as closed`),
        );
        opened = result.filter((row) => row.inserted).length;
        closed += result.filter((row) => row.closed).length;
      }

      const recorded = await this.#insertChunks(tx, batch);

      if (laterCloses.length > 0) {
        const text = (pick: (close: TranscriptClose) => string) => sql.param(laterCloses.map(pick));
        const result = rowsOf<{ session_id: string }>(
          await tx.execute(sql`
            update ${transcriptSessions} as t set
              status = v.status, ended_at = v.ended_at, ${sql.raw(CLOSE_UPDATES('v'))}
            from (
              select c.session_id, c.status, c.ended_at::timestamptz as ended_at,
                ${sql.raw(CLOSE_VALUES('c'))}
              from unnest(
                ${text((close) => close.sessionId)}::text[],
                ${text((close) => close.status)}::text[],
                ${text((close) => isoTime(close.endedAt))}::text[],
                ${closeArrays(laterCloses)}
              ) as c(session_id, status, ended_at, ${sql.raw(CLOSE_INPUTS)})
            ) as v
            -- Only while open: a closed session is final, whatever a later batch claims.
            where t.session_id = v.session_id and t.status = 'open'
            returning t.session_id`),
        );
        closed += result.length;
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

  /**
   * The session and its records in position order; undefined for an unknown session. The
   * records are read before the row: a purge that commits in between then shows as a purged
   * session (whose records are not used), never as an unpurged one with its records missing.
   */
  async load(sessionId: string): Promise<StoredTranscript | undefined> {
    const chunks = await this.db
      .select({ first: transcriptChunks.firstPosition, records: transcriptChunks.records })
      .from(transcriptChunks)
      .where(eq(transcriptChunks.sessionId, sessionId))
      .orderBy(asc(transcriptChunks.firstPosition));
    const session = await this.loadSession(sessionId);
    if (!session) return undefined;
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
      recordsPurgedAt: row.recordsPurgedAt?.getTime(),
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
        recordsPurgedAt: transcriptSessions.recordsPurgedAt,
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
      recordsPurgedAt: row.recordsPurgedAt?.getTime(),
    }));
  }

  /**
   * The sessions a purge with cutoff `before` would delete the records of (see purgeDue),
   * oldest first, at most `limit`, after `after`; each with the chunks and bytes it holds.
   * Reads only: a dry run.
   */
  async listPurgeable(
    before: number,
    limit: number,
    after?: PurgePosition,
  ): Promise<PurgeableSession[]> {
    const rows = await this.db
      .select(purgeColumns)
      .from(transcriptSessions)
      .where(
        after === undefined
          ? purgeDue(before)
          : and(
              purgeDue(before),
              sql`(${purgeKey}, ${transcriptSessions.sessionId}) > (${timestamptz(after.at)}, ${after.sessionId})`,
            ),
      )
      .orderBy(purgeKey, asc(transcriptSessions.sessionId))
      .limit(limit);
    if (rows.length === 0) return [];
    const tally = tallyOf(
      rowsOf(
        await this.db.execute(sql`
          select session_id, count(*) as chunks, coalesce(sum(octet_length(records)), 0) as bytes
          from ${transcriptChunks}
          where ${inArray(
            transcriptChunks.sessionId,
            rows.map((row) => row.sessionId),
          )}
          group by session_id`),
      ),
    );
    return rows.map((row) => purgeableSession(row, tally));
  }

  /** Whether a purge with cutoff `before` has anything left to do. */
  async hasPurgeable(before: number): Promise<boolean> {
    const rows = await this.db
      .select({ one: sql`1` })
      .from(transcriptSessions)
      .where(purgeDue(before))
      .limit(1);
    return rows.length > 0;
  }

  /**
   * Deletes the records (chunks) of at most `limit` sessions due for a purge with cutoff
   * `before`, oldest first, and marks their rows `records_purged_at = now`, in one transaction;
   * nothing else of a row changes. Answers what it deleted, per session.
   *
   * Safe to run from several processes at once: each locks the rows it takes and skips rows
   * another transaction holds (FOR NO KEY UPDATE SKIP LOCKED: a purge never waits for another
   * one or for a gateway closing a session, and a gateway storing records is not held up by
   * it, the chunks' foreign-key check taking a lock this one does not conflict with), and a
   * delete of what is gone deletes nothing. Callers keep `limit` to a few thousand so that no
   * transaction holds the tables for long.
   */
  async purgeRecords(before: number, limit: number, now: number): Promise<PurgeableSession[]> {
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .select(purgeColumns)
        .from(transcriptSessions)
        .where(purgeDue(before))
        .orderBy(purgeKey, asc(transcriptSessions.sessionId))
        .limit(limit)
        .for('no key update', { skipLocked: true });
      if (rows.length === 0) return [];
      const ids = rows.map((row) => row.sessionId);
      const tally = tallyOf(
        rowsOf(
          await tx.execute(sql`
            with deleted as (
              delete from ${transcriptChunks}
              where ${inArray(transcriptChunks.sessionId, ids)}
              returning session_id, octet_length(records) as bytes)
            select session_id, count(*) as chunks, coalesce(sum(bytes), 0) as bytes
            from deleted group by session_id`),
        ),
      );
      await tx
        .update(transcriptSessions)
        .set({ recordsPurgedAt: new Date(now) })
        .where(inArray(transcriptSessions.sessionId, ids));
      return rows.map((row) => purgeableSession(row, tally));
    });
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
