/**
 * Transcript export for operators (docs/PROTOCOL.md §8.5): one stored session as the same
 * JSON-lines text a client keeps (libs/protocol transcript-file.ts), so that the one verifier —
 * `verifyTranscriptLog(parseTranscript(text))`, `securechat verify-transcript` — checks
 * either side's copy, and the two copies can be compared line by line. The one difference: a
 * request the gateway refused before any service saw it is stored, and so exported, by digest
 * (`{"kind":"record", dir, seq, chained, digest}`, docs/PROTOCOL.md §10 item 25), where the
 * client's own log has its plaintext.
 */
import { Injectable } from '@nestjs/common';
import { type TranscriptMode, type TranscriptStatus } from '@securechat/core';
import {
  encodeTranscriptView,
  type TranscriptEndLine,
  type TranscriptHeaderLine,
  type TranscriptRecordLine,
} from '@securechat/protocol';

import { TranscriptNotExportableError } from './errors/transcript-not-exportable.error';
import { TranscriptNotFoundError } from './errors/transcript-not-found.error';
import { TranscriptPurgedError } from './errors/transcript-purged.error';
import { type ServerPublicKey, ServerPublicKeyRepository } from './server-public-key.repository';
import {
  type SessionListPosition,
  type StoredTranscriptRecord,
  type StoredTranscriptSession,
  TranscriptRepository,
} from './transcript.repository';

/** One session in a listing; times in ms since the epoch, `endedAt` null while open. */
export interface TranscriptSessionSummary {
  readonly sessionId: string;
  readonly username: string;
  readonly gateway: string;
  readonly mode: TranscriptMode;
  readonly status: TranscriptStatus;
  readonly startedAt: number;
  readonly endedAt: number | null;
  /** When retention deleted the session's records; null while they are kept. */
  readonly recordsPurgedAt: number | null;
}

export interface ListSessionsOptions {
  /** 1..200, default 50. */
  readonly limit?: number;
  /** Only the sessions listed after this one: the last session of the previous page. */
  readonly after?: SessionListPosition;
}

export const LIST_SESSIONS_DEFAULT_LIMIT = 50;
export const LIST_SESSIONS_MAX_LIMIT = 200;

const KEY_UPDATE = Buffer.from('key_update');

/**
 * Records read per query while exporting: at most 256 × 16 KiB of plaintext (4 MiB) held at
 * once, and few enough queries that a long session is not slowed down by round trips.
 */
export const EXPORT_BATCH = 256;

@Injectable()
export class TranscriptExportService {
  constructor(
    private readonly transcripts: TranscriptRepository,
    private readonly serverKey: ServerPublicKeyRepository,
  ) {}

  /** The sessions of one user, newest first; an unknown user has none. */
  async listSessions(
    username: string,
    options: ListSessionsOptions = {},
  ): Promise<TranscriptSessionSummary[]> {
    const given = options.limit;
    const requested =
      given === undefined || !Number.isFinite(given)
        ? LIST_SESSIONS_DEFAULT_LIMIT
        : Math.trunc(given);
    const limit = Math.min(Math.max(requested, 1), LIST_SESSIONS_MAX_LIMIT);
    const rows = await this.transcripts.listSessions(username, limit, options.after);
    return rows.map((row) => ({
      ...row,
      endedAt: row.endedAt ?? null,
      recordsPurgedAt: row.recordsPurgedAt ?? null,
    }));
  }

  /**
   * The session as transcript-log JSON lines: header, every stored record in order, and —
   * once the session has ended — the end line with the stored receipt and countersignature.
   * A session still open has no end line yet (verification then reports no receipt).
   *
   * Everything that can refuse the export is checked before this resolves, so an HTTP caller
   * can still answer with an error status: throws TranscriptNotFoundError,
   * TranscriptNotExportableError (a `digest` session), TranscriptPurgedError (retention deleted
   * the records), or ServerKeyUnavailableError (this process cannot read the identity key).
   * The lines themselves (each one JSON object and "\n") are produced as they are read:
   * records come from the store EXPORT_BATCH at a time, so a long session never sits in memory
   * whole. An error while reading records (the database lost) is thrown by the iteration,
   * after some lines have been yielded; so is TranscriptPurgedError when a purge deleted the
   * records while they were being read, rather than an end line after a partial transcript.
   */
  async exportLines(sessionId: string): Promise<AsyncIterable<string>> {
    const server = this.serverKey.load();
    const session = await this.transcripts.loadSession(sessionId);
    if (!session) throw new TranscriptNotFoundError(sessionId);
    if (session.mode !== 'full') throw new TranscriptNotExportableError(sessionId, session.mode);
    if (session.recordsPurgedAt !== undefined) {
      throw new TranscriptPurgedError(sessionId, session.recordsPurgedAt);
    }
    return this.#lines(server, session);
  }

