import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { AdminAuditRepository, type NewAuditEntry } from './admin-audit.repository';

const T0 = new Date('2026-01-01T00:00:00.000Z');

function entry(n: number, overrides: Partial<NewAuditEntry> = {}): NewAuditEntry {
  return {
    at: new Date(T0.getTime() + n * 1000),
    actor: 'token:0123456789ab',
    action: 'user.create',
    target: `user${n}`,
    details: { n },
    sourceAddress: '127.0.0.1',
    ...overrides,
  };
}

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('AdminAuditRepository on %s', (_name, open) => {
  let handle: TestDatabase;
  let audit: AdminAuditRepository;
  beforeAll(async () => {
    handle = await open();
    audit = new AdminAuditRepository(handle.db);
  }, 30_000); // PGlite's start-up alone takes seconds when the whole suite runs in parallel
  afterAll(() => handle.close());

  it('appends rows as given, ids as increasing decimal strings, details as JSON', async () => {
    const first = await audit.append(
      entry(1, {
        details: { fingerprint: 'sha256:ab', sessions_closed: 2, ok: true, none: null },
        sourceAddress: null,
      }),
    );
    const second = await audit.append(entry(2));
    expect(first).toEqual({
      ...entry(1),
      id: first.id,
      details: { fingerprint: 'sha256:ab', sessions_closed: 2, ok: true, none: null },
      sourceAddress: null,
    });
    expect(first.id).toMatch(/^\d+$/);
    expect(BigInt(second.id)).toBeGreaterThan(BigInt(first.id));
  });

  it('lists newest first and pages with the last id as `before`', async () => {
    for (let n = 3; n <= 7; n++) await audit.append(entry(n));
    const page1 = await audit.list({ limit: 3 });
    expect(page1.map((e) => e.target)).toEqual(['user7', 'user6', 'user5']);
    const page2 = await audit.list({ limit: 3, before: page1[2]!.id });
    expect(page2.map((e) => e.target)).toEqual(['user4', 'user3', 'user2']);
    const page3 = await audit.list({ limit: 3, before: page2[2]!.id });
    expect(page3.map((e) => e.target)).toEqual(['user1']);
    expect(page3[0]).toMatchObject({ at: entry(1).at, actor: 'token:0123456789ab' });
  });

  it('takes a cursor beyond any bigint a JS number holds exactly', async () => {
    expect((await audit.list({ limit: 1, before: '9223372036854775807' }))[0]?.target).toBe(
      'user7',
    );
  });
});
