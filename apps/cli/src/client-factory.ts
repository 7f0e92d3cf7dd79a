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
  type PeerKeyStore,
  FileTranscriptSink,
  SecureChatClient,
  type SecureChatClientOptions,
  type ServerTrustPolicy,
  serverAddress,
} from '@securechat/client';

import { PASSWORD_MAX_BYTES, PASSWORD_MIN_BYTES } from '@securechat/protocol';

import { sanitizeName } from './chat/sanitize';
import { type ConnectionSettings } from './cli-config';
import { type CliIo, writeLine } from './cli-io';
import { type CliPaths } from './cli-paths';
import { keyFingerprint, loadPrivateKey } from './key-files';
import { confirm, secret } from './terminal-prompt';
import { UsageError } from './usage.error';

export interface ClientFactoryOptions {
  readonly action?: 'login' | 'register';
  /**
   * Reconnect after a lost connection (interactive and listening commands): `true` with the
   * client's defaults, or at most `maxAttempts` attempts in a row (`--max-reconnects`).
   */
  readonly reconnect: boolean | { readonly maxAttempts?: number };
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
  /** The pins of the people met on this server (the client verifies against the same store). */
  readonly peerKeys: PeerKeyStore;
  /** The server's identity key fingerprint, once connected (what its pins are kept under). */
  readonly serverFingerprint: () => Promise<string | undefined>;
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
  const password = await askPassword(
    io,
    // The username is checked against the protocol's pattern; the host is free text.
    `${sanitizeName(settings.user)}@${sanitizeName(address)}`,
    options.action === 'register',
  );
  const knownServers = new FileKnownServersStore(paths.knownServers);
  const configured = typeof settings.trust === 'object' ? settings.trust.fingerprint : undefined;
  // Peer keys are pinned per server, under the key the handshake proved: once logged in, that
  // is the key pinned in known_servers, or the --fingerprint it was checked against.
  const serverFingerprint = async (): Promise<string | undefined> =>
    (await knownServers.get(address)) ?? configured;
  const peerKeys = new FilePeerKeyStore(paths.peerKeys, serverFingerprint);
  const clientOptions: SecureChatClientOptions = {
    host: settings.server.host,
    port: settings.server.port,
    username: settings.user,
    password,
    privateKey,
    action: options.action ?? 'login',
    trust: { store: knownServers, policy: trustPolicy(settings, io) },
    peerKeys,
    reconnect:
      options.reconnect === false ? false : options.reconnect === true ? {} : options.reconnect,
    ...(settings.transcripts
      ? { transcript: new FileTranscriptSink({ directory: transcriptDirectory(paths, settings) }) }
      : {}),
  };
  return {
    client: new SecureChatClient(clientOptions),
    keyFingerprint: keyFingerprint(privateKey),
    peerKeys,
    serverFingerprint,
  };
}

/**
 * The password, from SECURECHAT_PASSWORD or asked; a new one (registration) is asked twice on
 * a terminal, since a typo there would lock the account out. Its length is checked here, so
 * that a password no server accepts is a usage error, not a failure inside the client.
 */
export async function askPassword(io: CliIo, who: string, isNew: boolean): Promise<string> {
  const fromEnv = io.env.SECURECHAT_PASSWORD !== undefined && io.env.SECURECHAT_PASSWORD !== '';
  const question = isNew && !fromEnv ? `New password for ${who}: ` : `Password for ${who}: `;
  const password = await secret(io.env, 'SECURECHAT_PASSWORD', io.stdin, io.stderr, question);
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes < PASSWORD_MIN_BYTES || bytes > PASSWORD_MAX_BYTES) {
    throw new UsageError(
      `the password must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8`,
    );
  }
  if (isNew && !fromEnv) {
    const again = await secret(
      {},
      'SECURECHAT_PASSWORD',
      io.stdin,
      io.stderr,
      'Same password again: ',
    );
    if (again !== password) throw new UsageError('the passwords differ; nothing was sent');
  }
  return password;
}
