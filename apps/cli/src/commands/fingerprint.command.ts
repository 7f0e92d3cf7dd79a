import { generateKeyPairSync } from 'node:crypto';

import {
  FileKnownServersStore,
  MemoryKnownServersStore,
  MemoryPeerKeyStore,
  SecureChatClient,
  serverAddress,
} from '@securechat/client';
import { ServerIdentityError } from '@securechat/protocol';

import { parseServerAddress, readConfigFile, resolveServerText } from '../cli-config';
import { writeLine } from '../cli-io';
import { toConnectError } from '../cli-errors';
import { EXIT } from '../exit-codes';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';

const HELP = `Usage: securechat fingerprint [--server HOST:PORT]

Connects, lets the server prove its identity key (the handshake up to the server's signature),
prints the key's fingerprint and hangs up before anything about you is sent. Compare it with
the one your operator published, then connect with --fingerprint (or answer the first-contact
question). Also says whether known_servers already pins this server, and to which key.

Options:
  -s, --server HOST:PORT   the server (default port 7777; env SECURECHAT_SERVER, or "server"
                           in config.json)
      --config FILE        settings file (default: config.json in the config directory)
  -h, --help               show this help

Example:
  securechat fingerprint --server chat.example.org:7777`;

export const fingerprintCommand: Command = {
  name: 'fingerprint',
  summary: "show a server's identity key fingerprint before trusting it",
  help: HELP,
  async run(args, io, paths) {
    const { values } = parseCommandArgs('fingerprint', args, {
      server: { type: 'string', short: 's' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    // The same sources as every other command, but no default: probing 127.0.0.1:7777 when
    // nothing was said would show a key nobody asked about.
    const serverText = resolveServerText(
      values.server,
      io.env,
      await readConfigFile(values.config ?? paths.configFile, values.config !== undefined),
    );
    if (serverText === undefined) {
      throw new UsageError('--server is required (or set SECURECHAT_SERVER)', 'fingerprint');
    }
    const { host, port } = parseServerAddress(serverText);
    const address = serverAddress(host, port);
    let presented: string | undefined;
    // A throwaway identity: the trust callback refuses, so no login is ever sent.
    const probe = new SecureChatClient({
      host,
      port,
      username: 'fingerprint_probe',
      password: 'unused-password',
      privateKey: generateKeyPairSync('ed25519').privateKey,
      trust: {
        store: new MemoryKnownServersStore(),
        policy: {
          ask: ({ fingerprint }) => {
            presented = fingerprint;
            return false;
          },
        },
      },
      peerKeys: new MemoryPeerKeyStore(),
      reconnect: false,
    });
    try {
      await probe.connect();
      await probe.close();
      throw new Error('the server accepted a login that was never sent');
    } catch (error) {
      if (!(error instanceof ServerIdentityError) || presented === undefined) {
        throw toConnectError(error, address);
      }
    }
    writeLine(io.stdout, `${address} ${presented}`);
    const pinned = await new FileKnownServersStore(paths.knownServers).get(address);
    if (pinned === undefined) writeLine(io.stderr, 'not pinned in known_servers yet');
    else if (pinned === presented) writeLine(io.stderr, 'matches the key pinned in known_servers');
    else {
      writeLine(io.stderr, `WARNING: known_servers pins a DIFFERENT key: ${pinned}`);
      return EXIT.serverRefused;
    }
    return EXIT.ok;
  },
};
