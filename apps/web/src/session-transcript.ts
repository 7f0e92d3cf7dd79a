/**
 * One session's transcript in the file format `securechat verify-transcript` checks
 * (libs/protocol transcript-file.ts, docs/PROTOCOL.md §8.5): the header, every record after the
 * login in either direction, and the end line. Records arrive (from the session's `onRecord`)
 * before the header can be written — `login_ok` is recorded by the handshake — so they are kept
 * and the header is put first when the file is made.
 */
import {
  type RecordEvent,
  type TranscriptEnd,
  type TranscriptEndLine,
  type TranscriptHeader,
  type TranscriptHeaderLine,
  TranscriptLines,
  type TranscriptRecordLine,
} from '@securechat/protocol';

export class SessionTranscript {
  readonly #lines = new TranscriptLines();
  readonly #records: TranscriptRecordLine[] = [];
  #header: TranscriptHeaderLine | undefined;
  #end: TranscriptEndLine | undefined;

  /** For the session option `onRecord`. */
  readonly onRecord = (event: RecordEvent): void => {
    this.#records.push(this.#lines.record(event));
  };

  setHeader(header: TranscriptHeader): void {
    this.#header = TranscriptLines.header(header);
  }

  /** Once: the first way a session ends is how it ended. */
  end(end: TranscriptEnd): void {
    this.#end ??= this.#lines.end(end);
  }

  get sessionId(): string | undefined {
    return this.#header?.session_id;
  }

  get ended(): boolean {
    return this.#end !== undefined;
  }

  /** The file's text (JSON lines), or undefined before the login succeeded. */
  text(): string | undefined {
    if (this.#header === undefined) return undefined;
    const lines: object[] = [this.#header, ...this.#records, ...(this.#end ? [this.#end] : [])];
    return lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
  }
}
