import { IntrinsicException } from '@nestjs/common';

/**
 * Class and SQLSTATE of a failure, never its text: Drizzle's messages quote the statement's
 * parameters ("Failed query: … params: …"), and those include message bodies and transcript
 * plaintexts, which must never reach a log.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return typeof error;
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: unknown }).cause;
  // Drizzle's query error keeps the generic name; its class says more.
  // pg's DatabaseError is named 'error'.
  const kind =
    error.name === 'Error' || error.name === 'error' ? error.constructor.name : error.name;
  const own = typeof code === 'string' ? `${kind} ${code}` : kind;
  return cause instanceof Error ? `${own} caused by ${describeError(cause)}` : own;
}

/**
 * A relay operation failed and has already been logged safely. Its message names the
 * operation and the kind of failure only, and it carries no cause, so whatever prints it
 * (Nest's RPC exception handler prints unknown errors with their stack) prints nothing
 * secret. Extends IntrinsicException so that Nest does not log it a second time; the gateway
 * sees a transport failure and answers `internal` (docs/PROTOCOL.md §9), which for `send` means
 * "not acknowledged, resend with the same id".
 */
export class RelayFailure extends IntrinsicException {
  override readonly name = 'RelayFailure';

  constructor(message: string) {
    super(message);
  }
}
