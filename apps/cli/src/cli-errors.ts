/**
 * The one place where a failure becomes an exit code and a message for people. Protocol error
 * codes go through an exhaustive switch, so a new code cannot be forgotten here.
 */
import {
  ClientClosedError,
  ClientRequestError,
  ConnectionClosedError,
  HandshakeTimeoutError,
  RequestTimeoutError,
  TrustConfigurationError,
  describeServerIdentityError,
} from '@securechat/client';
import { type ErrorCode, PeerError, ServerIdentityError } from '@securechat/protocol';

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

/** The exit code for an `error` code the server sent. */
export function exitCodeForPeerCode(code: ErrorCode): ExitCode {
  switch (code) {
    case 'auth_failed':
    case 'rate_limited':
    case 'forbidden':
    case 'conflict':
      return EXIT.authFailed;
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
      return 'the server is shutting down; try again shortly';
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

/** Any failure → a CliError with the right exit code and a message without secrets. */
export function toCliError(error: unknown, address: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ServerIdentityError) {
    const hint =
      error.reason === 'server_key_untrusted'
        ? '\nTo trust it, check the fingerprint out of band and pass --fingerprint, or use --trust-on-first-use.'
        : '';
    return new CliError(describeServerIdentityError(error, address) + hint, EXIT.serverRefused, {
      cause: error,
    });
  }
  if (error instanceof TrustConfigurationError) {
    return new CliError(error.message, EXIT.usage, { cause: error });
  }
  if (error instanceof ClientRequestError) {
    return new CliError(
      `${error.request}: ${explainPeerCode(error.code, error.peerMessage, error.retryAfter)}`,
      exitCodeForPeerCode(error.code),
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
