/**
 * TranscriptExportService against a real store (PGlite and PostgreSQL): a session run with
 * libs/protocol (key updates on both sides) is stored as a gateway would store it, exported,
 * and checked with the client library's own verifier and log format. The export must match,
 * line for line, the log the client kept of the same session.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MemoryTranscriptSink } from '@securechat/client';
import {
  type CountersignCheck,
  exportSpki,
  parseTranscript,
  sha256,
  type TranscriptPlaintextRecordLine,
  type TranscriptRecordLine,
  verifyTranscriptLog,
} from '@securechat/protocol';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import {
  aliceKey,
  serverFingerprint,
  serverIdentity,
} from '../../../libs/protocol/test/in-memory-pair';
import {
  b64,
  chunksOf,
  PASSWORD,
  REFUSED,
  runCollectedSession,
  type ShippedRecord,
  wireView,
} from '../test/collected-session';
import { ServerKeyUnavailableError } from './errors/server-key-unavailable.error';
import { TranscriptNotExportableError } from './errors/transcript-not-exportable.error';
import { TranscriptNotFoundError } from './errors/transcript-not-found.error';
import { ServerPublicKeyRepository } from './server-public-key.repository';
import { EXPORT_BATCH, TranscriptExportService } from './transcript-export.service';
import { TranscriptRepository } from './transcript.repository';

const T0 = 1_764_000_000_000;

interface RunSession {
  readonly sessionId: string;
  readonly h2: Buffer;
  /** What the gateway ships (server-side onRecord, by position). */
  readonly records: ShippedRecord[];
  /** The client's own log of the session, as libs/client writes it. */
  readonly clientLog: object[];
  readonly check: CountersignCheck;
}

/** A whole session in memory (see runCollectedSession), with the log its client kept. */
async function runSession(
  sessionId: string,
  exchanges: number,
  options: { readonly refusals?: boolean } = {},
): Promise<RunSession> {
  const { h2, records, clientEvents, check } = await runCollectedSession(
    sessionId,
    exchanges,
    options,
  );
  const sink = new MemoryTranscriptSink();
  const log = sink.open({
    sessionId,
    server: 'gw-test',
    serverKey: exportSpki(serverIdentity),
    serverFingerprint,
    username: 'alice',
    h2,
    startedAt: new Date(T0),
  });
  for (const event of clientEvents) log.record(event);
  await log.finish({ reason: 'closed', viewsMatch: true, signatureValid: true });
  return { sessionId, h2, records, clientLog: sink.sessions[0]!.lines, check };
}

const openOf = (s: RunSession, mode: 'full' | 'digest' = 'full', startedAt = T0) => ({
  sessionId: s.sessionId,
  username: 'alice',
  gateway: 'gw-test',
  mode,
  h2: b64(s.h2),
  startedAt,
});

const closeOf = (s: RunSession) => ({
  sessionId: s.sessionId,
  endedAt: T0 + 60_000,
  status: s.check.outcome,
  serverView: wireView(s.check.serverView),
  receiptSignature: b64(s.check.serverSignature),
  clientView: wireView(s.check.clientView),
  countersignature: b64(s.check.clientSignature),
});

const byDirection = (records: readonly TranscriptRecordLine[], dir: 'c2s' | 's2c') =>
  records.filter((r) => r.dir === dir);

let keyDir: string;
let keyPath: string;

