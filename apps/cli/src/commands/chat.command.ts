import { FileJoinedRoomsStore } from '@securechat/client';

import {
  COMMON_HELP,
  COMMON_OPTIONS,
  RECONNECT_HELP,
  RECONNECT_OPTIONS,
  reconnectChoice,
  resolveConnection,
} from '../cli-config';
import { toConnectError, toSessionEndError } from '../cli-errors';
import { ChatController } from '../chat/chat-controller';
import { ChatModel } from '../chat/chat-model';
import { LineUi } from '../chat/line-ui';
import { TerminalUi } from '../chat/terminal-ui';
import { createClient } from '../client-factory';
import { type ExitCode } from '../exit-codes';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';
import { addressOf, closeAndReport } from './session-runner';

const HELP = `Usage: securechat chat [options] [NAME|#room]

The interactive chat: your conversations and rooms with unread counts on the left, the current
conversation on the right with each message's verification mark, an input line at the bottom,
and the connection state on top (reconnects are automatic: "offline, retrying in N s").
Fits 80×24. The rooms you joined from this computer are listed from the start (remembered
per server and user in the data directory, joined_rooms.json); a conversation opens with
its recent history. Starts in the conversation given, if any.

In the chat:
  /msg NAME|#room [text]   /join #room   /leave [#room]   /history [N]   /whois NAME
  /help   /quit (or Ctrl-C)      Tab / Shift-Tab: switch conversation   PgUp/PgDn: scroll
Marks: ✓ verified (or stored, for yours), ⚠ BAD SIGNATURE / KEY CHANGED / UNVERIFIED (the
message is shown but its author is not proven), … sending, ✗ not sent.

Options:
      --line-mode   plain lines instead of the full screen (automatic when stdin or stdout
                    is not a terminal): type commands and text, one event printed per line
${RECONNECT_HELP}
${COMMON_HELP}

Examples:
  securechat chat --user alice
  securechat chat -u alice bob
  printf '/msg bob hi\\n/quit\\n' | securechat chat -u alice --line-mode`;

export const chatCommand: Command = {
  name: 'chat',
  summary: 'the interactive chat (full screen, or line mode)',
  help: HELP,
  async run(args, io, paths) {
    const { values, positionals } = parseCommandArgs(
      'chat',
      args,
      { ...COMMON_OPTIONS, ...RECONNECT_OPTIONS, 'line-mode': { type: 'boolean' } },
      true,
    );
    if (positionals.length > 1) throw new UsageError('at most one conversation to open', 'chat');
    const reconnect = reconnectChoice(values['max-reconnects'], 'chat');
    const settings = await resolveConnection(values, io.env, paths);
    const address = addressOf(settings);
    const { client, peerKeys, serverFingerprint } = await createClient(settings, paths, io, {
      reconnect,
    });
    const model = new ChatModel(settings.user);
    let quit!: () => void;
    const quitting = new Promise<void>((resolve) => (quit = resolve));
    const controller = new ChatController({
      client,
      model,
      peerKeys,
      // A damaged file costs the list of rooms, never the chat: said in the status pane.
      joinedRooms: new FileJoinedRoomsStore(paths.joinedRooms, {
        onWarning: (warning) => model.error(warning),
      }),
      quit: () => quit(),
    });
    let finalError: Error | undefined;
    let lostBecause: Error | undefined;
    client.on('state', (state, detail) => {
      if (state === 'reconnecting' && detail.attempt === 1) lostBecause = detail.error;
      if (state === 'closed' && detail.error) {
        finalError = detail.error;
        quit();
      }
    });
    try {
      await client.connect();
    } catch (error) {
      throw toConnectError(error, address);
    }
    const fullScreen =
      values['line-mode'] !== true && io.stdin.isTTY === true && io.stdout.isTTY === true;
    const ui = fullScreen
      ? new TerminalUi({
          input: io.stdin,
          output: io.stdout,
          model,
          controller,
          quit: () => quit(),
        })
      : new LineUi(io.stdin, io.stdout, model, controller, () => quit());
    ui.start();
    model.info(`signed in as ${settings.user} on ${address}; /help lists the commands`);
    // Connected, so the server's key is proven: the rooms are remembered under it.
    const server = await serverFingerprint();
    if (server !== undefined) await controller.restoreRooms(server);
    const opening = positionals[0];
    if (opening !== undefined) await controller.submit(`/msg ${opening}`);
    void io.interrupted.then(() => quit());
    await quitting;
    ui.stop();
    controller.dispose();
    if (finalError !== undefined) throw toSessionEndError(finalError, address, lostBecause);
    const code: ExitCode = await closeAndReport(client, io);
    return code;
  },
};
