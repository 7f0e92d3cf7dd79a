/**
 * The server's identity key cannot be read in this process, so an export could not name the
 * key its receipts are signed with. Says which file was tried; never its contents.
 */
export class ServerKeyUnavailableError extends Error {
  override readonly name = 'ServerKeyUnavailableError';
  readonly code = 'server_key_unavailable';

  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(
      `the server identity key is not available in this process (${path}: ${reason}); ` +
        'point SECURECHAT_IDENTITY_KEY at the key file the gateways use, or at its public key',
    );
  }
}
