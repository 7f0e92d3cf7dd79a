/**
 * Transcript retention against a real store (PGlite and PostgreSQL): a purge deletes the
 * record chunks of sessions that ended (never ended: started) before the cutoff and nothing
 * else; the session rows keep their chains, receipt and countersignature, which still verify;
 * the export of a purged session is refused; a dry run deletes nothing; the relay's periodic
 * purge follows SECURECHAT_TRANSCRIPT_RETENTION_DAYS (driven by a fixed clock and direct calls,
 * never by time).
 */
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { asc, eq, sql } from 'drizzle-orm';

import {
  type ClockRepository,
  type SecureChatConfig,
  type TranscriptBatch,
} from '@securechat/core';
import { exportSpki, fingerprint } from '@securechat/protocol';
import { transcriptChunks, transcriptSessions, users } from '@db/schema';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { aliceKey, serverIdentity } from '../../../libs/protocol/test/in-memory-pair';
import {
  b64,
  chunksOf,
  type CollectedSession,
  runCollectedSession,
  type ShippedRecord,
  wireView,
} from '../test/collected-session';
import { StoredTranscriptVerifier } from '../test/stored-transcript-verifier';
import { TranscriptPurgedError } from './errors/transcript-purged.error';
import { ServerPublicKeyRepository } from './server-public-key.repository';
import { TranscriptExportService } from './transcript-export.service';
import { TranscriptRetentionScheduler } from './transcript-retention.scheduler';
import { TranscriptRetentionService } from './transcript-retention.service';
import { TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

const DAY = 24 * 60 * 60 * 1000;
/** "Now" for every purge here. */
const NOW = Date.UTC(2026, 5, 1);
const serverPublicKey = createPublicKey(serverIdentity);

const fixedClock = (now = NOW): ClockRepository => ({ now: () => now });

const withId = (records: readonly ShippedRecord[], sessionId: string) =>
  records.map((r) => ({ ...r, sessionId }));

function openOf(sessionId: string, h2: Buffer, startedAt: number, mode: 'full' | 'digest') {
  return { sessionId, username: 'alice', gateway: 'gw-test', mode, h2: b64(h2), startedAt };
}

/** The close a gateway sends after bye, receipt and countersign. */
function agreedClose(s: CollectedSession, sessionId: string, endedAt: number) {
  return {
    sessionId,
    endedAt,
    status: s.check.outcome,
    serverView: wireView(s.check.serverView),
    receiptSignature: b64(s.check.serverSignature),
    clientView: wireView(s.check.clientView),
    countersignature: b64(s.check.clientSignature),
  };
}

/** The close of a session whose connection was lost: the server's view, no receipt. */
function lostClose(s: CollectedSession, sessionId: string, endedAt: number) {
  return {
    sessionId,
    endedAt,
    status: 'incomplete' as const,
    serverView: wireView(s.check.serverView),
  };
}

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('transcript retention on %s', (_name, open) => {
  let handle: TestDatabase;
  let keyDir: string;
  let repo: TranscriptRepository;
  let verifier: StoredTranscriptVerifier;
  let exporter: TranscriptExportService;
  let retention: TranscriptRetentionService;
  let old: CollectedSession;
  let recent: CollectedSession;

  /**
   * One store per test, holding (cutoff: NOW - 30 days):
   * - `t-old`      full, agreed (receipt and countersignature), ended 40 days ago: due
   * - `t-lost`     full, incomplete (no receipt), ended 35 days ago: due
   * - `t-orphan`   full, never ended, started 50 days ago: due (by its start)
   * - `t-digest`   digest (no records), agreed, ended 45 days ago: due (nothing to delete)
   * - `t-recent`   full, agreed, ended 10 days ago: kept
   */
  async function seed(): Promise<void> {
    const batch: TranscriptBatch = {
      opens: [
        openOf('t-old', old.h2, NOW - 41 * DAY, 'full'),
        openOf('t-lost', old.h2, NOW - 36 * DAY, 'full'),
        openOf('t-orphan', old.h2, NOW - 50 * DAY, 'full'),
        openOf('t-digest', old.h2, NOW - 46 * DAY, 'digest'),
        openOf('t-recent', recent.h2, NOW - 11 * DAY, 'full'),
      ],
      chunks: chunksOf([
        ...withId(old.records, 't-old'),
        ...withId(old.records.slice(0, 9), 't-lost'),
        ...withId(old.records.slice(0, 5), 't-orphan'),
        ...recent.records.map((r) => ({ ...r, sessionId: 't-recent' })),
      ]),
      closes: [
        agreedClose(old, 't-old', NOW - 40 * DAY),
        lostClose(old, 't-lost', NOW - 35 * DAY),
        agreedClose(old, 't-digest', NOW - 45 * DAY),
        agreedClose(recent, 't-recent', NOW - 10 * DAY),
      ],
    };
    await repo.append(batch);
  }

  async function chunksOfSession(sessionId: string): Promise<number> {
    const rows = await handle.db
      .select({ n: sql<number>`count(*)`.mapWith(Number) })
      .from(transcriptChunks)
      .where(eq(transcriptChunks.sessionId, sessionId));
    return rows[0]!.n;
  }

  async function sessionRows() {
    return handle.db.select().from(transcriptSessions).orderBy(asc(transcriptSessions.sessionId));
  }

  beforeAll(async () => {
    keyDir = mkdtempSync(join(tmpdir(), 'securechat-retention-'));
    const keyPath = join(keyDir, 'server-identity.pem');
    writeFileSync(keyPath, serverIdentity.export({ format: 'pem', type: 'pkcs8' }), {
      mode: 0o600,
    });
    handle = await open();
    repo = new TranscriptRepository(handle.db);
    verifier = new StoredTranscriptVerifier(repo, new UserDirectoryRepository(handle.db));
    exporter = new TranscriptExportService(
      repo,
      new ServerPublicKeyRepository({ identityKeyPath: keyPath }),
    );
    retention = new TranscriptRetentionService(repo, fixedClock());
    const spki = exportSpki(aliceKey);
    await handle.db.insert(users).values({
      username: 'alice',
      passwordHash: 'not used here',
      publicKey: spki,
      fingerprint: fingerprint(spki),
    });
    [old, recent] = await Promise.all([
      runCollectedSession('t-old', 8),
      runCollectedSession('t-recent', 3),
    ]);
  }, 60_000);

  beforeEach(async () => {
    await handle.db.delete(transcriptChunks);
    await handle.db.delete(transcriptSessions);
    await seed();
  });

  afterAll(async () => {
    await handle.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('lists in a dry run what a purge would delete, oldest first, and deletes nothing', async () => {
    const before = await sessionRows();
    const chunksBefore = await chunksOfSession('t-old');
    const outcome = await retention.purge({ before: NOW - 30 * DAY, dryRun: true });
    expect(outcome.sessions.map((s) => s.sessionId)).toEqual([
      't-orphan',
      't-digest',
      't-old',
      't-lost',
    ]);
    expect(outcome.sessions.find((s) => s.sessionId === 't-old')).toMatchObject({
      status: 'agreed',
      mode: 'full',
      receipt: true,
      countersigned: true,
      chunks: chunksBefore,
    });
    expect(outcome.sessions.find((s) => s.sessionId === 't-lost')).toMatchObject({
      status: 'incomplete',
      receipt: false,
      countersigned: false,
    });
    expect(outcome.sessions.find((s) => s.sessionId === 't-digest')).toMatchObject({
      receipt: true,
      chunks: 0,
      bytes: 0,
    });
    const oldSession = outcome.sessions.find((s) => s.sessionId === 't-old')!;
    // Each record is flags, length and plaintext (or digest) in its chunk.
    const plaintextBytes = old.records.reduce(
      (n, r) => n + Buffer.from(r.plaintext ?? r.digest, 'base64').length,
      0,
    );
    expect(oldSession.bytes).toBe(plaintextBytes + 5 * old.records.length);
    expect(outcome.totals).toEqual({
      sessions: 4,
      chunks: outcome.sessions.reduce((n, s) => n + s.chunks, 0),
      bytes: outcome.sessions.reduce((n, s) => n + s.bytes, 0),
      withReceipt: 2,
      withoutReceipt: 2,
    });
    expect(outcome).toMatchObject({ dryRun: true, more: false, next: undefined });

    expect(await sessionRows()).toEqual(before);
    expect(await chunksOfSession('t-old')).toBe(chunksBefore);
    expect((await verifier.verify('t-old', serverPublicKey))!.recordsPurgedAt).toBeUndefined();
  });

  it('pages a dry run with `next`, each session once', async () => {
    const seen: string[] = [];
    let after: Awaited<ReturnType<TranscriptRetentionService['purge']>>['next'];
    do {
      const page = await retention.purge({
        before: NOW - 30 * DAY,
        dryRun: true,
        limit: 3,
        ...(after ? { after } : {}),
      });
      seen.push(...page.sessions.map((s) => s.sessionId));
      after = page.next;
      expect(page.more).toBe(after !== undefined);
    } while (after);
    expect(seen).toEqual(['t-orphan', 't-digest', 't-old', 't-lost']);
  });

  it('deletes the records of due sessions only, and keeps every session row as it was', async () => {
    const before = await sessionRows();
    const recentChunks = await chunksOfSession('t-recent');
    const outcome = await retention.purge({ before: NOW - 30 * DAY });
    expect(outcome.sessions.map((s) => s.sessionId).sort()).toEqual(
      ['t-digest', 't-lost', 't-old', 't-orphan'].sort(),
    );
    expect(outcome).toMatchObject({ dryRun: false, more: false });
    expect(outcome.totals).toMatchObject({ sessions: 4, withReceipt: 2, withoutReceipt: 2 });
    expect(outcome.totals.chunks).toBeGreaterThan(0);

    for (const id of ['t-old', 't-lost', 't-orphan']) expect(await chunksOfSession(id)).toBe(0);
    expect(await chunksOfSession('t-recent')).toBe(recentChunks);

    // Every column of every row as it was, but records_purged_at on the purged ones.
    const after = await sessionRows();
    const purged = new Set(outcome.sessions.map((s) => s.sessionId));
    expect(after.map((row) => ({ ...row, recordsPurgedAt: null }))).toEqual(before);
    for (const row of after) {
      expect(row.recordsPurgedAt?.getTime()).toBe(purged.has(row.sessionId) ? NOW : undefined);
    }
  });

  it('keeps the receipt verifiable: signatures checked against the stored chain heads', async () => {
    await retention.purge({ before: NOW - 30 * DAY });
    const report = await verifier.verify('t-old', serverPublicKey);
    expect(report).toMatchObject({ ok: true, status: 'agreed', recordsPurgedAt: NOW });
    expect(report!.checks.map((c) => [c.name, c.ok])).toEqual([
      ['records purged', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
    // …and still against the right key only.
    expect((await verifier.verify('t-old', createPublicKey(aliceKey)))!.ok).toBe(false);
    // A session that had no receipt has nothing left to verify.
    expect(await verifier.verify('t-lost', serverPublicKey)).toMatchObject({ ok: false });
    // The kept session is verified from its records as before.
    expect((await verifier.verify('t-recent', serverPublicKey))!.checks[0]).toMatchObject({
      name: 'records contiguous',
      ok: true,
    });
  });

  it('refuses to export a purged session, and lists it as purged', async () => {
    const whole = await exporter.exportSession('t-old');
    expect(whole.trimEnd().split('\n').length).toBe(old.records.length + 2);
    await retention.purge({ before: NOW - 30 * DAY });
    await expect(exporter.exportSession('t-old')).rejects.toThrow(TranscriptPurgedError);
    await expect(exporter.exportLines('t-old')).rejects.toMatchObject({
      code: 'transcript_purged',
      purgedAt: NOW,
    });
    // A digest session never had records: it stays "not exportable", not "purged".
    await expect(exporter.exportLines('t-digest')).rejects.toMatchObject({
      code: 'transcript_not_exportable',
    });
    await expect(exporter.exportSession('t-recent')).resolves.toContain('"kind":"end"');
    const listed = await exporter.listSessions('alice', { limit: 10 });
    expect(Object.fromEntries(listed.map((s) => [s.sessionId, s.recordsPurgedAt]))).toEqual({
      't-old': NOW,
      't-lost': NOW,
      't-orphan': NOW,
      't-digest': NOW,
      't-recent': null,
    });
  });

  it('is idempotent: a second purge finds nothing to do', async () => {
    await retention.purge({ before: NOW - 30 * DAY });
    expect(await repo.hasPurgeable(NOW - 30 * DAY)).toBe(false);
    const again = await retention.purge({ before: NOW - 30 * DAY });
    expect(again.sessions).toEqual([]);
    expect(again.totals).toMatchObject({ sessions: 0, chunks: 0, bytes: 0 });
  });

  it('purges in bounded steps, oldest first, saying whether more are due', async () => {
    const first = await retention.purge({ before: NOW - 30 * DAY, limit: 3 });
    expect(first.sessions.map((s) => s.sessionId)).toEqual(['t-orphan', 't-digest', 't-old']);
    expect(first.more).toBe(true);
    const second = await retention.purge({ before: NOW - 30 * DAY, limit: 3 });
    expect(second.sessions.map((s) => s.sessionId)).toEqual(['t-lost']);
    expect(second.more).toBe(false);
  });

  it('purges again the records a session purged while open stored afterwards', async () => {
    await retention.purge({ before: NOW - 30 * DAY });
    // The "orphan" was alive after all: its gateway ships more records, later it closes.
    const late = chunksOf(withId(old.records.slice(5, 8), 't-orphan'));
    await repo.append({ opens: [], chunks: late, closes: [] });
    expect(await chunksOfSession('t-orphan')).toBe(1);
    const open = await retention.purge({ before: NOW - 30 * DAY, dryRun: true });
    expect(open.sessions.map((s) => s.sessionId)).toEqual(['t-orphan']);
    expect((await retention.purge({ before: NOW - 30 * DAY })).totals.chunks).toBe(1);
    expect(await chunksOfSession('t-orphan')).toBe(0);
    // Open and empty again: nothing to do.
    expect(await repo.hasPurgeable(NOW - 30 * DAY)).toBe(false);

    // It ships once more and closes (after the purge); the next purge takes those too, once.
    await repo.append({
      opens: [],
      chunks: chunksOf(withId(old.records.slice(8, 10), 't-orphan')),
      closes: [lostClose(old, 't-orphan', NOW + 1000)],
    });
    const later = new TranscriptRetentionService(repo, fixedClock(NOW + 2000));
    const due = await later.purge({ before: NOW + 1500, dryRun: true });
    // By its end now; t-recent is due by then too.
    expect(due.sessions.map((s) => s.sessionId)).toEqual(['t-recent', 't-orphan']);
    await later.purge({ before: NOW + 1500 });
    expect(await chunksOfSession('t-orphan')).toBe(0);
    // Purged after it ended: done with it for good.
    expect(await repo.hasPurgeable(NOW + 1500)).toBe(false);
  });

  it('takes each session once when purges run side by side', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, () => retention.purge({ before: NOW - 30 * DAY, limit: 2 })),
    );
    const taken = outcomes.flatMap((o) => o.sessions.map((s) => s.sessionId));
    expect(new Set(taken).size).toBe(taken.length);
    while (await repo.hasPurgeable(NOW - 30 * DAY)) {
      taken.push(
        ...(await retention.purge({ before: NOW - 30 * DAY })).sessions.map((s) => s.sessionId),
      );
    }
    expect(taken.sort()).toEqual(['t-digest', 't-lost', 't-old', 't-orphan']);
  });

  describe('the periodic purge', () => {
    const scheduler = (days: number | undefined, now = NOW) =>
      new TranscriptRetentionScheduler(
        { transcriptRetentionDays: days } as SecureChatConfig,
        new TranscriptRetentionService(repo, fixedClock(now)),
      );

    it('deletes the records of sessions older than SECURECHAT_TRANSCRIPT_RETENTION_DAYS', async () => {
      await scheduler(30).run();
      for (const id of ['t-old', 't-lost', 't-orphan']) expect(await chunksOfSession(id)).toBe(0);
      expect(await chunksOfSession('t-recent')).toBeGreaterThan(0);
      // A shorter retention takes the recent session too.
      await scheduler(7).run();
      expect(await chunksOfSession('t-recent')).toBe(0);
    });

    it('keeps everything with the default 0 (and with the setting left out)', async () => {
      const before = await sessionRows();
      const chunks = await chunksOfSession('t-old');
      for (const days of [0, undefined]) {
        const idle = scheduler(days, NOW + 10_000 * DAY);
        idle.onApplicationBootstrap();
        await idle.run();
        await idle.beforeApplicationShutdown();
      }
      expect(await sessionRows()).toEqual(before);
      expect(await chunksOfSession('t-old')).toBe(chunks);
    });

    it('works through the backlog in batches until none is due', async () => {
      const service = new TranscriptRetentionService(repo, fixedClock());
      const result = await service.purgeExpired(30, { batchSize: 1 });
      expect(result).toMatchObject({
        before: NOW - 30 * DAY,
        sessions: 4,
        withReceipt: 2,
        withoutReceipt: 2,
      });
      expect(await repo.hasPurgeable(NOW - 30 * DAY)).toBe(false);
    });

    it('stops between batches when asked to', async () => {
      const service = new TranscriptRetentionService(repo, fixedClock());
      const result = await service.purgeExpired(30, { batchSize: 1, stop: () => true });
      expect(result.sessions).toBe(1);
      expect(await repo.hasPurgeable(NOW - 30 * DAY)).toBe(true);
    });
  });
});
