/** A service did not answer (transport down, timeout, or the handler failed unexpectedly). */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';

  constructor(
    readonly pattern: string,
    cause: unknown,
  ) {
    super(`service call ${pattern} failed`, { cause });
  }
}
