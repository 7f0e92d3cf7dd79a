import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  type RecordEvent,
  exportSpki,
  fingerprint,
  parseTranscript,
  verifyTranscriptLog,
} from '@securechat/protocol';

import { FileTranscriptSink, MemoryTranscriptSink, type TranscriptHeader } from './transcript-log';

const serverKey = exportSpki(generateKeyPairSync('ed25519').publicKey);
const header: TranscriptHeader = {
  sessionId: 's-1/x',
  server: 'chat:7777',
  serverKey,
  serverFingerprint: fingerprint(serverKey),
  username: 'alice',
  h2: Buffer.alloc(32, 7),
  startedAt: new Date('2026-01-02T03:04:05.000Z'),
};

function event(direction: 'c2s' | 's2c', json: object, chained = true, sequence = 1): RecordEvent {
  return { direction, sequence, chained, plaintext: Buffer.from(JSON.stringify(json)) };
}

describe('FileTranscriptSink', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'transcripts-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a header, every record byte-exact, and the closing records, mode 0600', async () => {
    const log = new FileTranscriptSink({ directory: join(dir, 't'), bufferBytes: 100 }).open(
      header,
    );
    const raw = Buffer.from('{"type":"deliver","body":"h\\u00e9 ✓"}');
    log.record(event('s2c', { type: 'login_ok' }, true, 0));
    log.record({ direction: 's2c', sequence: 1, chained: true, plaintext: raw });
    log.record(event('c2s', { type: 'bye' }, false));
    const receipt = { session_id: 's-1/x', c2s_count: 0, c2s_chain: 'A', s2c_count: 2 };
    log.record(
      event('s2c', { type: 'receipt', ...receipt, s2c_chain: 'B', signature: 'C' }, false),
    );
    log.record(event('c2s', { type: 'countersign', c2s_count: 0, signature: 'D' }, false));
    await log.finish({ reason: 'closed', viewsMatch: true, signatureValid: true });
    await log.finish({ reason: 'error' }); // once only

    expect(readdirSync(join(dir, 't'))).toEqual([
      expect.stringMatching(/^2026-01-02T03-04-05-000Z-s-1_x-[0-9a-f]{6}\.jsonl$/),
    ]);
    expect(statSync(log.location).mode & 0o777).toBe(0o600);
    const parsed = parseTranscript(readFileSync(log.location, 'utf8'));
    expect(parsed.header).toMatchObject({
      kind: 'header',
      session_id: 's-1/x',
      server: 'chat:7777',
      server_key: serverKey.toString('base64'),
      h2: Buffer.alloc(32, 7).toString('base64'),
      started_at: '2026-01-02T03:04:05.000Z',
    });
    expect(parsed.records).toHaveLength(5);
    expect(Buffer.from(parsed.records[1]!.plaintext!, 'base64').equals(raw)).toBe(true);
    expect(parsed.records[1]!.text).toBe(raw.toString('utf8'));
    expect(parsed.records.map((r) => [r.dir, r.seq, r.chained])).toEqual([
      ['s2c', 0, true],
      ['s2c', 1, true],
      ['c2s', 1, false],
      ['s2c', 1, false],
      ['c2s', 1, false],
    ]);
    expect(parsed.end).toMatchObject({
      reason: 'closed',
      views_match: true,
      signature_valid: true,
      receipt: { ...receipt, s2c_chain: 'B', signature: 'C' },
      countersign: { c2s_count: 0, signature: 'D' },
    });
  });

  it('flushes on its timer, before the session ends', async () => {
    const log = new FileTranscriptSink({ directory: dir, flushIntervalMs: 10 }).open(header);
    log.record(event('s2c', { type: 'login_ok' }, true, 0));
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(log.location, 'utf8').split('\n')).toHaveLength(3); // header, record, ''
    await log.finish({ reason: 'connection_lost' });
    expect(parseTranscript(readFileSync(log.location, 'utf8')).end).toMatchObject({
      reason: 'connection_lost',
      receipt: null,
      countersign: null,
      views_match: null,
    });
  });
});

/** A header line for checks that never get as far as the chains. */
function minimalHeader() {
  return {
    kind: 'header' as const,
    version: 1 as const,
    session_id: 's',
    server: 'x:1',
    server_key: serverKey.toString('base64'),
    server_fingerprint: fingerprint(serverKey),
    username: 'alice',
    h2: Buffer.alloc(32).toString('base64'),
    started_at: '',
  };
}

describe('MemoryTranscriptSink and verifyTranscriptLog', () => {
  it('keeps lines in memory', async () => {
    const sink = new MemoryTranscriptSink();
    const log = sink.open(header);
    log.record(event('s2c', { type: 'login_ok' }, true, 0));
    await log.finish({ reason: 'connection_lost' });
    expect(sink.sessions[0]).toMatchObject({ finished: true });
    expect(sink.sessions[0]!.lines).toHaveLength(3);
  });

  it('fails a transcript without a receipt, and one whose server key does not match', () => {
    const base = { header: minimalHeader(), records: [] };
    const noReceipt = verifyTranscriptLog(base);
    expect(noReceipt.ok).toBe(false);
    expect(noReceipt.checks.map((c) => c.name)).toContain('receipt present');
    const otherKey = verifyTranscriptLog({
      ...base,
      header: { ...base.header, server_fingerprint: `sha256:${'0'.repeat(64)}` },
    });
    expect(otherKey).toMatchObject({ ok: false, checks: [{ name: 'server key', ok: false }] });
  });

  it('fails a record whose readable text differs from its signed bytes', () => {
    const record = (text: string) => ({
      kind: 'record' as const,
      dir: 'c2s' as const,
      seq: 1,
      chained: true,
      plaintext: Buffer.from('{"type":"ping"}').toString('base64'),
      text,
    });
    const base = { header: minimalHeader() };
    const check = (text: string) =>
      verifyTranscriptLog({ ...base, records: [record(text)] }).checks.find(
        (c) => c.name === 'readable text matches the signed bytes',
      );
    expect(check('{"type":"ping"}')).toMatchObject({ ok: true });
    expect(check('{"type":"pong"}')).toMatchObject({
      ok: false,
      detail: expect.stringContaining('c2s 1') as string,
    });
  });
});
