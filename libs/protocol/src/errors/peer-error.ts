import { type ErrorCode } from './error-codes';

/**
 * The peer sent an `error` frame or record (PROTOCOL.md §2): what it said, for the caller to act on
 * `code`.
 */
export class PeerError extends Error {
  override readonly name = 'PeerError';

  constructor(
    readonly code: ErrorCode,
    readonly peerMessage: string,
    readonly retryAfter?: number,
    readonly id?: string,
  ) {
    super(`peer error ${code}: ${peerMessage}`);
  }
}
