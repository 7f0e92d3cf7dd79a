import { type UserAccountService, UserNotFoundError } from '@securechat/auth';
import {
  type PurgeOutcome,
  type TranscriptExportService,
  TranscriptNotFoundError,
  type TranscriptRetentionService,
} from '@securechat/relay';

import { type AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';
import { AdminTranscriptsService } from './admin-transcripts.service';

const CONTEXT: AdminRequestContext = { actor: 'token:abcdef012345', sourceAddress: '::1' };
const NOW = Date.UTC(2026, 5, 1);

function summary(sessionId: string, startedAt: number) {
  return {
    sessionId,
    username: 'alice',
    gateway: 'gw-1',
    mode: 'full' as const,
    status: 'agreed' as const,
    startedAt,
    endedAt: startedAt + 1000,
  };
}

async function* lines(values: string[]): AsyncGenerator<string> {
  for (const value of values) {
    await Promise.resolve();
    yield value;
  }
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

function harness() {
  const transcripts = {
    listSessions: jest.fn(() => Promise.resolve([summary('s-2', 2000), summary('s-1', 1000)])),
    exportLines: jest.fn(() => Promise.resolve(lines(['{"type":"header"}\n']))),
  };
  const accounts = {
    getUser: jest.fn((username: string) =>
      username === 'alice' ? Promise.resolve({}) : Promise.reject(new UserNotFoundError(username)),
    ),
  };
  const audit = { record: jest.fn(() => Promise.resolve()) };
  const retention = {
    purge: jest.fn((request: { before: number; dryRun?: boolean }): Promise<PurgeOutcome> =>
      Promise.resolve({
        before: request.before,
        dryRun: request.dryRun === true,
        sessions: [],
        totals: { sessions: 3, chunks: 7, bytes: 900, withReceipt: 2, withoutReceipt: 1 },
        more: true,
        next: undefined,
      }),
    ),
  };
  const clock = { now: () => NOW };
  const service = new AdminTranscriptsService(
    transcripts as unknown as TranscriptExportService,
    accounts as unknown as UserAccountService,
    audit as unknown as AdminAuditService,
    retention as unknown as TranscriptRetentionService,
    clock,
  );
  return { transcripts, audit, retention, service };
}

describe('AdminTranscriptsService', () => {
  it('pages a user’s sessions with the last one’s (start, id) as the next cursor', async () => {
    const h = harness();
    expect((await h.service.list('alice', { limit: 2 })).nextCursor).toBe('1000.s-1');
    const cursor = { startedAt: 5000, sessionId: 's-9' };
    expect((await h.service.list('alice', { limit: 3, cursor })).nextCursor).toBeNull();
    expect(h.transcripts.listSessions).toHaveBeenLastCalledWith('alice', {
      limit: 3,
      after: cursor,
    });
    await expect(h.service.list('nobody', { limit: 2 })).rejects.toBeInstanceOf(UserNotFoundError);
  });

  it('audits an export before its first line goes out, and not a refused one', async () => {
    const h = harness();
    const exported = await h.service.export(CONTEXT, 's-1');
    // Audited already, although not one line has been read.
    expect(h.audit.record).toHaveBeenCalledWith(CONTEXT, 'transcript.export', 's-1', {
      streamed: true,
    });
    expect(await collect(exported)).toEqual(['{"type":"header"}\n']);
    h.transcripts.exportLines.mockRejectedValueOnce(new TranscriptNotFoundError('s-9'));
    await expect(h.service.export(CONTEXT, 's-9')).rejects.toBeInstanceOf(TranscriptNotFoundError);
    expect(h.audit.record).toHaveBeenCalledTimes(1);
  });

  it('hands out nothing when the audit cannot be written', async () => {
    const h = harness();
    h.audit.record.mockRejectedValueOnce(new Error('audit store down'));
    await expect(h.service.export(CONTEXT, 's-1')).rejects.toThrow('audit store down');
  });

  it('audits a purge with its counts, the cutoff as target', async () => {
    const h = harness();
    const before = NOW - 86_400_000;
    const outcome = await h.service.purge(CONTEXT, { before, dryRun: false, limit: 50 });
    expect(outcome.totals.sessions).toBe(3);
    expect(h.retention.purge).toHaveBeenCalledWith({ before, dryRun: false, limit: 50 });
    expect(h.audit.record).toHaveBeenCalledWith(
      CONTEXT,
      'transcript.purge',
      new Date(before).toISOString(),
      { sessions: 3, chunks: 7, bytes: 900, with_receipt: 2, without_receipt: 1, more: true },
    );
  });

  it('does not audit a dry run, and passes its cursor on', async () => {
    const h = harness();
    const cursor = { at: NOW - 5000, sessionId: 's-4' };
    await h.service.purge(CONTEXT, { before: NOW, dryRun: true, limit: 10, cursor });
    expect(h.retention.purge).toHaveBeenCalledWith({
      before: NOW,
      dryRun: true,
      limit: 10,
      after: cursor,
    });
    expect(h.audit.record).not.toHaveBeenCalled();
  });

  it('refuses a cutoff in the future: it would take sessions still going on', async () => {
    const h = harness();
    await expect(
      h.service.purge(CONTEXT, { before: NOW + 1, dryRun: true, limit: 10 }),
    ).rejects.toMatchObject({
      code: 'bad_request',
      errors: [{ field: 'before', message: 'must not be in the future' }],
    });
    expect(h.retention.purge).not.toHaveBeenCalled();
  });
});
