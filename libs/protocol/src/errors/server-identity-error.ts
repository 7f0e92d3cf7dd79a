/** Why a client refuses the server during the handshake (PROTOCOL.md §3 step 3). */
export type ServerIdentityFailure =
  /** `server_key` is not the key pinned or configured for this server. */
  | 'server_key_mismatch'
  /** No key is pinned and the trust-on-first-use decision was "no". */
  | 'server_key_untrusted'
  /** `server_auth.signature` does not verify under `server_key` over H1. */
  | 'bad_server_signature';

/**
 * The client aborts and sends nothing more (PROTOCOL.md §3 step 3). Carries both fingerprints so
 * that the user can be shown them, as SSH does for a changed host key.
 */
export class ServerIdentityError extends Error {
  override readonly name = 'ServerIdentityError';

  constructor(
    readonly reason: ServerIdentityFailure,
    readonly presentedFingerprint: string,
    readonly expectedFingerprint?: string,
  ) {
    super(ServerIdentityError.describe(reason, presentedFingerprint, expectedFingerprint));
  }

  private static describe(reason: ServerIdentityFailure, presented: string, expected?: string) {
    switch (reason) {
      case 'server_key_mismatch':
        return `the server's key has changed: expected ${expected ?? '?'}, server presented ${presented}`;
      case 'server_key_untrusted':
        return `the server's key ${presented} is not trusted`;
      case 'bad_server_signature':
        return `the server's handshake signature does not verify under ${presented}`;
    }
  }
}
