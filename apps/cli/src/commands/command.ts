import { type ParseArgsConfig, parseArgs } from 'node:util';

import { type CliIo } from '../cli-io';
import { type CliPaths } from '../cli-paths';
import { type ExitCode } from '../exit-codes';
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
    throw new UsageError((error as Error).message, command);
  }
}
