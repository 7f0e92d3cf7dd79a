/**
 * Every error the admin API answers with: a stable `code` (clients and the CLI branch on it,
 * never on the message) and its HTTP status, decided in one exhaustive switch so that a new
 * code cannot ship without a status.
 */
import { HttpException } from '@nestjs/common';

import { type AdminErrorBody, type AdminErrorCode } from '@securechat/admin-api';
import { InvalidUserInputError, UserExistsError, UserNotFoundError } from '@securechat/auth';

import { AdminBadRequestError } from './errors/admin-bad-request.error';
import { AdminUnauthorizedError } from './errors/admin-unauthorized.error';
import { SessionNotFoundError } from './errors/session-not-found.error';

export type { AdminErrorBody, AdminErrorCode };

export function adminErrorStatus(code: AdminErrorCode): number {
  switch (code) {
    case 'bad_request':
      return 400;
    case 'unauthorized':
      return 401;
    case 'not_found':
    case 'user_not_found':
    case 'session_not_found':
    case 'transcript_not_found':
      return 404;
    case 'user_exists':
    case 'transcript_not_exportable':
      return 409;
    case 'transcript_purged':
      return 410;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'internal':
      return 500;
    case 'server_key_unavailable':
      return 503;
  }
}

/**
 * Errors raised by other modules (transcript export) that the admin API answers by code. They
 * are recognised by their `code` rather than by class so that this file does not depend on
 * every module that might raise one.
 */
const FOREIGN_CODES: ReadonlySet<string> = new Set<AdminErrorCode>([
  'transcript_not_found',
  'transcript_not_exportable',
  'transcript_purged',
  'server_key_unavailable',
]);

/**
 * The challenge of every 401 (RFC 7235 §4.1, RFC 6750 §3): the token is presented as
 * `Authorization: Bearer <token>`, so the scheme is Bearer; the realm names this API.
 */
export const ADMIN_AUTH_CHALLENGE = 'Bearer realm="securechat-admin"';

/** Headers an error response carries besides its content type: the challenge on a 401. */
export function adminErrorHeaders(status: number): Readonly<Record<string, string>> {
  return status === 401 ? { 'www-authenticate': ADMIN_AUTH_CHALLENGE } : {};
}

/** The response for anything a handler threw. Unknown errors become `internal`, unexplained. */
export function adminErrorResponse(error: unknown): { status: number; body: AdminErrorBody } {
  const body = adminErrorBody(error);
  return { status: adminErrorStatus(body.code), body };
}

function adminErrorBody(error: unknown): AdminErrorBody {
  if (error instanceof AdminBadRequestError) {
    return { code: error.code, message: error.message, errors: [...error.errors] };
  }
  if (error instanceof InvalidUserInputError) {
    return {
      code: 'bad_request',
      message: 'the request is invalid',
      errors: [{ field: error.field, message: error.reason }],
    };
  }
  if (
    error instanceof AdminUnauthorizedError ||
    error instanceof UserNotFoundError ||
    error instanceof UserExistsError ||
    error instanceof SessionNotFoundError
  ) {
    return { code: error.code, message: error.message };
  }
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    if (FOREIGN_CODES.has(error.code)) {
      return { code: error.code as AdminErrorCode, message: error.message };
    }
  }
  // Nest's own (unknown route) and body-parser's (malformed JSON, body too large) errors.
  const status =
    error instanceof HttpException
      ? error.getStatus()
      : typeof error === 'object' && error !== null && 'expose' in error && 'status' in error
        ? Number(error.status)
        : 500;
  switch (status) {
    case 400:
      return {
        code: 'bad_request',
        message: 'the request is invalid',
        errors: [{ field: 'body', message: 'is not valid JSON' }],
      };
    case 404:
      return { code: 'not_found', message: 'no such endpoint' };
    case 413:
      return { code: 'payload_too_large', message: 'the request body is too large' };
    case 415:
      return { code: 'unsupported_media_type', message: 'send application/json' };
    default:
      return { code: 'internal', message: 'internal error' };
  }
}
