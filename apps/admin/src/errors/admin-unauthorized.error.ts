/**
 * Admin API: no bearer token, or not the configured one. The message is the same in both
 * cases, so a caller learns nothing about how close a guess came.
 */
export class AdminUnauthorizedError extends Error {
  override readonly name = 'AdminUnauthorizedError';
  readonly code = 'unauthorized';

  constructor() {
    super('a valid admin bearer token is required');
  }
}
