import { COMMON_HELP, COMMON_OPTIONS, resolveConnection } from '../cli-config';
import { sanitizeForTerminal } from '../chat/sanitize';
import { writeLine } from '../cli-io';
import { toConnectError } from '../cli-errors';
import { createClient } from '../client-factory';
import { type Command, parseCommandArgs } from './command';
import { addressOf, closeAndReport } from './session-runner';

const HELP = `Usage: securechat register --user NAME [options]

Creates your account on the server with your public key (from --key) and a password, where the
server allows self-registration (ALLOW_REGISTRATION=true). Otherwise ask its operator, who can
use "securechat admin user add".

${COMMON_HELP}

Examples:
  securechat keygen && securechat register --server chat.example.org:7777 --user alice
  SECURECHAT_PASSWORD=… securechat register -u alice --trust-on-first-use`;

export const registerCommand: Command = {
  name: 'register',
  summary: 'create your account on a server that allows it',
  help: HELP,
  async run(args, io, paths) {
    const { values } = parseCommandArgs('register', args, COMMON_OPTIONS);
    const settings = await resolveConnection(values, io.env, paths);
    const { client, keyFingerprint } = await createClient(settings, paths, io, {
      action: 'register',
      reconnect: false,
    });
    client.on('error', (error) =>
      writeLine(io.stderr, `warning: ${sanitizeForTerminal(error.message)}`),
    );
    try {
      await client.connect();
    } catch (error) {
      throw toConnectError(error, addressOf(settings));
    }
    writeLine(io.stdout, `registered ${settings.user} on ${addressOf(settings)}`);
    writeLine(io.stdout, `your key fingerprint: ${keyFingerprint}`);
    return closeAndReport(client, io, true);
  },
};
