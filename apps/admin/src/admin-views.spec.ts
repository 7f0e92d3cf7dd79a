import {
  adminAuditEntry,
  adminPurgeResult,
  adminSession,
  adminTranscriptSession,
  adminUser,
} from '@securechat/admin-api';

import {
  auditEntryView,
  sessionView,
  transcriptPurgeView,
  transcriptSessionView,
  userView,
} from './admin-views';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 6);

/**
 * The view is the schema's exactly: it parses (types and ISO instants) and parsing drops
 * nothing (a zod object strips members it does not know, so an extra one would show here).
 */
function expectExactly(schema: { parse(value: unknown): unknown }, view: unknown): void {
  expect(schema.parse(view)).toEqual(view);
}

describe('admin views', () => {
  it.each([
    ['live', null],
    ['deleted', new Date(T0 + 1000)],
  ])('writes a %s account as @securechat/admin-api says', (_case, deletedAt) => {
    const view = userView({
      username: 'alice',
      fingerprint: 'sha256:00',
      disabled: false,
      deletedAt,
      createdAt: new Date(T0),
    });
    expectExactly(adminUser, view);
    expect(view).toMatchObject({
      deleted: deletedAt !== null,
      deleted_at: deletedAt?.toISOString() ?? null,
      created_at: '2026-01-02T03:04:05.006Z',
    });
  });

  it('writes an audit entry, a live session and a stored session as the schemas say', () => {
    expectExactly(
      adminAuditEntry,
      auditEntryView({
        id: '12',
        at: new Date(T0),
        actor: 'token:abcdef012345',
        action: 'user.create',
        target: 'alice',
        details: { fingerprint: 'sha256:00', more: false, sessions: 2, note: null },
        sourceAddress: null,
      }),
    );
    expectExactly(
      adminSession,
      sessionView({
        sessionId: 's-1',
        username: 'alice',
        gateway: 'gw-1',
        sourceAddress: '192.0.2.1',
        since: T0,
      }),
    );
    for (const [endedAt, recordsPurgedAt] of [
      [null, null],
      [T0 + 1, T0 + 2],
    ] as const) {
      expectExactly(
        adminTranscriptSession,
        transcriptSessionView({
          sessionId: 's-1',
          username: 'alice',
          gateway: 'gw-1',
          mode: 'full',
          status: 'agreed',
          startedAt: T0,
          endedAt,
          recordsPurgedAt,
        }),
      );
    }
  });

  it('writes a purge, with and without a next page, as the schema says', () => {
    const session = {
      sessionId: 's-1',
      username: 'alice',
      mode: 'digest',
      status: 'incomplete',
      startedAt: T0,
      endedAt: undefined,
      receipt: false,
      countersigned: false,
      chunks: 3,
      bytes: 900,
    } as const;
    const totals = { sessions: 1, chunks: 3, bytes: 900, withReceipt: 0, withoutReceipt: 1 };
    for (const next of [undefined, { at: T0, sessionId: 's-1' }]) {
      const view = transcriptPurgeView({
        before: T0 + 5000,
        dryRun: next !== undefined,
        sessions: [session],
        totals,
        more: next !== undefined,
        next,
      });
      expectExactly(adminPurgeResult, view);
      expect(view.sessions[0]?.ended_at).toBeNull();
      expect(view.next_cursor).toBe(next === undefined ? null : `${T0}.s-1`);
    }
  });
});
