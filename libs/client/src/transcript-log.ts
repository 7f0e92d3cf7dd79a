/**
 * The local transcript (docs/PROTOCOL.md §8.5): every session is logged as JSON lines so that
 * the user can later prove what was said. The file's format, its parser and its offline
 * verifier are the protocol's (libs/protocol transcript-file.ts, shared with the server's
 * export); this module decides where lines go — files with fsync, or memory for tests — and
 * builds them from a session's records. The login record (c2s 0, it holds the password) never
 * reaches `onRecord`, so it never appears (docs/PROTOCOL.md §8.1).
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  type RecordEvent,
  type TranscriptEnd,
  type TranscriptFile,
  type TranscriptHeader,
  type TranscriptHeaderLine,
  type TranscriptVerification,
  parseTranscript,
  TranscriptLines,
  verifyTranscriptLog,
} from '@securechat/protocol';

export type { TranscriptEnd, TranscriptHeader } from '@securechat/protocol';

import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './atomic-file';

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

export async function readTranscriptFile(path: string): Promise<TranscriptFile> {
  return parseTranscript(await readFile(path, 'utf8'));
}

export async function verifyTranscriptFile(
  path: string,
  userKey?: KeyObject,
): Promise<TranscriptVerification> {
  return verifyTranscriptLog(await readTranscriptFile(path), userKey);
}
