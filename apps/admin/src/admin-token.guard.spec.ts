import * as crypto from 'node:crypto';

import { type ExecutionContext } from '@nestjs/common';

import { testConfig } from '../test/admin-fixtures';
import { ADMIN_ACTOR, type AdminRequest, AdminTokenGuard, tokenActor } from './admin-token.guard';
import { AdminUnauthorizedError } from './errors/admin-unauthorized.error';

// The real timingSafeEqual, wrapped so that the tests can see what it compares.
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof crypto>('node:crypto');
  return { ...actual, timingSafeEqual: jest.fn(actual.timingSafeEqual) };
});
const timingSafeEqual = crypto.timingSafeEqual as jest.MockedFunction<
  typeof crypto.timingSafeEqual
>;

const TOKEN = 'Zx9_Q2-rT5vB8nM1kL4jH7gF0dS3aP6oI9uY2tR5eW8';

/** `null`: no token configured. */
function guard(token: string | null = TOKEN): AdminTokenGuard {
  const base = testConfig();
  return new AdminTokenGuard({
    ...base,
    admin: { ...base.admin, ...(token === null ? {} : { token }) },
  });
}

function request(authorization?: string): { context: ExecutionContext; request: AdminRequest } {
  const req = { headers: authorization === undefined ? {} : { authorization } } as AdminRequest;
  const context = {
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { context, request: req };
}

beforeEach(() => timingSafeEqual.mockClear());

describe('AdminTokenGuard', () => {
  it('admits the configured token and records a hash-prefix actor, not the token', () => {
    const { context, request: req } = request(`Bearer ${TOKEN}`);
    expect(guard().canActivate(context)).toBe(true);
    expect(req[ADMIN_ACTOR]).toBe(tokenActor(TOKEN));
    expect(req[ADMIN_ACTOR]).toMatch(/^token:[0-9a-f]{12}$/);
    expect(req[ADMIN_ACTOR]).not.toContain(TOKEN.slice(0, 8));
  });

  it('accepts the scheme in any case, as RFC 7235 says', () => {
    expect(guard().canActivate(request(`bearer ${TOKEN}`).context)).toBe(true);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['another scheme', `Basic ${TOKEN}`],
    ['no token after the scheme', 'Bearer '],
    ['a wrong token of the same length', `Bearer ${TOKEN.slice(0, -1)}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 10)}`],
    ['the token with a suffix', `Bearer ${TOKEN}x`],
    ['the token twice', `Bearer ${TOKEN} ${TOKEN}`],
  ])('refuses %s with AdminUnauthorizedError', (_case, header) => {
    const { context, request: req } = request(header);
    expect(() => guard().canActivate(context)).toThrow(AdminUnauthorizedError);
    expect(req[ADMIN_ACTOR]).toBeUndefined();
  });

  it('compares fixed-size digests in constant time whatever was presented', () => {
    for (const header of [undefined, 'Bearer x', `Bearer ${'y'.repeat(5000)}`, `Bearer ${TOKEN}`]) {
      timingSafeEqual.mockClear();
      try {
        guard().canActivate(request(header).context);
      } catch {
        // refusals are the other tests' business
      }
      // Exactly one comparison, of two SHA-256 digests: no early exit on length or absence.
      expect(timingSafeEqual).toHaveBeenCalledTimes(1);
      const [a, b] = timingSafeEqual.mock.calls[0]! as [Buffer, Buffer];
      expect([a.length, b.length]).toEqual([32, 32]);
    }
  });

  it('admits nothing when no token is configured, not even an empty bearer', () => {
    for (const header of [undefined, 'Bearer ', `Bearer ${TOKEN}`]) {
      expect(() => guard(null).canActivate(request(header).context)).toThrow(
        AdminUnauthorizedError,
      );
    }
  });
});
