/**
 * The glue between one connection and its local transcript (docs/PROTOCOL.md §8.5): records that
 * cross the connection before the session exists (login_ok arrives inside the handshake) are held
 * until the log can be opened, the server's key is taken from `server_hello` for the header, and
 * the log is finished exactly once however the connection ends. No I/O of its own: the sink does
 * it.
 */
import {
  type RawFrame,
  type ReceiptCheck,
  type RecordEvent,
  fingerprint as fingerprintOf,
  fromBase64,
  parseFrame,
} from '@securechat/protocol';

import { type TranscriptEnd, type TranscriptHeader, type TranscriptSink } from './transcript-log';

/** The header but for the server key, which the log took from the handshake itself. */
export type SessionLogHeader = Omit<TranscriptHeader, 'serverKey' | 'serverFingerprint'> & {
  /** What the handshake verified; the log is not opened unless it names the recorded key. */
  readonly serverFingerprint: string | undefined;
};

export class SessionLog {
  readonly #sink: TranscriptSink | undefined;
  readonly #onError: (error: Error) => void;
  #log: ReturnType<TranscriptSink['open']> | undefined;
  #opened = false;
  #finished = false;
  #early: RecordEvent[] = [];
  #serverKey: Buffer | undefined;

  /** `onError`: a failing transcript is reported, never allowed to break the session. */
  constructor(sink: TranscriptSink | undefined, onError: (error: Error) => void) {
    this.#sink = sink;
    this.#onError = onError;
  }

  /** The transcript file, once opened. */
  get location(): string | undefined {
    return this.#log?.location;
  }

  /** A handshake frame: the SPKI of `server_hello` goes into the header (checked in `open`). */
  observeHandshakeFrame(frame: RawFrame): void {
    if (this.#serverKey !== undefined) return;
    try {
      const parsed = parseFrame(frame.body);
      if (parsed.type === 'server_hello') {
        this.#serverKey = fromBase64(parsed.server_key, 'server_key');
      }
    } catch {
      // The handshake reports the malformed frame itself.
    }
  }

  /** The session's `onRecord`. */
  record(event: RecordEvent): void {
    if (this.#log !== undefined) this.#log.record(event);
    else if (!this.#opened) this.#early.push(event);
  }

  /**
   * The handshake is done: opens the log with what was held back. Without a sink, or when the
   * log cannot be opened, later records are dropped (nothing would read them).
   */
  open(header: SessionLogHeader): void {
    this.#opened = true;
    const early = this.#early;
    this.#early = [];
    if (this.#sink === undefined) return;
    try {
      const serverKey = this.#serverKey;
      const serverFingerprint = header.serverFingerprint;
      if (serverKey === undefined || fingerprintOf(serverKey) !== serverFingerprint) {
        throw new Error('the server key of the handshake could not be recorded');
      }
      this.#log = this.#sink.open({ ...header, serverKey, serverFingerprint });
      for (const event of early) this.#log.record(event);
    } catch (error) {
      this.#onError(
        new Error('the transcript of this session could not be opened', { cause: error }),
      );
    }
  }

  /** The end line of an orderly close: `closed` with the receipt's check, or none came. */
  finishWithReceipt(check: ReceiptCheck | undefined): Promise<void> {
    return this.finish(
      check === undefined
        ? { reason: 'connection_lost' }
        : { reason: 'closed', viewsMatch: check.viewsMatch, signatureValid: check.signatureValid },
    );
  }

  /** Writes the end line once; later calls do nothing. */
  finish(end: TranscriptEnd): Promise<void> {
    if (this.#log === undefined || this.#finished) return Promise.resolve();
    this.#finished = true;
    return this.#log.finish(end).catch((error: unknown) => {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    });
  }
}
