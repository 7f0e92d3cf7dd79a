import { type ErrorCode } from './error-codes';

export interface ProtocolErrorOptions {
  /** The request's `id`, echoed in the `error` frame (PROTOCOL.md §6). */
  readonly id?: string;
  /** Seconds, with `rate_limited` (PROTOCOL.md §2). */
  readonly retryAfter?: number;
  readonly cause?: unknown;
}

/**
 * A violation of securechat/1 by the peer, or an answer the protocol defines, carrying the
 * PROTOCOL.md §2 error code to put on the wire. Messages are fixed texts: they never quote the
 * peer's input, which may hold secrets.
 */
export class ProtocolError extends Error {
  override readonly name: string = 'ProtocolError';
  readonly code: ErrorCode;
  readonly id?: string;
  readonly retryAfter?: number;
  /** True when no `error` frame should be sent before closing (see RecordAuthenticationError). */
  readonly silent: boolean = false;

  constructor(code: ErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.id !== undefined) this.id = options.id;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}
