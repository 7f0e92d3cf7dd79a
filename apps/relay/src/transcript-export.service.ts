/**
 * Transcript export for operators (docs/PROTOCOL.md §8.5): one stored session as the same
 * JSON-lines text a client keeps (libs/client transcript-log.ts), so that the one verifier —
 * `verifyTranscriptLog(parseTranscript(text))`, `securechat verify-transcript` — checks
 * either side's copy, and the two copies can be compared line by line.
 */
import { Injectable } from '@nestjs/common';
import {
  type TranscriptEndLine,
  type TranscriptHeaderLine,
  type TranscriptRecordLine,
} from '@securechat/client';
import { type TranscriptMode, type TranscriptStatus } from '@securechat/core';

import { TranscriptNotExportableError } from './errors/transcript-not-exportable.error';
import { TranscriptNotFoundError } from './errors/transcript-not-found.error';
import { ServerPublicKeyRepository } from './server-public-key.repository';
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
    return rows.map((row) => ({ ...row, endedAt: row.endedAt ?? null }));
  }

  /**
   * The session as transcript-log JSON lines: header, every stored record in order, and —
   * once the session has ended — the end line with the stored receipt and countersignature.
   * A session still open has no end line yet (verification then reports no receipt).
   *
   * Throws TranscriptNotFoundError, TranscriptNotExportableError (a `digest` session), or
   * ServerKeyUnavailableError (this process cannot read the identity key).
   */
  async exportSession(sessionId: string): Promise<string> {
    const server = this.serverKey.load();
    const stored = await this.transcripts.load(sessionId);
    if (!stored) throw new TranscriptNotFoundError(sessionId);
    const { session, records } = stored;
    if (session.mode !== 'full') throw new TranscriptNotExportableError(sessionId, session.mode);

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
    const lines: object[] = [header, ...recordLines(records)];
    const end = endLine(session);
    if (end) lines.push(end);
    return lines.map((line) => `${JSON.stringify(line)}\n`).join('');
  }
}

/**
 * The stored records as a client logs them. The store keeps positions, not sequence numbers,
 * so `seq` is recomputed: c2s starts at 1 (c2s 0 is the login record, never stored, §8.1),
 * s2c at 0, and each direction starts again at 0 after its own `key_update` (§5.3).
 */
function recordLines(records: readonly StoredTranscriptRecord[]): TranscriptRecordLine[] {
  const next = { c2s: 1, s2c: 0 };
  return records.map((record) => {
    const seq = next[record.direction];
    next[record.direction] = isKeyUpdate(record.plaintext) ? 0 : seq + 1;
    return {
      kind: 'record',
      dir: record.direction,
      seq,
      chained: record.chained,
      plaintext: record.plaintext.toString('base64'),
      text: record.plaintext.toString('utf8'),
    };
  });
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
          c2s_count: view.c2sCount,
          c2s_chain: view.c2sChain.toString('base64'),
          s2c_count: view.s2cCount,
          s2c_chain: view.s2cChain.toString('base64'),
          signature: session.receiptSignature.toString('base64'),
        }
      : null;
  const client = session.clientView;
  const countersign =
    client && session.countersignature
      ? {
          c2s_count: client.c2sCount,
          c2s_chain: client.c2sChain.toString('base64'),
          s2c_count: client.s2cCount,
          s2c_chain: client.s2cChain.toString('base64'),
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
    // What the gateway concluded from the countersignature (§8.4); the signatures themselves
    // are for the verifier to check, not for the exporter to vouch for.
    views_match: session.status === 'agreed' ? true : session.status === 'disputed' ? false : null,
    signature_valid: null,
  };
}
