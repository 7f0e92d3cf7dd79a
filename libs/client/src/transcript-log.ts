/**
 * The local transcript (docs/PROTOCOL.md §8.5): every session is logged as JSON lines so that
 * the user can later prove what was said. One file per session:
 *
 * 1. a header `{"kind":"header", session_id, server, server_key, server_fingerprint, username,
 *    h2, started_at}` (binary values base64; `server_key` is the SPKI of the server identity);
 * 2. one line per record in either direction, in order, from the session's `onRecord`:
 *    `{"kind":"record", dir, seq, chained, plaintext, text}` — `plaintext` is the exact bytes
 *    (base64), `text` a UTF-8 copy for people. The login record (c2s 0, it holds the password)
 *    never reaches `onRecord`, so it never appears (§8.1);
 * 3. a last line `{"kind":"end", reason, receipt, countersign, views_match, signature_valid}`.
 *
 * A server's export (admin API) is the same format, except that a request its gateway refused
 * before any service saw it (a `send` with a bad signature, a request breaking a value rule) is
 * a line `{"kind":"record", dir, seq, chained, digest}` instead: `digest` is SHA-256 of the
 * plaintext (base64, 32 bytes), all §8.1 needs to chain it (docs/PROTOCOL.md §10 item 25).
 * Files without such lines, older exports included, read exactly as before.
 *
 * With those, `verifyTranscriptFile` recomputes both chains and checks both signatures (§8.5).
 */
import { type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  type CountersignMessage,
  type Receipt,
  type RecordEvent,
  type TranscriptRecordInput,
  type TranscriptVerification,
  type TranscriptView,
  fingerprint as fingerprintOf,
  fromBase64,
  importServerKey,
  verifyTranscript,
} from '@securechat/protocol';

import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './atomic-file';

export interface TranscriptHeader {
  readonly sessionId: string;
  /** `host:port` of the server. */
  readonly server: string;
  /** SPKI DER of the server's identity key, as presented in `server_hello` (§4.3). */
  readonly serverKey: Buffer;
  readonly serverFingerprint: string;
  readonly username: string;
  /** Where both chains start (§8.1). */
  readonly h2: Buffer;
  readonly startedAt: Date;
}

/** How a session ended. */
export interface TranscriptEnd {
  /** `closed`: bye → receipt → countersign ran; anything else: no (complete) receipt. */
  readonly reason: 'closed' | 'connection_lost' | 'error';
  readonly viewsMatch?: boolean;
  readonly signatureValid?: boolean;
}

/** The log of one session. `record` never throws: a failing disk must not break the session. */
export interface TranscriptSessionLog {
  /** Where the log goes (a file path), for the user. */
  readonly location: string;
  record(event: RecordEvent): void;
  /** Writes the last line and makes everything durable (fsync). Reports earlier write errors. */
  finish(end: TranscriptEnd): Promise<void>;
}

/** Opens one log per session. */
export interface TranscriptSink {
  open(header: TranscriptHeader): TranscriptSessionLog;
}

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
  readonly reason: TranscriptEnd['reason'];
  /** The `receipt` record as received (without `type`), or null. */
  readonly receipt: Omit<Receipt, 'type'> | null;
  /** The `countersign` record as sent (without `type`), or null. */
  readonly countersign: Omit<CountersignMessage, 'type'> | null;
  readonly views_match: boolean | null;
  readonly signature_valid: boolean | null;
}

/** Builds the lines; the sinks only decide where they go. */
class TranscriptLines {
  receipt: Omit<Receipt, 'type'> | null = null;
  countersign: Omit<CountersignMessage, 'type'> | null = null;

