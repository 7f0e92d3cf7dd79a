import { EXIT } from './exit-codes';
import { CliError } from './cli.error';

/** Wrong arguments or configuration: exit 2, with a pointer to the command's `--help`. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';

  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message, EXIT.usage);
  }
}
