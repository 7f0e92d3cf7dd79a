/**
 * Builds a SecureChatClient from the resolved settings: the key (passphrase asked if it is
 * encrypted), the password, the file stores in the config directory, the trust policy and the
 * local transcript directory.
 */
import { join } from 'node:path';

import {
  type FirstContact,
  FileKnownServersStore,
  FilePeerKeyStore,
  FileTranscriptSink,
  SecureChatClient,
  type SecureChatClientOptions,
  type ServerTrustPolicy,
  serverAddress,
} from '@securechat/client';

import { sanitizeName } from './chat/sanitize';
import { type ConnectionSettings } from './cli-config';
import { type CliIo, writeLine } from './cli-io';
import { type CliPaths } from './cli-paths';
import { keyFingerprint, loadPrivateKey } from './key-files';
import { confirm, secret } from './terminal-prompt';

export interface ClientFactoryOptions {
  readonly action?: 'login' | 'register';
  /** Reconnect after a lost connection (interactive and listening commands). */
  readonly reconnect: boolean;
}

/** The transcript directory of one identity on one server. */
export function transcriptDirectory(paths: CliPaths, settings: ConnectionSettings): string {
  const server = `${settings.server.host}_${settings.server.port}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  return join(paths.transcripts, `${settings.user}@${server}`);
}

export function trustPolicy(settings: ConnectionSettings, io: CliIo): ServerTrustPolicy {
  if (settings.trust === 'tofu') return 'tofu';
  if (typeof settings.trust === 'object') return { fingerprint: settings.trust.fingerprint };
  return {
    ask: async ({ address, fingerprint }: FirstContact) => {
      if (io.stdin.isTTY !== true) return false;
      // A trust decision is made on these two strings: neither may hide a character.
      writeLine(
        io.stderr,
        `The authenticity of the server ${sanitizeName(address)} can't be established.`,
      );
      writeLine(io.stderr, `Its key fingerprint is ${sanitizeName(fingerprint)}.`);
      return confirm(io.stdin, io.stderr, 'Trust it and remember it in known_servers?');
    },
  };
}

export interface CreatedClient {
  readonly client: SecureChatClient;
  /** The fingerprint of the user's key, as the server and other users see it. */
  readonly keyFingerprint: string;
}

export async function createClient(
  settings: ConnectionSettings,
  paths: CliPaths,
  io: CliIo,
  options: ClientFactoryOptions,
): Promise<CreatedClient> {
  const privateKey = await loadPrivateKey(settings.keyPath, () =>
    secret(
      io.env,
      'SECURECHAT_KEY_PASSPHRASE',
      io.stdin,
      io.stderr,
      `Passphrase for ${settings.keyPath}: `,
    ),
  );
  const address = serverAddress(settings.server.host, settings.server.port);
  const password = await secret(
    io.env,
    'SECURECHAT_PASSWORD',
    io.stdin,
    io.stderr,
    // The username is checked against the protocol's pattern; the host is free text.
    `Password for ${sanitizeName(settings.user)}@${sanitizeName(address)}: `,
  );
  const clientOptions: SecureChatClientOptions = {
    host: settings.server.host,
    port: settings.server.port,
    username: settings.user,
    password,
    privateKey,
    action: options.action ?? 'login',
    trust: {
      store: new FileKnownServersStore(paths.knownServers),
      policy: trustPolicy(settings, io),
    },
    peerKeys: new FilePeerKeyStore(paths.peerKeys),
    reconnect: options.reconnect ? {} : false,
    ...(settings.transcripts
      ? { transcript: new FileTranscriptSink({ directory: transcriptDirectory(paths, settings) }) }
      : {}),
  };
  return {
    client: new SecureChatClient(clientOptions),
    keyFingerprint: keyFingerprint(privateKey),
  };
}
