import { type IncomingMessage } from '@securechat/client';

import {
  COMMON_HELP,
  COMMON_OPTIONS,
  RECONNECT_HELP,
  RECONNECT_OPTIONS,
  reconnectChoice,
  resolveConnection,
} from '../cli-config';
import { sanitizeForTerminal } from '../chat/sanitize';
import { writeLine } from '../cli-io';
import { toConnectError, toSessionEndError } from '../cli-errors';
import { createClient } from '../client-factory';
import { EXIT, type ExitCode } from '../exit-codes';
import { messageJson } from '../message-json';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';
import { addressOf, closeAndReport } from './session-runner';

const HELP = `Usage: securechat listen [options]

Logs in and prints one JSON line per incoming message on standard output, starting with those
that arrived while you were away:
  {"msg_id","from","to","body","ts","server_ts","verification","sender_fingerprint"}
"verification" is "verified", or a flag: "bad_signature", "key_changed" (the server now gives
another key for the sender than the one pinned), "unknown_sender_key". Flagged messages are
printed too; check the field. Reconnects by itself; status goes to standard error. Stops on
Ctrl-C / SIGTERM (closing the session cleanly), or per the options below.

Options:
  -n, --count N        exit after N messages
      --timeout SEC    exit after SEC seconds
${RECONNECT_HELP}
${COMMON_HELP}

Examples:
  securechat listen -u bob | jq -r 'select(.verification=="verified") | .from + ": " + .body'
  securechat listen -u bob --count 1 --timeout 30
  securechat listen -u bob --max-reconnects 5     # exit 3 when the server stays away`;

export const listenCommand: Command = {
  name: 'listen',
  summary: 'print incoming messages as JSON lines (for scripts)',
  help: HELP,
  async run(args, io, paths) {
    const { values } = parseCommandArgs('listen', args, {
      ...COMMON_OPTIONS,
      ...RECONNECT_OPTIONS,
      count: { type: 'string', short: 'n' },
      timeout: { type: 'string' },
    });
    const count = positiveInt(values.count, '--count');
    const timeoutS = positiveInt(values.timeout, '--timeout');
    const reconnect = reconnectChoice(values['max-reconnects'], 'listen');
    const settings = await resolveConnection(values, io.env, paths);
    const { client } = await createClient(settings, paths, io, { reconnect });
    const address = addressOf(settings);

    let received = 0;
    let resolveDone!: (code: ExitCode | Error) => void;
    const done = new Promise<ExitCode | Error>((resolve) => (resolveDone = resolve));
    client.on('message', (message: IncomingMessage) => {
      // Refusing (throwing) leaves a message unconfirmed, so the server keeps it pending for
      // the next listener: one past --count must not be acknowledged unseen.
      if (count !== undefined && received >= count) throw new NotTaken();
      received += 1;
      writeLine(io.stdout, messageJson(message));
      if (count !== undefined && received >= count) resolveDone(EXIT.ok);
    });
    // Why the session that was up ended, for the message when logging in again is refused.
    let lostBecause: Error | undefined;
    client.on('state', (state, detail) => {
      if (state === 'reconnecting' && detail.attempt === 1) lostBecause = detail.error;
      if (state === 'reconnecting') {
        writeLine(
          io.stderr,
          `connection lost; reconnecting (attempt ${detail.attempt ?? '?'}) in ${detail.delayMs ?? 0} ms`,
        );
      } else if (state === 'connected') {
        writeLine(io.stderr, `listening as ${settings.user} on ${address}`);
      } else if (state === 'closed' && detail.error !== undefined) {
        resolveDone(detail.error);
      }
    });
    client.on('error', (error) => {
      if (!(error instanceof NotTaken)) {
        writeLine(io.stderr, `warning: ${sanitizeForTerminal(error.message)}`);
      }
    });
    try {
      await client.connect();
    } catch (error) {
      throw toConnectError(error, address);
    }
    const timer =
      timeoutS === undefined ? undefined : setTimeout(() => resolveDone(EXIT.ok), timeoutS * 1000);
    void io.interrupted.then(() => resolveDone(EXIT.ok));
    const outcome = await done;
    if (timer) clearTimeout(timer);
    if (outcome instanceof Error) throw toSessionEndError(outcome, address, lostBecause);
    return closeAndReport(client, io, true);
  },
};

/** Thrown back to the client for a message this run will not print. */
class NotTaken extends Error {
  override readonly name = 'NotTaken';
}

function positiveInt(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${name} must be a positive whole number`, 'listen');
  }
  return Number(text);
}
