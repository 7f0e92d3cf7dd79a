/**
 * The transcript file (docs/PROTOCOL.md §8.5): a session as JSON lines — the form a client keeps
 * of its own sessions and a server exports of a stored one — with its parser and offline
 * verifier. One definition for both sides: `securechat verify-transcript` and the admin export
 * agree on every member because they share these types.
 *
 * 1. a header `{"kind":"header", version, session_id, server, server_key, server_fingerprint,
 *    username, h2, started_at}` (binary values base64; `server_key` is the SPKI of the server
 *    identity);
 * 2. one line per record in either direction, in order: `{"kind":"record", dir, seq, chained,
 *    plaintext, text}` — `plaintext` the exact bytes (base64), `text` a UTF-8 copy for people.
 *    The login record (c2s 0, it holds the password) never appears (docs/PROTOCOL.md §8.1). A
 *    server's export may instead hold `{"kind":"record", dir, seq, chained, digest}` for a
 *    request its gateway refused before any service saw it: `digest` is SHA-256 of the
 *    plaintext (base64, 32 bytes), all docs/PROTOCOL.md §8.1 needs to chain it
 *    (docs/PROTOCOL.md §10 item 25);
 * 3. a last line `{"kind":"end", ended_at, reason, receipt, countersign, views_match,
 *    signature_valid}`.
 */
import { type KeyObject } from 'node:crypto';

import { fingerprint as fingerprintOf, importServerKey, publicKeyOf } from './crypto';
import { fromBase64 } from './encoding';
import { type CountersignMessage } from './messages/client-messages';
import { type Receipt } from './messages/server-messages';
import { type RecordEvent } from './session';
import {
  type TranscriptRecordInput,
  type TranscriptVerification,
  verifyTranscript,
} from './transcript-verifier';
import { decodeTranscriptView } from './transcript-view.codec';

/** How a session ended: `closed` when bye → receipt → countersign ran, else no (complete) receipt. */
export type TranscriptEndReason = 'closed' | 'connection_lost' | 'error';

interface TranscriptRecordLineBase {
  readonly kind: 'record';
  readonly dir: 'c2s' | 's2c';
  readonly seq: number;
  readonly chained: boolean;
}

/** A record as it crossed the connection: what clients write, and most export lines. */
export interface TranscriptPlaintextRecordLine extends TranscriptRecordLineBase {
  /** The exact bytes, base64. */
  readonly plaintext: string;
  /** A UTF-8 copy for people; the chains cover `plaintext`. */
  readonly text: string;
  readonly digest?: undefined;
}

/**
 * A record a server kept by digest (docs/PROTOCOL.md §10 item 25): a request its gateway
 * refused before any service saw it. Only in exports.
 */
export interface TranscriptDigestRecordLine extends TranscriptRecordLineBase {
  /** SHA-256 of the record's plaintext, base64 (32 bytes). */
  readonly digest: string;
  readonly plaintext?: undefined;
  readonly text?: undefined;
}

export type TranscriptRecordLine = TranscriptPlaintextRecordLine | TranscriptDigestRecordLine;

export interface TranscriptHeaderLine {
  readonly kind: 'header';
  readonly version: 1;
  readonly session_id: string;
  readonly server: string;
  readonly server_key: string;
  readonly server_fingerprint: string;
  readonly username: string;
  readonly h2: string;
  readonly started_at: string;
}

export interface TranscriptEndLine {
  readonly kind: 'end';
  readonly ended_at: string;
  readonly reason: TranscriptEndReason;
  /** The `receipt` record as received (without `type`), or null. */
  readonly receipt: Omit<Receipt, 'type'> | null;
  /** The `countersign` record as sent (without `type`), or null. */
  readonly countersign: Omit<CountersignMessage, 'type'> | null;
  readonly views_match: boolean | null;
  readonly signature_valid: boolean | null;
}

export interface TranscriptHeader {
  readonly sessionId: string;
  /** `host:port` of the server. */
  readonly server: string;
  /**
   * SPKI DER of the server's identity key, as presented in `server_hello` (docs/PROTOCOL.md §4.3).
   */
  readonly serverKey: Uint8Array;
  readonly serverFingerprint: string;
  readonly username: string;
  /** Where both chains start (docs/PROTOCOL.md §8.1). */
  readonly h2: Uint8Array;
  readonly startedAt: Date;
}

/** How a session ended. */
export interface TranscriptEnd {
  /** `closed`: bye → receipt → countersign ran; anything else: no (complete) receipt. */
  readonly reason: TranscriptEndReason;
  readonly viewsMatch?: boolean;
  readonly signatureValid?: boolean;
}

/**
 * Builds a session's lines as it runs (header, each record, the end): the one writer of the
 * format, for the CLI's files and the web client's download alike; where lines go is the caller's.
 */
export class TranscriptLines {
  receipt: Omit<Receipt, 'type'> | null = null;
  countersign: Omit<CountersignMessage, 'type'> | null = null;

  static header(header: TranscriptHeader): TranscriptHeaderLine {
    return {
      kind: 'header',
      version: 1,
      session_id: header.sessionId,
      server: header.server,
      server_key: Buffer.from(header.serverKey).toString('base64'),
      server_fingerprint: header.serverFingerprint,
      username: header.username,
      h2: Buffer.from(header.h2).toString('base64'),
      started_at: header.startedAt.toISOString(),
    };
  }

  record(event: RecordEvent): TranscriptPlaintextRecordLine {
    if (!event.chained) this.#noteClosing(event.plaintext);
    return {
      kind: 'record',
      dir: event.direction,
      seq: event.sequence,
      chained: event.chained,
      plaintext: event.plaintext.toString('base64'),
      text: event.plaintext.toString('utf8'),
    };
  }

