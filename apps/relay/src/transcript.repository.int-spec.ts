/**
 * Transcripts end to end (docs/PROTOCOL.md §8): a real session run with libs/protocol, its
 * records stored through transcriptAppend in several batches (one of them retried), then
 * verified from the store with the specs' StoredTranscriptVerifier; a tampered record must fail
 * verification.
 */
import { createPublicKey } from 'node:crypto';

import { and, eq, sql } from 'drizzle-orm';

import { type ChunkRecord, decodeChunk, encodeChunk, type TranscriptBatch } from '@securechat/core';
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
  REFUSED,
  runCollectedSession,
  wireView,
} from '../test/collected-session';
import { StoredTranscriptVerifier } from '../test/stored-transcript-verifier';
import { TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

const serverPublicKey = createPublicKey(serverIdentity);

const openOf = (s: CollectedSession, mode: 'full' | 'digest' = 'full') => ({
  sessionId: s.sessionId,
  username: 'alice',
  gateway: 'gw-test',
  mode,
  h2: b64(s.h2),
  startedAt: 1_764_000_000_000,
});

const closeOf = (s: CollectedSession) => ({
  sessionId: s.sessionId,
  endedAt: 1_764_000_060_000,
  status: s.check.outcome,
  serverView: wireView(s.check.serverView),
  receiptSignature: b64(s.check.serverSignature),
  clientView: wireView(s.check.clientView),
  countersignature: b64(s.check.clientSignature),
});

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('transcripts on %s', (_name, open) => {
  let handle: TestDatabase;
  let repo: TranscriptRepository;
  let verifier: StoredTranscriptVerifier;
  let full: CollectedSession;
  let digest: CollectedSession;
  let refusing: CollectedSession;

  beforeAll(async () => {
    handle = await open();
    repo = new TranscriptRepository(handle.db);
    verifier = new StoredTranscriptVerifier(repo, new UserDirectoryRepository(handle.db));
    const spki = exportSpki(aliceKey);
    await handle.db.insert(users).values({
      username: 'alice',
      passwordHash: 'not used here',
      publicKey: spki,
      fingerprint: fingerprint(spki),
    });
    full = await runCollectedSession('s-full', 12);
    digest = await runCollectedSession('s-digest', 3);
    refusing = await runCollectedSession('s-refused', 4, { refusals: true });
  }, 60_000);
  afterAll(() => handle.close());

  /**
   * Replaces the stored record at `position` of `sessionId` with what `replace` makes of it,
   * runs `check` on the altered store, and puts the chunk back as it was.
   */
  async function withStoredRecord(
    sessionId: string,
    position: number,
    replace: (record: ChunkRecord) => ChunkRecord,
    check: () => Promise<void>,
  ): Promise<void> {
    const where = and(
      eq(transcriptChunks.sessionId, sessionId),
      sql`${transcriptChunks.firstPosition} <= ${position}`,
      sql`${transcriptChunks.firstPosition} + ${transcriptChunks.recordCount} > ${position}`,
    );
    const [original] = await handle.db.select().from(transcriptChunks).where(where);
    const records = decodeChunk(original!.records);
    const at = position - original!.firstPosition;
    records[at] = replace(records[at]!);
    try {
      await handle.db
        .update(transcriptChunks)
        .set({ records: encodeChunk(records) })
        .where(where);
      await check();
    } finally {
      await handle.db.update(transcriptChunks).set({ records: original!.records }).where(where);
    }
  }

  it('stores a full session over several batches, a retried batch changing nothing', async () => {
    const { records } = full;
    expect(records.length).toBeGreaterThan(50); // includes key updates both ways
    const third = Math.floor(records.length / 3);
    const batches: TranscriptBatch[] = [
      { opens: [openOf(full)], chunks: chunksOf(records.slice(0, third)), closes: [] },
      { opens: [], chunks: chunksOf(records.slice(third, 2 * third)), closes: [] },
      { opens: [], chunks: chunksOf(records.slice(2 * third)), closes: [closeOf(full)] },
    ];
    expect(await repo.append(batches[0]!)).toEqual({
      ok: true,
      opened: 1,
      recorded: third,
      closed: 0,
    });
    expect(await repo.append(batches[1]!)).toMatchObject({ recorded: third });
    // The gateway lost the answer and resends the same batch: nothing changes.
    expect(await repo.append(batches[1]!)).toEqual({ ok: true, opened: 0, recorded: 0, closed: 0 });
    expect(await repo.append(batches[2]!)).toEqual({
      ok: true,
      opened: 0,
      recorded: records.length - 2 * third,
      closed: 1,
    });
    // ... and all of them once more, at the end: still nothing.
    for (const batch of batches) {
      expect(await repo.append(batch)).toEqual({ ok: true, opened: 0, recorded: 0, closed: 0 });
    }

    const stored = await repo.load('s-full');
    expect(stored!.session).toMatchObject({
      sessionId: 's-full',
      username: 'alice',
      gateway: 'gw-test',
      mode: 'full',
      status: 'agreed',
      startedAt: 1_764_000_000_000,
      endedAt: 1_764_000_060_000,
    });
    expect(stored!.records.map((r) => r.position)).toEqual(records.map((_, i) => i));
    expect(stored!.records.map((r) => b64(r.plaintext!))).toEqual(records.map((r) => r.plaintext));
  });

  it('verifies the stored session: chains recomputed, receipt and countersignature valid', async () => {
    const report = await verifier.verify('s-full', serverPublicKey);
    expect(report).toMatchObject({ ok: true, status: 'agreed', mode: 'full' });
    expect(report!.checks.map((c) => [c.name, c.ok])).toEqual([
      ['records contiguous', true],
      ['records match receipt', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
    expect(report!.recomputed).toMatchObject({
      c2sCount: full.check.serverView.c2sCount,
      s2cCount: full.check.serverView.s2cCount,
    });
    // a foreign server key fails it
    const other = createPublicKey(aliceKey);
    expect((await verifier.verify('s-full', other))!.ok).toBe(false);
  });

  // docs/PROTOCOL.md §10 item 25: a request the gateway refused before any work is stored by
  // its digest, and the chains still recompute from it.
  it('stores refused requests by digest and verifies the session from the digests', async () => {
    const shipped = refusing.records;
    const refusedAt = shipped.filter((r) => r.digest !== undefined).map((r) => r.position);
    expect(refusedAt).toHaveLength(8); // a forged send and a bad join in each of 4 rounds
    expect(
      await repo.append({
        opens: [openOf(refusing)],
        chunks: chunksOf(shipped),
        closes: [closeOf(refusing)],
      }),
    ).toEqual({ ok: true, opened: 1, recorded: shipped.length, closed: 1 });

    const stored = await repo.load('s-refused');
    expect(stored!.records.filter((r) => r.digest !== undefined).map((r) => r.position)).toEqual(
      refusedAt,
    );
    for (const record of stored!.records.filter((r) => r.digest !== undefined)) {
      expect(record).toMatchObject({ direction: 'c2s', chained: true });
      expect(record.plaintext).toBeUndefined();
      expect(b64(record.digest)).toBe(shipped[record.position]!.digest);
    }
    // Neither refused request is in the store; the errors answering them are.
    const rows = await handle.db
      .select({ records: transcriptChunks.records })
      .from(transcriptChunks)
      .where(eq(transcriptChunks.sessionId, 's-refused'));
    const bytes = Buffer.concat(rows.map((row) => row.records));
    expect(bytes.includes(REFUSED.forgedBody)).toBe(false);
    expect(bytes.includes(REFUSED.badRoom)).toBe(false);
    expect(bytes.includes('sig: does not verify')).toBe(true);

    const report = await verifier.verify('s-refused', serverPublicKey);
    expect(report).toMatchObject({ ok: true, status: 'agreed', mode: 'full' });
    expect(report!.checks.map((c) => [c.name, c.ok])).toEqual([
      ['records contiguous', true],
      ['records match receipt', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
    expect(report!.checks[1]!.detail).toContain('(8 of them kept by digest)');

    // A digest that is not the refused record's breaks the chain like an altered plaintext.
    await withStoredRecord(
      's-refused',
      refusedAt[0]!,
      ({ direction, chained }) => ({ direction, chained, digest: Buffer.alloc(32, 0xee) }),
      async () => {
        const tampered = await verifier.verify('s-refused', serverPublicKey);
        expect(tampered!.ok).toBe(false);
        expect(tampered!.checks.find((c) => c.name === 'records match receipt')!.ok).toBe(false);
      },
    );
    expect((await verifier.verify('s-refused', serverPublicKey))!.ok).toBe(true);
  });

  it('keeps a closed session closed: a later close does not rewrite it', async () => {
    const rewrite = { ...closeOf(full), status: 'disputed' as const, endedAt: 1 };
    expect(await repo.append({ opens: [], chunks: [], closes: [rewrite] })).toMatchObject({
      closed: 0,
    });
    expect((await repo.load('s-full'))!.session).toMatchObject({
      status: 'agreed',
      endedAt: 1_764_000_060_000,
    });
  });

  it('fails verification once a stored record is altered', async () => {
    await withStoredRecord(
      's-full',
      5,
      ({ direction, chained }) => ({
        direction,
        chained,
        plaintext: Buffer.from('{"type":"ping","n":999}'),
      }),
      async () => {
        const report = await verifier.verify('s-full', serverPublicKey);
        expect(report!.ok).toBe(false);
        expect(report!.checks.find((c) => c.name === 'records match receipt')!.ok).toBe(false);
        // signatures themselves are still fine: it is the records that no longer match
        expect(report!.checks.find((c) => c.name === 'receipt signature')!.ok).toBe(true);
      },
    );
    expect((await verifier.verify('s-full', serverPublicKey))!.ok).toBe(true);
  });

  it('verifies a digest session by its signatures alone', async () => {
    expect(
      await repo.append({
        opens: [openOf(digest, 'digest')],
        chunks: [],
        closes: [closeOf(digest)],
      }),
    ).toEqual({ ok: true, opened: 1, recorded: 0, closed: 1 });
    const report = await verifier.verify('s-digest', serverPublicKey);
    expect(report).toMatchObject({ ok: true, status: 'agreed', mode: 'digest' });
    expect(report!.recomputed).toBeUndefined();
    expect(report!.checks.map((c) => c.name)).toEqual([
      'receipt signature',
      'views agree',
      'countersignature',
    ]);
    // with a forged countersignature it fails
    await handle.db
      .update(transcriptSessions)
      .set({ countersignature: Buffer.alloc(64, 7) })
      .where(eq(transcriptSessions.sessionId, 's-digest'));
    expect((await verifier.verify('s-digest', serverPublicKey))!.ok).toBe(false);
  });

  it('applies a batch that opens, closes, and opens-and-closes several sessions at once', async () => {
    const open = (sessionId: string) => ({ ...openOf(digest, 'digest'), sessionId });
    const close = (sessionId: string, endedAt: number) => ({
      ...closeOf(digest),
      sessionId,
      endedAt,
    });
    // m-1 and m-3 opened by an earlier batch; m-3 is opened again below (a gateway resending
    // an open with later work) and must still be closed by the same batch.
    await repo.append({ opens: [open('m-1'), open('m-3')], chunks: [], closes: [] });
    const mixed: TranscriptBatch = {
      opens: [open('m-2'), open('m-3'), open('m-4')],
      chunks: [],
      closes: [
        close('m-1', 1_764_000_001_000),
        close('m-2', 1_764_000_002_000),
        close('m-3', 1_764_000_003_000),
        // a second close of m-2 in the same batch: the first one applies
        { ...close('m-2', 1_764_000_009_000), status: 'disputed' as const },
      ],
    };
    expect(await repo.append(mixed)).toEqual({ ok: true, opened: 2, recorded: 0, closed: 3 });
    expect(await repo.append(mixed)).toEqual({ ok: true, opened: 0, recorded: 0, closed: 0 });

    const rows = await handle.db
      .select()
      .from(transcriptSessions)
      .where(sql`${transcriptSessions.sessionId} like 'm-%'`)
      .orderBy(transcriptSessions.sessionId);
    expect(rows.map((r) => [r.sessionId, r.status, r.endedAt?.getTime() ?? null])).toEqual([
      ['m-1', 'agreed', 1_764_000_001_000],
      ['m-2', 'agreed', 1_764_000_002_000],
      ['m-3', 'agreed', 1_764_000_003_000],
      ['m-4', 'open', null],
    ]);
    expect(rows[3]).toMatchObject({
      c2sChain: null,
      receiptSignature: null,
      countersignature: null,
    });
    // Every close stored all of its fields (the receipt signs the session id, so these rows
    // do not verify; their columns must equal the close's).
    const c = closeOf(digest);
    for (const row of rows.slice(0, 3)) {
      expect({
        c2sCount: row.c2sCount,
        c2sChain: b64(row.c2sChain!),
        s2cCount: row.s2cCount,
        s2cChain: b64(row.s2cChain!),
        receipt: b64(row.receiptSignature!),
        clientC2sCount: row.clientC2sCount,
        clientC2sChain: b64(row.clientC2sChain!),
        clientS2cCount: row.clientS2cCount,
        clientS2cChain: b64(row.clientS2cChain!),
        countersignature: b64(row.countersignature!),
        h2: b64(row.h2),
      }).toEqual({
        c2sCount: c.serverView.c2sCount,
        c2sChain: c.serverView.c2sChain,
        s2cCount: c.serverView.s2cCount,
        s2cChain: c.serverView.s2cChain,
        receipt: c.receiptSignature,
        clientC2sCount: c.clientView.c2sCount,
        clientC2sChain: c.clientView.c2sChain,
        clientS2cCount: c.clientView.s2cCount,
        clientS2cChain: c.clientView.s2cChain,
        countersignature: c.countersignature,
        h2: openOf(digest).h2,
      });
    }
  });

  it('reports a session that ended without a receipt, and an unknown one', async () => {
    const sessionId = 's-lost';
    await repo.append({
      opens: [{ ...openOf(full), sessionId }],
      chunks: chunksOf(full.records.slice(0, 4).map((r) => ({ ...r, sessionId }))),
      closes: [
        {
          sessionId,
          endedAt: 1_764_000_001_000,
          status: 'incomplete',
          serverView: wireView(full.check.serverView),
        },
      ],
    });
    const report = await verifier.verify(sessionId, serverPublicKey);
    expect(report).toMatchObject({ ok: false, status: 'incomplete' });
    expect(report!.checks.find((c) => c.name === 'receipt present')!.ok).toBe(false);
    expect(await verifier.verify('s-unknown', serverPublicKey)).toBeUndefined();
    expect(await repo.load('s-unknown')).toBeUndefined();
  });

  it('rejects records of a session that was never opened, storing nothing of the batch', async () => {
    await expect(
      repo.append({
        opens: [{ ...openOf(full), sessionId: 's-half' }],
        chunks: chunksOf([{ ...full.records[0]!, sessionId: 's-never-opened' }]),
        closes: [],
      }),
    ).rejects.toThrow();
    expect(await repo.load('s-half')).toBeUndefined();
  });

  it('rejects a malformed chunk, storing nothing of the batch', async () => {
    const [chunk] = chunksOf(full.records.slice(0, 3).map((r) => ({ ...r, sessionId: 's-bad' })));
    const truncated = Buffer.from(chunk!.records, 'base64').subarray(0, -1).toString('base64');
    await expect(
      repo.append({
        opens: [{ ...openOf(full), sessionId: 's-bad' }],
        chunks: [{ ...chunk!, records: truncated }],
        closes: [],
      }),
    ).rejects.toThrow(/transcript chunk malformed/);
    expect(await repo.load('s-bad')).toBeUndefined();
  });

  it('pages records across chunk boundaries by position', async () => {
    const all = (await repo.load('s-full'))!.records;
    for (const [after, limit] of [
      [undefined, 7],
      [3, 10],
      [all.length - 3, 10],
      [all.length - 1, 5],
    ] as const) {
      const page = await repo.loadRecords('s-full', limit, after);
      const from = after === undefined ? 0 : after + 1;
      expect(page).toEqual(all.slice(from, from + limit));
    }
  });
});
