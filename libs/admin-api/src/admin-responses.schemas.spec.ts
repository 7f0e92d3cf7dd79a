import {
  adminErrorBody,
  adminErrorReply,
  adminUser,
  adminUserDisabled,
} from './admin-responses.schemas';

const USER = {
  username: 'alice',
  fingerprint: 'sha256:00',
  disabled: false,
  deleted: false,
  deleted_at: null,
  created_at: '2026-01-01T00:00:00.000Z',
};

describe('@securechat/admin-api response schemas', () => {
  it('take instants as the server writes them, in UTC, and nothing looser', () => {
    expect(adminUser.safeParse(USER).success).toBe(true);
    for (const created_at of ['2026-01-01 00:00:00', '2026-01-01T01:00:00+01:00', '', 0]) {
      expect(adminUser.safeParse({ ...USER, created_at }).success).toBe(false);
    }
  });

  it('leave objects open: a member a later server adds is dropped, not refused', () => {
    expect(adminUser.parse({ ...USER, added_later: 1 })).toEqual(USER);
  });

  it('say how ending the sessions went: a count, or null with how to close them', () => {
    const base = { username: 'alice', disabled: true };
    expect(adminUserDisabled.safeParse({ ...base, sessions_closed: 2 }).success).toBe(true);
    expect(
      adminUserDisabled.safeParse({
        ...base,
        sessions_closed: null,
        sessions_close_error: 'close them with DELETE /admin/users/alice/sessions',
      }).success,
    ).toBe(true);
    for (const sessions_closed of [-1, 1.5, undefined]) {
      expect(adminUserDisabled.safeParse({ ...base, sessions_closed }).success).toBe(false);
    }
    expect(
      adminUserDisabled.safeParse({ ...base, disabled: false, sessions_closed: 0 }).success,
    ).toBe(false);
  });

  it('read an error with a code this version does not know only as a reply', () => {
    const newer = { code: 'quota_exceeded', message: 'too many' };
    expect(adminErrorBody.safeParse(newer).success).toBe(false);
    expect(adminErrorReply.parse(newer)).toEqual(newer);
    expect(adminErrorReply.safeParse({ ...newer, errors: [{ field: 'limit' }] }).success).toBe(
      false,
    );
  });
});
