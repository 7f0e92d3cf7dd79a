import { type ParseArgsConfig, parseArgs } from 'node:util';

import { type CliIo } from '../cli-io';
import { type CliPaths } from '../cli-paths';
import { type ExitCode } from '../exit-codes';
import { closestMatch } from '../did-you-mean';
import { UsageError } from '../usage.error';

/** One `securechat <name>` subcommand. */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The whole `--help` text, with examples. */
  readonly help: string;
  run(args: string[], io: CliIo, paths: CliPaths): Promise<ExitCode>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

type Parsed<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>
>;

/** parseArgs, strict, with its errors turned into usage errors that name the command. */
export function parseCommandArgs<T extends Options>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
): Parsed<T> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(describeParseError(error as NodeJS.ErrnoException, options), command);
  }
}

/**
 * One line in our words for what parseArgs refused (its own text explains its internals, e.g.
 * how to pass a positional that starts with "-"), with the closest known option for a typo.
 */
export function describeParseError(error: NodeJS.ErrnoException, options: Options): string {
  const quoted = /'([^']*)'/.exec(error.message)?.[1] ?? '';
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const name = quoted.split('=')[0] ?? quoted;
      const known = Object.entries(options).flatMap(([long, option]) => [
        `--${long}`,
        ...(option.short === undefined ? [] : [`-${option.short}`]),
      ]);
      const suggestion = name.startsWith('--')
        ? closestMatch(
            name,
            known.filter((flag) => flag.startsWith('--')),
          )
        : undefined;
      return `unknown option ${name}${suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // "-t, --to <value>" or "--json": the long name is the last flag quoted.
      const flag = /--[^\s<]+/.exec(quoted)?.[0] ?? quoted;
      return error.message.includes('does not take an argument')
        ? `${flag} takes no value`
        : `${flag} needs a value`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${quoted}"`;
    default:
      return 'invalid arguments';
  }
}
