/**
 * The settings every networked command shares, from (first wins) the command line, the
 * environment (`SECURECHAT_SERVER`, `SECURECHAT_USER`, `SECURECHAT_KEY`), the config file
 * (`config.json` in the XDG config directory) and the defaults. The file is checked strictly
 * and every problem is reported at once.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';

import { isFingerprint } from '@securechat/client';
import { USERNAME_PATTERN } from '@securechat/protocol';
import { z } from 'zod';

import { type CliPaths } from './cli-paths';
import { UsageError } from './usage.error';

export const DEFAULT_SERVER = '127.0.0.1:7777';
const DEFAULT_PORT = 7777;

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

const configFileSchema = z.strictObject({
  server: z.string().optional(),
  user: z.string().optional(),
  key: z.string().optional(),
  trust_on_first_use: z.boolean().optional(),
  transcripts: z.boolean().optional(),
});

export type ConfigFile = z.infer<typeof configFileSchema>;

/** The options of `COMMON_OPTIONS` as parseArgs returns them. */
export interface CommonFlags {
  readonly server?: string;
  readonly user?: string;
  readonly key?: string;
  readonly config?: string;
  readonly 'trust-on-first-use'?: boolean;
  readonly fingerprint?: string;
  readonly 'no-transcript'?: boolean;
}

export const COMMON_OPTIONS = {
  server: { type: 'string', short: 's' },
  user: { type: 'string', short: 'u' },
  key: { type: 'string', short: 'k' },
  config: { type: 'string' },
  'trust-on-first-use': { type: 'boolean' },
  fingerprint: { type: 'string' },
  'no-transcript': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const COMMON_HELP = `Connection options:
  -s, --server HOST:PORT    server to use (default ${DEFAULT_SERVER}; env SECURECHAT_SERVER)
  -u, --user NAME           your username (env SECURECHAT_USER)
  -k, --key FILE            your private key (default: id_securechat in the config directory;
                            env SECURECHAT_KEY); passphrase from SECURECHAT_KEY_PASSPHRASE or asked
      --trust-on-first-use  pin an unknown server's key without asking
      --fingerprint FP      trust the server only if its key has this fingerprint (sha256:…)
      --no-transcript       do not keep a local transcript of the session
      --config FILE         settings file (default: config.json in the config directory)
  -h, --help                show this help
The password is asked without echo, or read from SECURECHAT_PASSWORD.`;

/** For the commands that reconnect by themselves (`chat`, `listen`). */
export const RECONNECT_OPTIONS = { 'max-reconnects': { type: 'string' } } as const;

export const RECONNECT_HELP = `      --max-reconnects N    after a lost connection, give up (exit 3) after N failed attempts
                            in a row; by default it retries for as long as it runs`;

/** `--max-reconnects N` as the client's reconnect option; absent: the client's default. */
export function reconnectChoice(
  text: string | undefined,
  command: string,
): true | { readonly maxAttempts: number } {
  if (text === undefined) return true;
  if (!/^\d{1,9}$/.test(text)) {
    throw new UsageError('--max-reconnects must be a whole number (0: never reconnect)', command);
  }
  return { maxAttempts: Number(text) };
}

export type TrustChoice = 'ask' | 'tofu' | { readonly fingerprint: string };

export interface ConnectionSettings {
  readonly server: ServerAddress;
  readonly user: string;
  readonly keyPath: string;
  readonly trust: TrustChoice;
  readonly transcripts: boolean;
}

/** `host:port`, `[v6]:port`, or a bare host (port 7777). */
export function parseServerAddress(text: string): ServerAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  let host: string;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (isIP(host) !== 6) throw new UsageError(`--server: ${text} is not an IPv6 address`);
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw new UsageError(`--server: write IPv6 addresses as [addr]:port`);
    host = parts[0] ?? '';
    portText = parts[1];
  }
  if (host === '' || /\s/.test(host)) throw new UsageError(`--server: no host in "${text}"`);
  const port = portText === undefined ? DEFAULT_PORT : Number(portText);
  if (!/^\d{1,5}$/.test(portText ?? '7777') || port < 1 || port > 65535) {
    throw new UsageError(`--server: the port in "${text}" must be 1-65535`);
  }
  return { host, port };
}

export async function readConfigFile(path: string, explicit: boolean): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return {};
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = configFileSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `  - ${issue.path.join('.') || '(file)'}: ${issue.message}`,
    );
    throw new UsageError(`${path} has problems:\n${problems.join('\n')}`);
  }
  return parsed.data;
}

/** An environment variable's value, with an empty one read as unset (`VAR= securechat …`). */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The server as given, first wins: `--server`, `SECURECHAT_SERVER`, `"server"` in the config
 * file; undefined when none says (the caller picks the default, or refuses to guess).
 */
export function resolveServerText(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  file: ConfigFile,
): string | undefined {
  return flag ?? nonEmpty(env.SECURECHAT_SERVER) ?? file.server;
}

/** Everything a networked command needs, checked; throws UsageError naming every problem. */
export async function resolveConnection(
  flags: CommonFlags,
  env: NodeJS.ProcessEnv,
  paths: CliPaths,
): Promise<ConnectionSettings> {
  const file = await readConfigFile(flags.config ?? paths.configFile, flags.config !== undefined);
  const problems: string[] = [];
  const serverText = resolveServerText(flags.server, env, file) ?? DEFAULT_SERVER;
  let server: ServerAddress = { host: '127.0.0.1', port: DEFAULT_PORT };
  try {
    server = parseServerAddress(serverText);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const user = flags.user ?? nonEmpty(env.SECURECHAT_USER) ?? file.user;
  if (user === undefined) problems.push('--user: no username (or set SECURECHAT_USER)');
  else if (!USERNAME_PATTERN.test(user)) {
    problems.push(`--user: "${user}" is not a valid username (${USERNAME_PATTERN.source})`);
  }
  if (flags.fingerprint !== undefined && !isFingerprint(flags.fingerprint)) {
    problems.push('--fingerprint: expected sha256: followed by 64 lowercase hex digits');
  }
  if (flags.fingerprint !== undefined && flags['trust-on-first-use'] === true) {
    problems.push('--fingerprint and --trust-on-first-use exclude each other');
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  const keyPath = resolve(
    flags.key ?? nonEmpty(env.SECURECHAT_KEY) ?? file.key ?? paths.defaultKey,
  );
  const trust: TrustChoice =
    flags.fingerprint !== undefined
      ? { fingerprint: flags.fingerprint }
      : flags['trust-on-first-use'] === true || file.trust_on_first_use === true
        ? 'tofu'
        : 'ask';
  return {
    server,
    user: user as string,
    keyPath,
    trust,
    transcripts: flags['no-transcript'] === true ? false : (file.transcripts ?? true),
  };
}