beforeAll(() => {
  keyDir = mkdtempSync(join(tmpdir(), 'securechat-export-'));
  keyPath = join(keyDir, 'server-identity.pem');
  writeFileSync(keyPath, serverIdentity.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
});

afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('transcript export on %s', (_name, open) => {
  let handle: TestDatabase;
  let repo: TranscriptRepository;
  let exporter: TranscriptExportService;
  let full: RunSession;
  let digest: RunSession;
  let unfinished: RunSession;
  const userKey: KeyObject = createPublicKey(aliceKey);

  beforeAll(async () => {
    handle = await open();
    repo = new TranscriptRepository(handle.db);
    exporter = new TranscriptExportService(
      repo,
      new ServerPublicKeyRepository({ identityKeyPath: keyPath }),
    );
    full = await runSession('s-full', 12);
    digest = await runSession('s-digest', 2);
    unfinished = await runSession('s-open', 2);
    await repo.append({
      opens: [openOf(full), openOf(digest, 'digest', T0 + 1), openOf(unfinished, 'full', T0 + 2)],
      chunks: chunksOf([...full.records, ...unfinished.records.slice(0, 3)]),
      closes: [closeOf(full), closeOf(digest)],
    });
  }, 60_000);
  afterAll(() => handle.close());

  it('exports a session that the client verifier accepts, countersignature included', async () => {
    const text = await exporter.exportSession('s-full');
    const transcript = parseTranscript(text);
    const verification = verifyTranscriptLog(transcript, userKey);
    expect(verification.checks.map((c) => [c.name, c.ok])).toEqual(
      expect.arrayContaining([
        ['records match receipt', true],
        ['receipt signature', true],
        ['views agree', true],
        ['countersignature', true],
      ]),
    );
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);
    expect(transcript.header).toMatchObject({
      session_id: 's-full',
      server_key: exportSpki(serverIdentity).toString('base64'),
      server_fingerprint: serverFingerprint,
      username: 'alice',
      started_at: new Date(T0).toISOString(),
    });
    expect(transcript.end).toMatchObject({ reason: 'closed', views_match: true });
  });

  it('matches the client’s own log record for record, sequence numbers included', async () => {
    const exported = parseTranscript(await exporter.exportSession('s-full'));
    const client = parseTranscript(full.clientLog.map((l) => JSON.stringify(l)).join('\n'));
    // Key updates on both sides (every 5 c2s and 7 s2c records): seq restarts must agree.
    expect(exported.records.filter((r) => r.text === '{"type":"key_update"}').length).toBe(
      client.records.filter((r) => r.text === '{"type":"key_update"}').length,
    );
    expect(exported.records.some((r) => r.text?.includes('key_update'))).toBe(true);
    // Interleaving is each side's own view; per direction the two logs must be identical.
    for (const dir of ['c2s', 's2c'] as const) {
      expect(byDirection(exported.records, dir)).toEqual(byDirection(client.records, dir));
    }
    expect(exported.records.some((r) => r.text?.includes(PASSWORD))).toBe(false);
    expect(exported.end?.receipt).toEqual(client.end?.receipt);
    expect(exported.end?.countersign).toEqual(client.end?.countersign);
    expect(exported.header.h2).toBe(client.header.h2);
  });

  it('fails verification once one byte of the export is changed', async () => {
    const text = await exporter.exportSession('s-full');
    const lines = text.split('\n');
    const index = lines.findIndex((l) => l.includes('hello 3'));
    const record = JSON.parse(lines[index]!) as TranscriptPlaintextRecordLine;
    const bytes = Buffer.from(record.plaintext, 'base64');
    bytes[bytes.indexOf('3', bytes.indexOf('hello'))] = '4'.charCodeAt(0);
    lines[index] = JSON.stringify({ ...record, plaintext: bytes.toString('base64') });
    const bad = verifyTranscriptLog(parseTranscript(lines.join('\n')), userKey);
    expect(bad.ok).toBe(false);
    expect(bad.checks.find((c) => c.name === 'records match receipt')?.ok).toBe(false);
  });

  // docs/PROTOCOL.md §10 item 25: a request the gateway refused is stored, and exported, by
  // digest; the export still verifies, and still lines up with the client's own log.
  it('exports refused requests as digest lines that verify and match the client’s log', async () => {
    const refusing = await runSession('s-refused', 3, { refusals: true });
    await repo.append({
      opens: [{ ...openOf(refusing, 'full', T0 + 4), username: 'erin' }],
      chunks: chunksOf(refusing.records),
      closes: [closeOf(refusing)],
    });
    const text = await exporter.exportSession('s-refused');
    expect(text).not.toContain(REFUSED.forgedBody);
    expect(text).not.toContain(REFUSED.badRoom);
    const exported = parseTranscript(text);
    const digests = exported.records.filter((r) => r.digest !== undefined);
    expect(digests).toHaveLength(6);
    for (const line of digests) {
      expect(Object.keys(line).sort()).toEqual(['chained', 'digest', 'dir', 'kind', 'seq']);
      expect(line).toMatchObject({ kind: 'record', dir: 'c2s', chained: true });
      expect(Buffer.from(line.digest, 'base64')).toHaveLength(32);
    }

    const verification = verifyTranscriptLog(exported, userKey);
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);
    expect(verification.checks.find((c) => c.name === 'records match receipt')?.detail).toContain(
      '(6 of them kept by digest)',
    );

    // Per direction the same records, numbered alike: where the export has a digest, the
    // client's log has the plaintext whose SHA-256 it is.
    const client = parseTranscript(refusing.clientLog.map((l) => JSON.stringify(l)).join('\n'));
    expect(byDirection(exported.records, 's2c')).toEqual(byDirection(client.records, 's2c'));
    const ours = byDirection(client.records, 'c2s');
    const theirs = byDirection(exported.records, 'c2s');
    expect(theirs.map((r) => r.seq)).toEqual(ours.map((r) => r.seq));
    theirs.forEach((line, i) => {
      const own = ours[i]!;
      if (line.digest === undefined) {
        expect(line).toEqual(own);
      } else {
        expect(sha256(Buffer.from(own.plaintext!, 'base64')).toString('base64')).toBe(line.digest);
      }
    });
    expect(
      ours.filter((r) => r.text?.includes(REFUSED.forgedBody) || r.text?.includes(REFUSED.badRoom)),
    ).toHaveLength(6);

    // A changed digest fails the chains like a changed plaintext.
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.includes('"digest"'));
    const line = JSON.parse(lines[at]!) as { digest: string };
    const bytes = Buffer.from(line.digest, 'base64');
    bytes[0]! ^= 1;
    lines[at] = JSON.stringify({ ...line, digest: bytes.toString('base64') });
    const bad = verifyTranscriptLog(parseTranscript(lines.join('\n')), userKey);
    expect(bad.ok).toBe(false);
    expect(bad.checks.find((c) => c.name === 'records match receipt')?.ok).toBe(false);
  });

  it('exports an open session without an end line, which does not verify', async () => {
    const transcript = parseTranscript(await exporter.exportSession('s-open'));
    expect(transcript.records).toHaveLength(3);
    expect(transcript.end).toBeUndefined();
    expect(verifyTranscriptLog(transcript).ok).toBe(false);
  });

  it('refuses digest sessions and unknown ones with their own errors', async () => {
    await expect(exporter.exportSession('s-digest')).rejects.toBeInstanceOf(
      TranscriptNotExportableError,
    );
    await expect(exporter.exportSession('s-digest')).rejects.toMatchObject({
      code: 'transcript_not_exportable',
    });
    await expect(exporter.exportSession('s-nope')).rejects.toBeInstanceOf(TranscriptNotFoundError);
    await expect(exporter.exportSession('s-nope')).rejects.toMatchObject({
      code: 'transcript_not_found',
    });
  });

  it('streams a session longer than three batches: the same lines, and the client verifier accepts them', async () => {
    // 150 exchanges: 600 records and more, with key updates on both sides throughout, so
    // several fall inside batches and the numbering has to carry over the batch boundaries.
    const long = await runSession('s-long', 150);
    expect(long.records.length).toBeGreaterThan(2 * EXPORT_BATCH);
    // Stored under another name than alice's, whose sessions the listing tests count.
    await repo.append({
      opens: [{ ...openOf(long, 'full', T0 + 3), username: 'carol' }],
      chunks: [],
      closes: [],
    });
    for (let i = 0; i < long.records.length; i += 200) {
      await repo.append({
        opens: [],
        chunks: chunksOf(long.records.slice(i, i + 200)),
        closes: [],
      });
    }
    await repo.append({ opens: [], chunks: [], closes: [closeOf(long)] });

    const reads = jest.spyOn(repo, 'loadRecords');
    const whole = jest.spyOn(repo, 'load');
    const streamed: string[] = [];
    for await (const line of await exporter.exportLines('s-long')) streamed.push(line);
    expect(whole).not.toHaveBeenCalled();
    expect(reads.mock.calls.map((c) => c[1])).toEqual(
      Array<number>(Math.floor(long.records.length / EXPORT_BATCH) + 1).fill(EXPORT_BATCH),
    );
    reads.mockRestore();
    whole.mockRestore();
    expect(streamed.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(streamed).toHaveLength(1 + long.records.length + 1);

    const text = streamed.join('');
    expect(await exporter.exportSession('s-long')).toBe(text);
    const exported = parseTranscript(text);
    const verification = verifyTranscriptLog(exported, userKey);
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);
    const client = parseTranscript(long.clientLog.map((l) => JSON.stringify(l)).join('\n'));
    for (const dir of ['c2s', 's2c'] as const) {
      expect(byDirection(exported.records, dir)).toEqual(byDirection(client.records, dir));
    }
    // Key updates on both sides of a batch boundary, so the carry-over was exercised.
    const updates = exported.records
      .map((r, position) => (r.text === '{"type":"key_update"}' ? position : -1))
      .filter((position) => position >= 0);
    expect(updates.some((p) => p < EXPORT_BATCH)).toBe(true);
    expect(updates.some((p) => p >= EXPORT_BATCH && p < 2 * EXPORT_BATCH)).toBe(true);
  }, 60_000);

  it('pages records by position after a given one, at most the limit', async () => {
    const first = await repo.loadRecords('s-full', 5);
    expect(first.map((r) => r.position)).toEqual([0, 1, 2, 3, 4]);
    const next = await repo.loadRecords('s-full', 5, 4);
    expect(next.map((r) => r.position)).toEqual([5, 6, 7, 8, 9]);
    const all = (await repo.load('s-full'))!.records;
    expect([...first, ...next]).toEqual(all.slice(0, 10));
    expect(await repo.loadRecords('s-full', 5, all.length - 1)).toEqual([]);
    expect(await repo.loadRecords('s-nope', 5)).toEqual([]);
    expect(await repo.loadSession('s-full')).toEqual((await repo.load('s-full'))!.session);
    expect(await repo.loadSession('s-nope')).toBeUndefined();
  });

  it('lists a user’s sessions newest first, by pages', async () => {
    const all = await exporter.listSessions('alice');
    expect(all).toEqual([
      {
        sessionId: 's-open',
        username: 'alice',
        gateway: 'gw-test',
        mode: 'full',
        status: 'open',
        startedAt: T0 + 2,
        endedAt: null,
        recordsPurgedAt: null,
      },
      expect.objectContaining({ sessionId: 's-digest', mode: 'digest', startedAt: T0 + 1 }),
      expect.objectContaining({
        sessionId: 's-full',
        status: 'agreed',
        startedAt: T0,
        endedAt: T0 + 60_000,
      }),
    ]);
    const first = await exporter.listSessions('alice', { limit: 2 });
    expect(first.map((s) => s.sessionId)).toEqual(['s-open', 's-digest']);
    const next = await exporter.listSessions('alice', { limit: 2, after: first[1]! });
    expect(next.map((s) => s.sessionId)).toEqual(['s-full']);
    expect(await exporter.listSessions('alice', { limit: 0 })).toHaveLength(1); // clamped to 1
    expect(await exporter.listSessions('bob')).toEqual([]);
  });

  it('pages past sessions that started in the same millisecond as the page boundary', async () => {
    // dave's sessions: two in one millisecond, the boundary falling between them.
    const opens = [
      ['s-tie-a', T0 + 10],
      ['s-tie-b', T0 + 10],
      ['s-late', T0 + 11],
      ['s-early', T0 + 9],
    ] as const;
    await repo.append({
      opens: opens.map(([sessionId, startedAt]) => ({
        ...openOf(full, 'digest', startedAt),
        sessionId,
        username: 'dave',
      })),
      chunks: [],
      closes: [],
    });
    const seen: string[] = [];
    let page = await exporter.listSessions('dave', { limit: 2 });
    while (page.length > 0) {
      seen.push(...page.map((s) => s.sessionId));
      page = await exporter.listSessions('dave', { limit: 2, after: page[page.length - 1]! });
    }
    expect(seen).toEqual(['s-late', 's-tie-b', 's-tie-a', 's-early']);
  });
});