  static header(header: TranscriptHeader): TranscriptHeaderLine {
    return {
      kind: 'header',
      version: 1,
      session_id: header.sessionId,
      server: header.server,
      server_key: header.serverKey.toString('base64'),
      server_fingerprint: header.serverFingerprint,
      username: header.username,
      h2: header.h2.toString('base64'),
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

  /** `receipt` and `countersign` are the unchained records (§8.1); kept for the last line. */
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

/** Keeps every session's lines in memory: for tests. */
export class MemoryTranscriptSink implements TranscriptSink {
  readonly sessions: { header: TranscriptHeaderLine; lines: object[]; finished: boolean }[] = [];

  open(header: TranscriptHeader): TranscriptSessionLog {
    const lines = new TranscriptLines();
    const entry = {
      header: TranscriptLines.header(header),
      lines: [] as object[],
      finished: false,
    };
    entry.lines.push(entry.header);
    this.sessions.push(entry);
    return {
      location: `memory:${this.sessions.length - 1}`,
      record: (event) => {
        entry.lines.push(lines.record(event));
      },
      finish: (end) => {
        entry.lines.push(lines.end(end));
        entry.finished = true;
        return Promise.resolve();
      },
    };
  }
}

export interface FileTranscriptSinkOptions {
  /** Directory of the transcript files (created with mode 0700). */
  readonly directory: string;
  /** Bytes buffered before a write (default 64 KiB): the bound on memory held per session. */
  readonly bufferBytes?: number;
  /** Longest time a line waits in the buffer (default 250 ms). */
  readonly flushIntervalMs?: number;
}

/**
 * One `.jsonl` file per session, mode 0600. Lines go through a bounded buffer that is written
 * out synchronously when full and on a short timer — synchronous so that the order of records
 * never depends on scheduling and the buffer can never grow past its bound — and the file is
 * fsynced at the end of the session.
 */
export class FileTranscriptSink implements TranscriptSink {
  constructor(private readonly options: FileTranscriptSinkOptions) {}

  open(header: TranscriptHeader): TranscriptSessionLog {
    mkdirSync(this.options.directory, { recursive: true, mode: PRIVATE_DIR_MODE });
    const stamp = header.startedAt.toISOString().replace(/[:.]/g, '-');
    const safeId = header.sessionId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
    const path = join(
      this.options.directory,
      `${stamp}-${safeId}-${randomBytes(3).toString('hex')}.jsonl`,
    );
    return new FileTranscriptLog(
      path,
      header,
      this.options.bufferBytes ?? 64 * 1024,
      this.options.flushIntervalMs ?? 250,
    );
  }
}

class FileTranscriptLog implements TranscriptSessionLog {
  readonly #lines = new TranscriptLines();
  readonly #fd: number;
  #buffer: string[] = [];
  #buffered = 0;
  #timer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  #finished = false;

  constructor(
    readonly location: string,
    header: TranscriptHeader,
    private readonly bufferBytes: number,
    private readonly flushIntervalMs: number,
  ) {
    this.#fd = openSync(location, 'wx', PRIVATE_FILE_MODE);
    this.#append(TranscriptLines.header(header));
  }

  record(event: RecordEvent): void {
    if (this.#finished) return;
    this.#append(this.#lines.record(event));
  }

  finish(end: TranscriptEnd): Promise<void> {
    if (this.#finished) return Promise.resolve();
    this.#append(this.#lines.end(end));
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#flush();
    try {
      if (this.#failure === undefined) fsyncSync(this.#fd);
    } catch (error) {
      this.#failure ??= error as Error;
    }
    try {
      closeSync(this.#fd);
    } catch (error) {
      this.#failure ??= error as Error;
    }
    return this.#failure === undefined
      ? Promise.resolve()
      : Promise.reject(new Error(`transcript ${this.location}: ${this.#failure.message}`));
  }

  #append(line: object): void {
    const text = `${JSON.stringify(line)}\n`;
    this.#buffer.push(text);
    this.#buffered += Buffer.byteLength(text);
    if (this.#buffered >= this.bufferBytes) {
      this.#flush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#flush(), this.flushIntervalMs);
      this.#timer.unref();
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffered === 0) return;
    const data = Buffer.from(this.#buffer.join(''), 'utf8');
    this.#buffer = [];
    this.#buffered = 0;
    if (this.#failure !== undefined) return;
    try {
      let written = 0;
      while (written < data.length) written += writeSync(this.#fd, data, written);
    } catch (error) {
      this.#failure = error as Error;
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

export async function readTranscriptFile(path: string): Promise<TranscriptFile> {
  return parseTranscript(await readFile(path, 'utf8'));
}

function viewOf(
  sessionId: string,
  v: Omit<Receipt, 'type' | 'signature' | 'session_id'>,
): TranscriptView {
  return {
    sessionId,
    c2sCount: v.c2s_count,
    c2sChain: fromBase64(v.c2s_chain, 'c2s_chain', 32),
    s2cCount: v.s2c_count,
    s2cChain: fromBase64(v.s2c_chain, 's2c_chain', 32),
  };
}

/**
 * Checks a transcript offline (§8.5) with libs/protocol's verifier: both chains recomputed
 * from the records, the receipt signature under the server key from the header (whose
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
  const publicUserKey =
    userKey === undefined || userKey.type === 'public' ? userKey : createPublicKey(userKey);
  const result = verifyTranscript({
    sessionId: header.session_id,
    h2: fromBase64(header.h2, 'h2', 32),
    records: records.map(recordInput),
    ...(end?.receipt
      ? {
          receipt: {
            view: viewOf(end.receipt.session_id, end.receipt),
            signature: fromBase64(end.receipt.signature, 'signature', 64),
          },
        }
      : {}),
    ...(end?.countersign
      ? {
          countersign: {
            view: viewOf(header.session_id, end.countersign),
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

export async function verifyTranscriptFile(
  path: string,
  userKey?: KeyObject,
): Promise<TranscriptVerification> {
  return verifyTranscriptLog(await readTranscriptFile(path), userKey);
}
