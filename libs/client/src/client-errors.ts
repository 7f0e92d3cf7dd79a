/**
 * Errors of the client. None of them carries the password or key material: messages name the
 * request and the protocol's error code (docs/PROTOCOL.md §9), never the caller's input.
 */
import { type ErrorCode, ProtocolError } from '@securechat/protocol';

/** The server answered a request with `error` (docs/PROTOCOL.md §3.5): act on `code`. */
export class ClientRequestError extends Error {
  override readonly name = 'ClientRequestError';

  constructor(
    readonly code: ErrorCode,
    /** The server's text, for people and logs. */
    readonly peerMessage: string,
    /** The request type that was answered (`send`, `join`, …). */
    readonly request: string,
    /** The client id of a `send`. */
    readonly id?: string,
    /** Seconds, with `rate_limited`. */
    readonly retryAfter?: number,
  ) {
    super(`${request} failed: ${code} (${peerMessage})`);
  }
}

/** The client was closed, or gave up reconnecting, before the request was answered. */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError';

  constructor(message = 'the client is closed', options?: { cause?: unknown }) {
    super(message, options);
  }

  /** The error pending requests fail with when the client ends, for `reason` if any. */
  static because(reason?: Error): ClientClosedError {
    return reason === undefined
      ? new ClientClosedError()
      : new ClientClosedError(`the client is closed: ${reason.message}`, { cause: reason });
  }
}

/** No answer within `requestTimeoutMs`. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';

  constructor(
    readonly request: string,
    readonly timeoutMs: number,
  ) {
    super(`${request}: no answer within ${timeoutMs} ms`);
  }
}

/** Too many sends await their `ack`: wait for some before sending more (backpressure). */
export class PendingLimitError extends Error {
  override readonly name = 'PendingLimitError';

  constructor(readonly limit: number) {
    super(`${limit} sends are already waiting for the server's ack`);
  }
}

/** The handshake did not complete in time (docs/PROTOCOL.md §4.1). */
export class HandshakeTimeoutError extends Error {
  override readonly name = 'HandshakeTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`the handshake did not complete within ${timeoutMs} ms`);
  }
}

/**
 * The server's first answer was not a securechat/1 `server_hello`: bytes that are no frame
 * (`frame_too_large`, `bad_frame` from the frame decoder: an HTTP server's "HTTP/1.1 400" reads
 * as a frame of 1.2 GB), or a first frame of another kind. The address is some other service.
 * Still the ProtocolError it was, with its code; that error is the cause. A protocol error
 * after a valid `server_hello` is never this one.
 */
export class NotSecureChatServerError extends ProtocolError {
  override readonly name = 'NotSecureChatServerError';

  constructor(cause: ProtocolError) {
    super(cause.code, "the server's first answer is not a securechat/1 server_hello", { cause });
  }
}

/** The connection ended before the handshake completed. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

/**
 * A configured fingerprint disagrees with the one pinned in known_servers: the client refuses
 * to choose between them (docs/PROTOCOL.md §4.3: a pinned key is never replaced silently).
 */
export class TrustConfigurationError extends Error {
  override readonly name = 'TrustConfigurationError';

  constructor(
    readonly address: string,
    readonly pinnedFingerprint: string,
    readonly configuredFingerprint: string,
  ) {
    super(
      `${address} is pinned to ${pinnedFingerprint} in known_servers but ${configuredFingerprint} was configured; remove one of them`,
    );
  }
}

/**
 * The server's receipt (docs/PROTOCOL.md §8.4) disagrees with our view of the session, or is not
 * signed by the pinned server key. The session was still countersigned with our own view: the
 * transcript keeps the evidence.
 */
export class ReceiptCheckError extends Error {
  override readonly name = 'ReceiptCheckError';

  constructor(readonly code: 'receipt_views_differ' | 'receipt_signature_invalid') {
    super(
      code === 'receipt_views_differ'
        ? "the server's receipt does not match our view of the session"
        : "the server's receipt is not signed by the pinned server key",
    );
  }
}
