/**
 * `securechat`: the reference client for people and scripts. This file only dispatches: each
 * subcommand lives in commands/, and every failure is turned into a message and an exit code
 * here, at the edge.
 */
import { sanitizeForTerminal, sanitizeLines } from './chat/sanitize';
import { CliError } from './cli.error';
import { type CliIo, writeLine } from './cli-io';
import { cliPaths } from './cli-paths';
import { toCliError } from './cli-errors';
import { adminCommand } from './commands/admin.command';
import { chatCommand } from './commands/chat.command';
import { type Command } from './commands/command';
import { fingerprintCommand } from './commands/fingerprint.command';
import { keygenCommand } from './commands/keygen.command';
import { listenCommand } from './commands/listen.command';
import { registerCommand } from './commands/register.command';
import { sendCommand } from './commands/send.command';
import { trustCommand } from './commands/trust.command';
import { verifyTranscriptCommand } from './commands/verify-transcript.command';
import { closestMatch } from './did-you-mean';
import { EXIT, EXIT_CODE_HELP, type ExitCode } from './exit-codes';
import { UsageError } from './usage.error';

export const VERSION = '0.1.0';

export const COMMANDS: readonly Command[] = [
  keygenCommand,
  registerCommand,
  chatCommand,
  sendCommand,
  listenCommand,
  verifyTranscriptCommand,
  fingerprintCommand,
  trustCommand,
  adminCommand,
];

export function generalHelp(commands: readonly Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: securechat <command> [options]

The SecureChat client: end-to-end signed messages over the securechat/1 protocol, with the
server's key pinned like SSH's and a local transcript you can verify.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "securechat <command> --help" for a command's options and examples.

Getting started (a server from "npm start" on this machine):
  securechat keygen
  securechat register --user alice --trust-on-first-use     (if registration is open)
  securechat chat --user alice

Files (XDG base directories; SECURECHAT_CONFIG_DIR / SECURECHAT_DATA_HOME override):
  ~/.config/securechat/config.json      defaults: {"server","user","key","trust_on_first_use","transcripts"}
  ~/.config/securechat/known_servers    pinned server keys, one "host:port sha256:…" per line
  ~/.config/securechat/peer_keys.json   pinned keys of the people you talk to, per server
                                        (securechat trust NAME accepts a changed one)
  ~/.config/securechat/id_securechat    your default key (from keygen)
  ~/.local/share/securechat/transcripts/  your session transcripts

${EXIT_CODE_HELP}`;
}

export async function runCli(
  argv: readonly string[],
  io: CliIo,
  commands: readonly Command[] = COMMANDS,
): Promise<ExitCode> {
  const [name, ...args] = argv;
  if (name === undefined) {
    // Nothing asked: a script that forgot its command must not read this as success.
    writeLine(io.stderr, generalHelp(commands));
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? commands.find((c) => c.name === args[0]) : undefined;
    writeLine(io.stdout, topic ? topic.help : generalHelp(commands));
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    writeLine(io.stdout, `securechat ${VERSION} (protocol securechat/1)`);
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    const guess = closestMatch(
      name,
      commands.map((c) => c.name),
    );
    writeLine(
      io.stderr,
      `securechat: unknown command "${sanitizeForTerminal(name)}"` +
        (guess === undefined ? '' : ` (did you mean "${guess}"?)`),
    );
    writeLine(
      io.stderr,
      `Commands: ${commands.map((c) => c.name).join(', ')}. See "securechat --help".`,
    );
    return EXIT.usage;
  }
  // `--help` anywhere before a `--` wins over every other argument, valid or not.
  const options = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
  if (options.includes('--help') || options.includes('-h')) {
    writeLine(io.stdout, command.help);
    return EXIT.ok;
  }
  try {
    return await command.run(args, io, cliPaths(io.env));
  } catch (error) {
    const failure = error instanceof CliError ? error : toCliError(error, '');
    // Messages quote the server (sanitized where quoted); the whole is checked again here.
    writeLine(io.stderr, sanitizeLines(`securechat ${name}: ${failure.message}`));
    if (failure instanceof UsageError) {
      writeLine(io.stderr, `See "securechat ${name} --help".`);
    }
    if (io.env.SECURECHAT_DEBUG === '1' && failure.cause instanceof Error) {
      writeLine(io.stderr, sanitizeLines(failure.cause.stack ?? String(failure.cause)));
    }
    return failure.exitCode;
  }
}