  /**
   * exportLines joined into one string: for tests and callers that know the session is
   * small. The whole text (every record twice, base64 and text) is held at once, so an
   * export that is served to someone goes through exportLines instead.
   */
  async exportSession(sessionId: string): Promise<string> {
    let text = '';
    for await (const line of await this.exportLines(sessionId)) text += line;
    return text;
  }

  async *#lines(server: ServerPublicKey, session: StoredTranscriptSession): AsyncGenerator<string> {
    const header: TranscriptHeaderLine = {
      kind: 'header',
      version: 1,
      session_id: session.sessionId,
      // A client writes the address it dialled; the store knows which gateway served it.
      server: session.gateway,
      server_key: server.spki.toString('base64'),
      server_fingerprint: server.fingerprint,
      username: session.username,
      h2: session.h2.toString('base64'),
      started_at: new Date(session.startedAt).toISOString(),
    };
    yield jsonLine(header);
    const numbering = new RecordNumbering();
    let after: number | undefined;
    for (;;) {
      const batch = await this.transcripts.loadRecords(session.sessionId, EXPORT_BATCH, after);
      for (const record of batch) yield jsonLine(numbering.line(record));
      const last = batch[batch.length - 1];
      if (batch.length < EXPORT_BATCH || last === undefined) break;
      after = last.position;
    }
    // A purge deletes every chunk of a session and marks its row in one transaction: if it
    // committed while the records were read, the row says so now. Fail rather than end a
    // partial transcript as if it were whole.
    const purgedAt = (await this.transcripts.loadSession(session.sessionId))?.recordsPurgedAt;
    if (purgedAt !== undefined) throw new TranscriptPurgedError(session.sessionId, purgedAt);
    const end = endLine(session);
    if (end) yield jsonLine(end);
  }
}

const jsonLine = (line: object) => `${JSON.stringify(line)}\n`;

/**
 * The stored records as a client logs them, one at a time in position order, across batches.
 * The store keeps positions, not sequence numbers, so `seq` is recomputed: c2s starts at 1
 * (c2s 0 is the login record, never stored, docs/PROTOCOL.md §8.1), s2c at 0, and each direction
 * starts again at 0 after its own `key_update` (docs/PROTOCOL.md §5.3).
 */
class RecordNumbering {
  readonly #next = { c2s: 1, s2c: 0 };

  line(record: StoredTranscriptRecord): TranscriptRecordLine {
    const seq = this.#next[record.direction];
    const line = { kind: 'record' as const, dir: record.direction, seq, chained: record.chained };
    if (record.digest !== undefined) {
      // A request the gateway refused, kept by digest (docs/PROTOCOL.md §10 item 25): never a
      // key_update (that is refused by nothing), so the numbering goes on.
      this.#next[record.direction] = seq + 1;
      return { ...line, digest: record.digest.toString('base64') };
    }
    this.#next[record.direction] = isKeyUpdate(record.plaintext) ? 0 : seq + 1;
    return {
      ...line,
      plaintext: record.plaintext.toString('base64'),
      text: record.plaintext.toString('utf8'),
    };
  }
}

function isKeyUpdate(plaintext: Buffer): boolean {
  // Parse only the rare candidates: most records are messages, and they can be 16 KiB each.
  if (!plaintext.includes(KEY_UPDATE)) return false;
  try {
    return (JSON.parse(plaintext.toString('utf8')) as { type?: unknown }).type === 'key_update';
  } catch {
    return false;
  }
}

function endLine(session: StoredTranscriptSession): TranscriptEndLine | undefined {
  if (session.status === 'open' || session.endedAt === undefined) return undefined;
  const view = session.serverView;
  const receipt =
    view && session.receiptSignature
      ? {
          session_id: session.sessionId,
          ...encodeTranscriptView(view),
          signature: session.receiptSignature.toString('base64'),
        }
      : null;
  const client = session.clientView;
  const countersign =
    client && session.countersignature
      ? {
          ...encodeTranscriptView(client),
          signature: session.countersignature.toString('base64'),
        }
      : null;
  return {
    kind: 'end',
    ended_at: new Date(session.endedAt).toISOString(),
    // `closed` as in the client's log: bye, receipt and countersign all ran.
    reason: countersign ? 'closed' : 'connection_lost',
    receipt,
    countersign,
    // What the gateway concluded from the countersignature (docs/PROTOCOL.md §8.4); the signatures
    // themselves are for the verifier to check, not for the exporter to vouch for.
    views_match: session.status === 'agreed' ? true : session.status === 'disputed' ? false : null,
    signature_valid: null,
  };
}
