import { type AdminFieldError } from '@securechat/admin-api';

/** One invalid input of an admin request: where it is and what rule it broke, never its value. */
export type { AdminFieldError };

/** Admin API: the request's body, query or path broke the endpoint's schema. */
export class AdminBadRequestError extends Error {
  override readonly name = 'AdminBadRequestError';
  readonly code = 'bad_request';

  constructor(readonly errors: readonly AdminFieldError[]) {
    super('the request is invalid');
  }
}
