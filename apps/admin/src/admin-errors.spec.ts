import { NotFoundException } from '@nestjs/common';

import {
  TranscriptNotExportableError,
  TranscriptNotFoundError,
  TranscriptPurgedError,
} from '@securechat/relay';

import { InvalidUserInputError, UserExistsError, UserNotFoundError } from '@securechat/auth';

import {
  type AdminErrorCode,
  adminErrorHeaders,
  adminErrorResponse,
  adminErrorStatus,
} from './admin-errors';
import { AdminBadRequestError } from './errors/admin-bad-request.error';
import { AdminUnauthorizedError } from './errors/admin-unauthorized.error';
import { SessionNotFoundError } from './errors/session-not-found.error';

describe('adminErrorStatus', () => {
  const expected: Record<AdminErrorCode, number> = {
    bad_request: 400,
    unauthorized: 401,
    not_found: 404,
    user_not_found: 404,
    session_not_found: 404,
    transcript_not_found: 404,
    user_exists: 409,
    transcript_not_exportable: 409,
    transcript_purged: 410,
    payload_too_large: 413,
    unsupported_media_type: 415,
    internal: 500,
    server_key_unavailable: 503,
  };
  it.each(Object.entries(expected))('maps %s to %i', (code, status) => {
    expect(adminErrorStatus(code as AdminErrorCode)).toBe(status);
  });
});

describe('adminErrorResponse', () => {
  it.each([
    ['AdminUnauthorizedError', new AdminUnauthorizedError(), 401, 'unauthorized'],
    ['UserNotFoundError', new UserNotFoundError('alice'), 404, 'user_not_found'],
    ['UserExistsError', new UserExistsError('alice'), 409, 'user_exists'],
    ['SessionNotFoundError', new SessionNotFoundError('s-1'), 404, 'session_not_found'],
    ['TranscriptNotFoundError', new TranscriptNotFoundError('s-1'), 404, 'transcript_not_found'],
    [
      'TranscriptNotExportableError',
      new TranscriptNotExportableError('s-1', 'digest'),
      409,
      'transcript_not_exportable',
    ],
    [
      'TranscriptPurgedError',
      new TranscriptPurgedError('s-1', Date.UTC(2026, 0, 1)),
      410,
      'transcript_purged',
    ],
    ["Nest's unknown route", new NotFoundException(), 404, 'not_found'],
    [
      "body-parser's too large",
      Object.assign(new Error('x'), { status: 413, expose: true }),
      413,
      'payload_too_large',
    ],
  ])('answers %s with its code', (_name, error, status, code) => {
    expect(adminErrorResponse(error)).toMatchObject({ status, body: { code } });
  });

  it('lists field errors for bad input, from zod or from the account rules', () => {
    const errors = [{ field: 'username', message: 'must match' }];
    expect(adminErrorResponse(new AdminBadRequestError(errors))).toEqual({
      status: 400,
      body: { code: 'bad_request', message: 'the request is invalid', errors },
    });
    expect(
      adminErrorResponse(new InvalidUserInputError('public_key', 'must be canonical DER')),
    ).toEqual({
      status: 400,
      body: {
        code: 'bad_request',
        message: 'the request is invalid',
        errors: [{ field: 'public_key', message: 'must be canonical DER' }],
      },
    });
  });

  it('answers malformed JSON as bad_request on the body', () => {
    const parseError = Object.assign(new SyntaxError('Unexpected token p in JSON'), {
      status: 400,
      expose: true,
    });
    expect(adminErrorResponse(parseError)).toEqual({
      status: 400,
      body: {
        code: 'bad_request',
        message: 'the request is invalid',
        errors: [{ field: 'body', message: 'is not valid JSON' }],
      },
    });
  });

  it('hides what an unexpected error says, and a foreign code it does not know', () => {
    const secret = 'connection to postgres://admin:hunter2@db failed';
    for (const error of [
      new Error(secret),
      Object.assign(new Error(secret), { code: 'ECONNREFUSED' }),
      secret,
      undefined,
    ]) {
      const response = adminErrorResponse(error);
      expect(response).toEqual({
        status: 500,
        body: { code: 'internal', message: 'internal error' },
      });
    }
  });
});

describe('adminErrorHeaders', () => {
  it('challenges every 401 for the bearer token, and nothing else', () => {
    expect(adminErrorHeaders(401)).toEqual({
      'www-authenticate': 'Bearer realm="securechat-admin"',
    });
    for (const status of [400, 403, 404, 409, 413, 415, 500, 503]) {
      expect(adminErrorHeaders(status)).toEqual({});
    }
  });
});
