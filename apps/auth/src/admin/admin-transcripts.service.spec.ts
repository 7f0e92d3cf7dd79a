import { type TranscriptExportService, TranscriptNotFoundError } from '@securechat/relay';

import { type AuthService } from '../auth.service';
import { UserNotFoundError } from '../errors/user-not-found.error';
import { type AdminAuditService } from './admin-audit.service';
import { type AdminRequestContext } from './admin-request-context';
import { AdminTranscriptsService } from './admin-transcripts.service';

const CONTEXT: AdminRequestContext = { actor: 'token:abcdef012345', sourceAddress: '::1' };

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
  const auth = {
    getUser: jest.fn((username: string) =>
      username === 'alice' ? Promise.resolve({}) : Promise.reject(new UserNotFoundError(username)),
    ),
  };
  const audit = { record: jest.fn(() => Promise.resolve()) };
  const service = new AdminTranscriptsService(
    transcripts as unknown as TranscriptExportService,
    auth as unknown as AuthService,
    audit as unknown as AdminAuditService,
  );
  return { transcripts, audit, service };
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
});
