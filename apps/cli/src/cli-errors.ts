/**
 * The one place where a failure becomes an exit code and a message for people. Protocol error
 * codes go through an exhaustive switch, so a new code cannot be forgotten here.
 */
import {
  ClientClosedError,
  ClientRequestError,
  ConnectionClosedError,
  HandshakeTimeoutError,
  NotSecureChatServerError,
  RequestTimeoutError,
  TrustConfigurationError,
  describeServerIdentityError,
} from '@securechat/client';
import {
  type ErrorCode,
  PeerError,
  ProtocolError,
  RecordAuthenticationError,
  ServerIdentityError,
} from '@securechat/protocol';

import { sanitizeForTerminal } from './chat/sanitize';
import { CliError } from './cli.error';
import { EXIT, type ExitCode } from './exit-codes';

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

/**
 * The exit code for an `error` code the server sent. After login (`request`: an answer to one
 * of our requests) a refusal is the request's, never the login's: `forbidden` there means "not
 * a member of that room", not "you may not log in".
 */
export function exitCodeForPeerCode(code: ErrorCode, request = false): ExitCode {
  switch (code) {
    case 'auth_failed':
    case 'rate_limited':
    case 'forbidden':
    case 'conflict':
      return request ? EXIT.requestRefused : EXIT.authFailed;
    case 'bad_request':
    case 'not_found':
    case 'too_large':
      return EXIT.requestRefused;
    case 'shutting_down':
    case 'handshake_timeout':
      return EXIT.unreachable;
    case 'bad_frame':
    case 'frame_too_large':
    case 'unsupported_protocol':
    case 'unexpected_message':
    case 'internal':
      return EXIT.failure;
  }
}

/**
 * What a peer error means to the person at the keyboard. The server's message is quoted as one
 * sanitized line: it cannot add lines of its own or hide anything in the terminal.
 */
function explainPeerCode(code: ErrorCode, message: string, retryAfter?: number): string {
  const peerMessage = sanitizeForTerminal(message);
  switch (code) {
    case 'auth_failed':
      return 'login refused: wrong username, password or key';
    case 'rate_limited':
      return `too many attempts; try again in ${retryAfter ?? 'a few'} seconds`;
    case 'forbidden':
      return `refused by the server: ${peerMessage}`;
    case 'conflict':
      return `refused: ${peerMessage} (is the username taken?)`;
    case 'shutting_down':
      // Also how an operator's disable, key or password change ends a session
      // (docs/PROTOCOL.md §10 item 20).
      return `the server closed the session: ${peerMessage}`;
    case 'bad_request':
    case 'not_found':
    case 'too_large':
    case 'handshake_timeout':
    case 'bad_frame':
    case 'frame_too_large':
    case 'unsupported_protocol':
    case 'unexpected_message':
    case 'internal':
      return `server error ${code}: ${peerMessage}`;
  }
}

/**
 * How a session that was up ended for good. A login refused right after the server closed the
 * session is not a typo in the password: the account was disabled, or its password or key
 * changed, in between (the server does not say which).
 */
export function toSessionEndError(
  error: unknown,
  address: string,
  lostBecause: Error | undefined,
): CliError {
  if (lostBecause !== undefined && error instanceof PeerError && error.code === 'auth_failed') {
    const why =
      lostBecause instanceof PeerError
        ? `: ${sanitizeForTerminal(lostBecause.peerMessage)}`
        : ` (${sanitizeForTerminal(lostBecause.message)})`;
    return new CliError(
      `the server closed the session${why}; logging in again was refused ` +
        '(auth_failed): the account may have been disabled or its credentials changed',
      EXIT.authFailed,
      { cause: error },
    );
  }
  return toCliError(error, address);
}

/**
 * Why connecting failed. Only a first answer that is not a securechat/1 `server_hello` means
 * the address is some other service (an HTTP server answers "HTTP/1.1 400", which reads as a
 * frame of 1.2 GB): exit 3, as for an address where nothing listens. A protocol error after a
 * valid `server_hello` is the server's (or something in between) and goes through the usual
 * mapping; a record that fails to authenticate in the handshake is refused like a server key
 * that fails its proof (exit 5).
 */
export function toConnectError(error: unknown, address: string): CliError {
  if (error instanceof NotSecureChatServerError) {
    return new CliError(
      `${address} is not a securechat/1 server (its answer is not the protocol: ${error.code})`,
      EXIT.unreachable,
      { cause: error },
    );
  }
  if (error instanceof RecordAuthenticationError) {
    return new CliError(
      `${address}: the handshake failed verification: a record from the server did not ` +
        'authenticate (possible tampering with the connection)',
      EXIT.serverRefused,
      { cause: error },
    );
  }
  return toCliError(error, address);
}

/** Any failure → a CliError with the right exit code and a message without secrets. */
export function toCliError(error: unknown, address: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ServerIdentityError) {
    const hint =
      error.reason === 'server_key_untrusted'
        ? '\nTo trust it, check the fingerprint out of band and pass --fingerprint, or use --trust-on-first-use.'
        : error.reason === 'bad_server_signature'
          ? '\nThe handshake failed verification (possible tampering with the connection).'
          : '';
    return new CliError(describeServerIdentityError(error, address) + hint, EXIT.serverRefused, {
      cause: error,
    });
  }
  if (error instanceof TrustConfigurationError) {
    return new CliError(error.message, EXIT.usage, { cause: error });
  }
  if (error instanceof ClientRequestError) {
    // No request name in front: the command's name already is (`securechat send: …`).
    return new CliError(
      explainPeerCode(error.code, error.peerMessage, error.retryAfter),
      exitCodeForPeerCode(error.code, true),
      { cause: error },
    );
  }
  if (error instanceof PeerError) {
    return new CliError(
      explainPeerCode(error.code, error.peerMessage, error.retryAfter),
      exitCodeForPeerCode(error.code),
      { cause: error },
    );
  }
  if (error instanceof ProtocolError) {
    // The server (or something in between) broke the protocol: its code, never its input.
    return new CliError(
      `${address} broke the protocol (${error.code}): ${error.message}`,
      exitCodeForPeerCode(error.code),
      { cause: error },
    );
  }
  if (
    error instanceof HandshakeTimeoutError ||
    error instanceof ConnectionClosedError ||
    error instanceof RequestTimeoutError ||
    error instanceof ClientClosedError
  ) {
    return new CliError(`${address}: ${error.message}`, EXIT.unreachable, { cause: error });
  }
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof errno === 'string' && NETWORK_ERRNOS.has(errno)) {
    return new CliError(`cannot reach ${address}: ${errno}`, EXIT.unreachable, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(message, EXIT.failure, { cause: error });
}