describe('ServerPublicKeyRepository', () => {
  it('reads the public half from the private key file or from a public key in its place', () => {
    const fromPrivate = new ServerPublicKeyRepository({ identityKeyPath: keyPath }).load();
    expect(fromPrivate.fingerprint).toBe(serverFingerprint);
    const publicPath = join(keyDir, 'public.pem');
    writeFileSync(
      publicPath,
      createPublicKey(serverIdentity).export({ format: 'pem', type: 'spki' }),
    );
    const fromPublic = new ServerPublicKeyRepository({ identityKeyPath: publicPath }).load();
    expect(fromPublic.spki).toEqual(fromPrivate.spki);
  });

  it('says clearly that the key is missing, and never creates one', () => {
    const missing = join(keyDir, 'absent.pem');
    const repository = new ServerPublicKeyRepository({ identityKeyPath: missing });
    expect(() => repository.load()).toThrow(ServerKeyUnavailableError);
    expect(() => repository.load()).toThrow(/absent\.pem: no such file/);
    expect(() => repository.load()).toThrow(/SECURECHAT_IDENTITY_KEY/);
    const notEd25519 = join(keyDir, 'x25519.pem');
    writeFileSync(
      notEd25519,
      createPublicKey(generateKeyPairSync('x25519').privateKey).export({
        format: 'pem',
        type: 'spki',
      }),
    );
    expect(() => new ServerPublicKeyRepository({ identityKeyPath: notEd25519 }).load()).toThrow(
      /not an Ed25519 key/,
    );
  });
});
