import { generateKeyPairSync } from 'node:crypto';

import {
  auditListQuery,
  createUserBody,
  parseAdminInput,
  purgeCursor,
  transcriptCursor,
  transcriptListQuery,
  transcriptPurgeBody,
  userListQuery,
} from './admin.schemas';
import { AdminBadRequestError } from './errors/admin-bad-request.error';

const { publicKey } = generateKeyPairSync('ed25519');
const der = publicKey.export({ type: 'spki', format: 'der' });
const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

function failure(run: () => unknown): AdminBadRequestError {
  try {
    run();
  } catch (error) {
    if (error instanceof AdminBadRequestError) return error;
    throw error;
  }
  throw new Error('expected AdminBadRequestError');
}

describe('createUserBody', () => {
  const valid = { username: 'alice', password: 'a long password' };

  it.each([
    ['base64 DER', der.toString('base64')],
    ['a PEM block', pem],
    ['a PEM block with CRLF line ends', pem.replace(/\n/g, '\r\n')],
  ])('reads the key from %s as the same DER', (_case, text) => {
    const parsed = parseAdminInput(createUserBody, { ...valid, public_key: text });
    expect(parsed.public_key.equals(der)).toBe(true);
  });

  it('reports every broken field at once, without quoting any value', () => {
    const password = 'short';
    const error = failure(() =>
      parseAdminInput(createUserBody, {
        username: 'Not Valid',
        password,
        public_key: 'not base64!',
        admin: true,
      }),
    );
    expect(error.errors.map((e) => e.field).sort()).toEqual([
      'admin',
      'password',
      'public_key',
      'username',
    ]);
    expect(JSON.stringify(error.errors)).not.toContain(password);
    expect(JSON.stringify(error.errors)).not.toContain('Not Valid');
  });

  it.each([
    ['a missing body', undefined, [{ field: 'body', message: 'is required' }]],
    ['an array', [], [{ field: 'body', message: 'must be object' }]],
    [
      'missing fields',
      {},
      ['username', 'password', 'public_key'].map((field) => ({ field, message: 'is required' })),
    ],
    [
      'a number as password',
      { ...valid, password: 12345678, public_key: der.toString('base64') },
      [{ field: 'password', message: 'must be string' }],
    ],
    [
      'unpadded base64',
      { ...valid, public_key: der.toString('base64').replace(/=+$/, '') },
      [{ field: 'public_key', message: expect.stringContaining('base64') }],
    ],
    [
      'a private key PEM',
      {
        ...valid,
        public_key: generateKeyPairSync('ed25519').privateKey.export({
          type: 'pkcs8',
          format: 'pem',
        }),
      },
      [{ field: 'public_key', message: expect.stringContaining('PUBLIC KEY') }],
    ],
  ])('refuses %s', (_case, body, errors) => {
    expect(failure(() => parseAdminInput(createUserBody, body)).errors).toEqual(errors);
  });
});

describe('userListQuery', () => {
  it('defaults the page size and checks its bounds', () => {
    expect(parseAdminInput(userListQuery, {})).toEqual({ limit: 50 });
    expect(parseAdminInput(userListQuery, { limit: '500', query: 'al', cursor: 'bob' })).toEqual({
      limit: 500,
      query: 'al',
      cursor: 'bob',
    });
    for (const limit of ['0', '501', '-1', '1.5', 'ten', '']) {
      expect(failure(() => parseAdminInput(userListQuery, { limit })).errors[0]?.field).toBe(
        'limit',
      );
    }
    expect(failure(() => parseAdminInput(userListQuery, { query: 'a%' })).errors).toEqual([
      { field: 'query', message: 'must be 1-32 of a-z 0-9 _' },
    ]);
  });
});

describe('auditListQuery', () => {
  it('takes an entry id up to the largest bigint, and refuses a larger one with a 400', () => {
    expect(parseAdminInput(auditListQuery, { cursor: '9223372036854775807' })).toEqual({
      limit: 50,
      cursor: '9223372036854775807',
    });
    for (const cursor of ['9223372036854775808', '9999999999999999999', '1e3', '']) {
      expect(failure(() => parseAdminInput(auditListQuery, { cursor })).errors).toEqual([
        { field: 'cursor', message: 'must be an entry id' },
      ]);
    }
  });
});

