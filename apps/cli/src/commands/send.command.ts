import { ROOM_PATTERN, USERNAME_PATTERN } from '@securechat/protocol';

import { COMMON_HELP, COMMON_OPTIONS, resolveConnection } from '../cli-config';
import { sanitizeForTerminal, sanitizeName, terminalSafeJson } from '../chat/sanitize';
import { writeLine } from '../cli-io';
import { toCliError, toConnectError } from '../cli-errors';
import { createClient } from '../client-factory';
import { readAllInput } from '../read-stdin';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';
import { addressOf, closeAndReport } from './session-runner';

/** Far above any server's body limit; only a guard against piping in the wrong file. */
const MAX_STDIN_BYTES = 1024 * 1024;

const HELP = `Usage: securechat send --to NAME|#room [options] [TEXT]

Sends one signed message and waits until the server has stored it (its "ack"), then closes
the session cleanly and checks the server's receipt. Without TEXT the body is read from
standard input (one trailing newline removed). Prints the server's message id.

Options:
  -t, --to NAME|#room   recipient: a username, or a room you are a member of
      --json            print {"msg_id","server_ts","id"} instead of the bare id
${COMMON_HELP}

Examples:
  securechat send --to bob "lunch at noon?"
  uptime | securechat send --to '#ops'
  SECURECHAT_PASSWORD=… securechat send -u alice --to bob --json "hi"`;

export const sendCommand: Command = {
  name: 'send',
  summary: 'send one message (for scripts)',
  help: HELP,
  async run(args, io, paths) {
    const { values, positionals } = parseCommandArgs(
      'send',
      args,
      { ...COMMON_OPTIONS, to: { type: 'string', short: 't' }, json: { type: 'boolean' } },
      true,
    );
    const to = values.to;
    if (to === undefined) throw new UsageError('--to is required', 'send');
    if (!USERNAME_PATTERN.test(to) && !ROOM_PATTERN.test(to)) {
      throw new UsageError(`--to: "${to}" is neither a username nor a #room`, 'send');
    }
    if (positionals.length > 1) {
      throw new UsageError('give the text as one argument (quote it), or on stdin', 'send');
    }
    let body = positionals[0];
    if (body === undefined) {
      if (io.stdin.isTTY === true) {
        throw new UsageError('no text: give it as an argument or on standard input', 'send');
      }
      body = (await readAllInput(io.stdin, MAX_STDIN_BYTES)).replace(/\r?\n$/, '');
    }
    if (body === '') throw new UsageError('the message is empty', 'send');
    const settings = await resolveConnection(values, io.env, paths);
    const { client } = await createClient(settings, paths, io, { reconnect: false });
    client.on('error', (error) =>
      writeLine(io.stderr, `warning: ${sanitizeForTerminal(error.message)}`),
    );
    const address = addressOf(settings);
    try {
      await client.connect();
    } catch (error) {
      await client.close().catch(() => undefined);
      throw toConnectError(error, address);
    }
    try {
      const ack = await client.send(to, body);
      // The id is the server's choice: printed as a name, never raw.
      writeLine(
        io.stdout,
        values.json === true
          ? terminalSafeJson({ msg_id: ack.msgId, server_ts: ack.serverTs, id: ack.id })
          : sanitizeName(ack.msgId),
      );
    } catch (error) {
      await client.close().catch(() => undefined);
      throw toCliError(error, address);
    }
    return closeAndReport(client, io, true);
  },
};
