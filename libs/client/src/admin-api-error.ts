import { type AdminFieldError } from '@securechat/admin-api';

/** One invalid input, as the admin API reports it with `bad_request`. */
export type AdminApiFieldError = AdminFieldError;

/**
 * The admin API refused a call, or could not be reached. Act on `code` (the API's stable error
 * code: `unauthorized`, `user_exists`, `bad_request`…; `unreachable` when no answer came,
 * `http_<status>` when the answer was not the API's JSON).
 */
export class AdminApiError extends Error {
  override readonly name = 'AdminApiError';

  constructor(
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    readonly code: string,
    message: string,
    /** With `bad_request`: each invalid field. */
    readonly errors: readonly AdminApiFieldError[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