describe('transcriptListQuery', () => {
  it('reads back the cursor it hands out', () => {
    const position = { startedAt: 1_764_000_000_123, sessionId: 's-Ab_1-x' };
    expect(parseAdminInput(transcriptListQuery, { cursor: transcriptCursor(position) })).toEqual({
      limit: 50,
      cursor: position,
    });
    expect(parseAdminInput(transcriptListQuery, { cursor: '8640000000000000.s-1' })).toEqual({
      limit: 50,
      cursor: { startedAt: 8.64e15, sessionId: 's-1' },
    });
  });

  it.each([
    ['a time past the last Date', '9999999999999999.s-1'],
    ['a time alone', '1764000000000'],
    ['no session id', '1764000000000.'],
    ['a session id no gateway makes', '1764000000000.s/1'],
    ['a negative time', '-1.s-1'],
  ])('refuses %s with a 400 naming the cursor', (_case, cursor) => {
    expect(failure(() => parseAdminInput(transcriptListQuery, { cursor })).errors).toEqual([
      { field: 'cursor', message: 'must be a next_cursor of this listing' },
    ]);
  });

  it('refuses the old time-only `before` rather than ignore it', () => {
    expect(failure(() => parseAdminInput(transcriptListQuery, { before: '5' })).errors).toEqual([
      { field: 'before', message: 'is replaced by cursor (next_cursor of the previous page)' },
    ]);
  });
});

describe('transcriptPurgeBody', () => {
  it('reads the cutoff as an instant, with the defaults: a real purge of 100 sessions', () => {
    expect(parseAdminInput(transcriptPurgeBody, { before: '2026-01-01T00:00:00Z' })).toEqual({
      before: Date.UTC(2026, 0, 1),
      dry_run: false,
      limit: 100,
    });
    expect(
      parseAdminInput(transcriptPurgeBody, {
        before: '2026-01-01T02:00:00.5+02:00',
        dry_run: true,
        limit: 1000,
      }),
    ).toEqual({ before: Date.UTC(2026, 0, 1, 0, 0, 0, 500), dry_run: true, limit: 1000 });
  });

  it('reads back the cursor a dry run hands out', () => {
    const position = { at: 1_764_000_000_123, sessionId: 's-Ab_1-x' };
    expect(
      parseAdminInput(transcriptPurgeBody, {
        before: '2026-01-01T00:00:00Z',
        dry_run: true,
        cursor: purgeCursor(position),
      }),
    ).toMatchObject({ cursor: position });
  });

  it.each([
    ['no cutoff', {}, [{ field: 'before', message: 'is required' }]],
    [
      'a cutoff without a time zone',
      { before: '2026-01-01T00:00:00' },
      [
        {
          field: 'before',
          message: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-01-01T00:00:00Z',
        },
      ],
    ],
    [
      'an age instead of a cutoff',
      { olderThanDays: 30 },
      [
        { field: 'before', message: 'is required' },
        { field: 'olderThanDays', message: 'is not a known field' },
      ],
    ],
    [
      'a limit out of range',
      { before: '2026-01-01T00:00:00Z', limit: 1001 },
      [{ field: 'limit', message: 'must be at most 1000' }],
    ],
    [
      'dry_run as a string',
      { before: '2026-01-01T00:00:00Z', dry_run: 'yes' },
      [{ field: 'dry_run', message: 'must be boolean' }],
    ],
    [
      'a cursor with a real purge (a purge always takes the oldest left)',
      { before: '2026-01-01T00:00:00Z', cursor: '1764000000000.s-1' },
      [{ field: 'cursor', message: 'only with dry_run: true' }],
    ],
  ])('refuses %s with a 400 naming the field', (_case, body, errors) => {
    expect(failure(() => parseAdminInput(transcriptPurgeBody, body)).errors).toEqual(errors);
  });
});