  end(end: TranscriptEnd): TranscriptEndLine {
    return {
      kind: 'end',
      ended_at: new Date().toISOString(),
      reason: end.reason,
      receipt: this.receipt,
      countersign: this.countersign,
      views_match: end.viewsMatch ?? null,
      signature_valid: end.signatureValid ?? null,
    };
  }

  /**
   * `receipt` and `countersign` are the unchained records (docs/PROTOCOL.md §8.1); kept for the
   * last line.
   */
  #noteClosing(plaintext: Buffer): void {
    try {
      const { type, ...rest } = JSON.parse(plaintext.toString('utf8')) as { type?: string };
      if (type === 'receipt') this.receipt = rest as Omit<Receipt, 'type'>;
      if (type === 'countersign') this.countersign = rest as Omit<CountersignMessage, 'type'>;
    } catch {
      // The session already validated the record strictly; nothing to note otherwise.
    }
  }
}

/** A transcript file read back. */
export interface TranscriptFile {
  readonly header: TranscriptHeaderLine;
  readonly records: TranscriptRecordLine[];
  readonly end?: TranscriptEndLine;
}

export function parseTranscript(text: string): TranscriptFile {
  const lines = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { kind?: string });
  const [header, ...rest] = lines;
  if (header?.kind !== 'header') throw new Error('transcript: the first line is not a header');
  const records = rest.filter((l): l is TranscriptRecordLine => l.kind === 'record');
  const end = rest.find((l): l is TranscriptEndLine => l.kind === 'end');
  return { header: header as TranscriptHeaderLine, records, ...(end ? { end } : {}) };
}

/**
 * Checks a transcript offline (docs/PROTOCOL.md §8.5) with libs/protocol's verifier: both chains
 * recomputed from the records, the receipt signature under the server key from the header (whose
 * fingerprint must match the header's), and the countersignature when `userKey` is given.
 */
export function verifyTranscriptLog(
  transcript: TranscriptFile,
  userKey?: KeyObject,
): TranscriptVerification {
  try {
    return checkTranscriptLog(transcript, userKey);
  } catch (error) {
    // A malformed file (bad base64, a wrong length) is a failed check, not a crash.
    return {
      ok: false,
      checks: [{ name: 'input well-formed', ok: false, detail: (error as Error).message }],
    };
  }
}

function checkTranscriptLog(
  transcript: TranscriptFile,
  userKey: KeyObject | undefined,
): TranscriptVerification {
  const { header, records, end } = transcript;
  const spki = fromBase64(header.server_key, 'server_key');
  if (fingerprintOf(spki) !== header.server_fingerprint) {
    return {
      ok: false,
      checks: [
        { name: 'server key', ok: false, detail: 'server_key does not match server_fingerprint' },
      ],
    };
  }
  const publicUserKey = userKey === undefined ? undefined : publicKeyOf(userKey);
  const result = verifyTranscript({
    sessionId: header.session_id,
    h2: fromBase64(header.h2, 'h2', 32),
    records: records.map(recordInput),
    ...(end?.receipt
      ? {
          receipt: {
            view: decodeTranscriptView(end.receipt.session_id, end.receipt),
            signature: fromBase64(end.receipt.signature, 'signature', 64),
          },
        }
      : {}),
    ...(end?.countersign
      ? {
          countersign: {
            view: decodeTranscriptView(header.session_id, end.countersign),
            signature: fromBase64(end.countersign.signature, 'signature'),
          },
        }
      : {}),
    serverKey: importServerKey(spki),
    ...(publicUserKey ? { userKey: publicUserKey } : {}),
  });
  // People read `text`, the chains cover `plaintext`: an edited `text` must not pass unseen.
  // A record kept by digest has no text to show (recordInput refused one that claims some).
  const mismatched = records.filter(
    (r) =>
      r.digest === undefined && fromBase64(r.plaintext, 'plaintext').toString('utf8') !== r.text,
  );
  const byDigest = countDigestRecords(transcript);
  const textCheck = {
    name: 'readable text matches the signed bytes',
    ok: mismatched.length === 0,
    detail:
      mismatched.length === 0
        ? `${records.length} records${byDigest === 0 ? '' : ` (${byDigest} kept by digest, no text)`}`
        : `${mismatched.length} record(s) differ, first at ${mismatched[0]?.dir} ${mismatched[0]?.seq}`,
  };
  return { ...result, ok: result.ok && textCheck.ok, checks: [...result.checks, textCheck] };
}

/**
 * How many record lines carry only a digest (docs/PROTOCOL.md §10 item 25): requests the
 * server refused before any work, kept as SHA-256 of their plaintext.
 */
export function countDigestRecords(transcript: Pick<TranscriptFile, 'records'>): number {
  return transcript.records.filter((r) => r.digest !== undefined).length;
}

/**
 * A record line as the verifier takes it: exactly one of `plaintext` (with its `text`) or
 * `digest` (32 bytes, no text), else the file is malformed.
 */
function recordInput(line: TranscriptRecordLine): TranscriptRecordInput {
  const base = { direction: line.dir, chained: line.chained };
  if (line.digest === undefined) {
    return { ...base, plaintext: fromBase64(line.plaintext, 'plaintext') };
  }
  // The file comes from elsewhere: its members are read as what they may be, not as typed.
  const { digest, plaintext, text } = line as {
    digest: unknown;
    plaintext?: unknown;
    text?: unknown;
  };
  if (plaintext !== undefined || text !== undefined) {
    throw new Error(`record ${line.dir} ${line.seq}: both a digest and a plaintext`);
  }
  if (typeof digest !== 'string') {
    throw new Error(`record ${line.dir} ${line.seq}: digest is not base64 text`);
  }
  return { ...base, digest: fromBase64(digest, 'digest', 32) };
}
