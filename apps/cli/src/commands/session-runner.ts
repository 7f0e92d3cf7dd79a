import { type SecureChatClient } from '@securechat/client';

import { type ConnectionSettings } from '../cli-config';
import { type CliIo, writeLine } from '../cli-io';
import { EXIT, type ExitCode } from '../exit-codes';

/** `host:port` for messages. */
export function addressOf(settings: ConnectionSettings): string {
  const { host, port } = settings.server;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The orderly close (§8.4 of docs/PROTOCOL.md: bye → receipt → countersign) and what it
 * proved. A receipt that disagrees with our view is a verification failure (exit 6): the
 * server's record of the session is not ours.
 */
export async function closeAndReport(
  client: SecureChatClient,
  io: CliIo,
  quiet = false,
): Promise<ExitCode> {
  const result = await client.close();
  if (!result.receiptReceived) {
    if (!quiet) writeLine(io.stderr, 'closed without a session receipt (connection was down)');
    return EXIT.ok;
  }
  if (!result.viewsMatch || !result.signatureValid) {
    writeLine(
      io.stderr,
      `WARNING: the server's session receipt does not match this client's view ` +
        `(views match: ${result.viewsMatch}, signature valid: ${result.signatureValid}).` +
        (result.transcript ? `\nLocal transcript: ${result.transcript}` : ''),
    );
    return EXIT.verificationFailed;
  }
  if (!quiet) {
    writeLine(
      io.stderr,
      `session closed; receipt verified` +
        (result.transcript ? ` (transcript: ${result.transcript})` : ''),
    );
  }
  return EXIT.ok;
}
