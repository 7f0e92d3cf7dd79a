import {
  KeyAnswerError,
  type PeerKeyChange,
  isFingerprint,
  trustPeerKey,
} from '@securechat/client';
import { USERNAME_PATTERN } from '@securechat/protocol';

import { COMMON_HELP, COMMON_OPTIONS, resolveConnection } from '../cli-config';
import { CliError } from '../cli.error';
import { type CliIo, writeLine } from '../cli-io';
import { toCliError, toConnectError } from '../cli-errors';
import { createClient } from '../client-factory';
import { EXIT } from '../exit-codes';
import { confirm } from '../terminal-prompt';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';
import { addressOf, closeAndReport } from './session-runner';

const HELP = `Usage: securechat trust NAME [--fingerprint sha256:…] [options]

Accepts NAME's current key in place of the one pinned for NAME on this server, once you know
it changed (an operator replaced it, NAME made a new one): like "ssh-keygen -R" followed by a
new first contact, in one step. Logs in, asks the server for NAME's key, shows the pinned and
the new fingerprint, and pins the new one
  - with --fingerprint: only if it is the key the server gives (compare it out of band, e.g.
    read to you by NAME from "securechat keygen" or their .pub file); nothing is asked;
  - without: after you confirm on the terminal (a script must pass --fingerprint).
Until then, NAME's messages are shown flagged KEY CHANGED. In the chat, /trust NAME does the
same. Pins are kept per server (under the server key's fingerprint) in peer_keys.json in the
config directory.

Options:
      --fingerprint FP      accept NAME's key only if its fingerprint is FP (sha256:…); here
                            it names NAME's key; the server is trusted as by every command
${COMMON_HELP.replace(/\n {6}--fingerprint FP .*/, '')}

Exits 0 when the key is pinned (or already was), 6 when it is not the expected one, 1 when
you answer no.

Examples:
  securechat trust bob
  securechat trust bob --fingerprint sha256:3f1c…   # as bob read it to you`;

export const trustCommand: Command = {
  name: 'trust',
  summary: "accept a person's new key (after checking it), replacing the pinned one",
  help: HELP,
  async run(args, io, paths) {
    const { values, positionals } = parseCommandArgs('trust', args, COMMON_OPTIONS, true);
    const [name, ...extra] = positionals;
    if (name === undefined || extra.length > 0) {
      throw new UsageError('name exactly one person: securechat trust NAME', 'trust');
    }
    if (!USERNAME_PATTERN.test(name)) {
      throw new UsageError(`"${name}" is not a valid username`, 'trust');
    }
    const expected = values.fingerprint;
    if (expected !== undefined && !isFingerprint(expected)) {
      throw new UsageError(
        '--fingerprint: expected sha256: followed by 64 lowercase hex digits',
        'trust',
      );
    }
    if (expected === undefined && io.stdin.isTTY !== true) {
      throw new UsageError(
        'no terminal to confirm on: pass --fingerprint with the key checked out of band',
        'trust',
      );
    }
    // --fingerprint is NAME's here: the server is trusted as known_servers (or the user) says.
    const settings = await resolveConnection({ ...values, fingerprint: undefined }, io.env, paths);
    const address = addressOf(settings);
    const { client, peerKeys } = await createClient(settings, paths, io, { reconnect: false });
    try {
      await client.connect();
    } catch (error) {
      throw toConnectError(error, address);
    }
    let result;
    try {
      result = await trustPeerKey({
        username: name,
        store: peerKeys,
        fetchKey: (user) => client.getKey(user),
        ...(expected === undefined ? {} : { expected }),
        confirm: (change) => {
          showChange(io, change, address);
          return confirm(io.stdin, io.stderr, `Pin the new key for ${name}?`);
        },
      });
    } catch (error) {
      await client.close().catch(() => undefined);
      if (error instanceof KeyAnswerError) {
        throw new CliError(`${address}: ${error.message}`, EXIT.verificationFailed, {
          cause: error,
        });
      }
      throw toCliError(error, address);
    }
    const closed = await closeAndReport(client, io, true);
    const { change } = result;
    switch (result.status) {
      case 'unchanged':
        writeLine(io.stdout, `${name}: already pinned to ${change.offered}`);
        return closed;
      case 'trusted':
        if (expected !== undefined) showChange(io, change, address);
        writeLine(io.stdout, `${name}: pinned ${change.offered} on ${address}`);
        return closed;
      case 'declined':
        writeLine(
          io.stderr,
          `nothing changed: ${name} stays pinned to ${change.pinned ?? '(none)'}`,
        );
        return EXIT.failure;
      case 'mismatch':
        showChange(io, change, address);
        writeLine(
          io.stderr,
          `REFUSED: the server gives ${name} the key ${change.offered}, not ${result.expected}; ` +
            'nothing changed',
        );
        return EXIT.verificationFailed;
    }
  },
};

/** Both fingerprints, as ssh shows a changed host key (they are hashed here, not quoted). */
function showChange(io: CliIo, change: PeerKeyChange, address: string): void {
  writeLine(io.stderr, `${change.username}'s key on ${address}:`);
  writeLine(io.stderr, `  pinned: ${change.pinned ?? '(none yet)'}`);
  writeLine(io.stderr, `  server: ${change.offered}`);
}
