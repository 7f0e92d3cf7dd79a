import { type ExitCode } from './exit-codes';

/**
 * A failure the CLI explains in one message and exits with a chosen code. Messages never
 * contain the password, the passphrase or key material.
 */
export class CliError extends Error {
  override readonly name: string = 'CliError';

  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
