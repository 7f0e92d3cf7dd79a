/** TranscriptExportService with a mocked store and key: line shapes, numbering, errors. */
import { generateKeyPairSync } from 'node:crypto';

import { exportSpki, fingerprint } from '@securechat/protocol';

import { ServerKeyUnavailableError } from './errors/server-key-unavailable.error';
import { TranscriptNotExportableError } from './errors/transcript-not-exportable.error';
import { TranscriptNotFoundError } from './errors/transcript-not-found.error';
import { TranscriptPurgedError } from './errors/transcript-purged.error';
import { type ServerPublicKeyRepository } from './server-public-key.repository';
import { EXPORT_BATCH, TranscriptExportService } from './transcript-export.service';
import {
  type StoredTranscript,
  type StoredTranscriptRecord,
  type StoredTranscriptSession,
  type TranscriptRepository,
} from './transcript.repository';

const key = generateKeyPairSync('ed25519').publicKey;
const spki = exportSpki(key);
const T0 = Date.UTC(2026, 0, 1);
const chain = (byte: number) => Buffer.alloc(32, byte);

function session(overrides: Partial<StoredTranscriptSession> = {}): StoredTranscriptSession {
  return {
    sessionId: 's-1',
    username: 'alice',
    gateway: 'gw-a',
    mode: 'full',
    h2: chain(1),
    startedAt: T0,
    endedAt: T0 + 1000,
    status: 'incomplete',
    serverView: { c2sCount: 2, c2sChain: chain(2), s2cCount: 3, s2cChain: chain(3) },
    receiptSignature: Buffer.alloc(64, 4),
    clientView: undefined,
    countersignature: undefined,
    recordsPurgedAt: undefined,
    ...overrides,
  };
}

let position = 0;
function record(direction: 'c2s' | 's2c', text: string, chained = true): StoredTranscriptRecord {
  return { position: position++, direction, chained, plaintext: Buffer.from(text) };
}

/** The store's reads over `stored`; loadRecords pages as the repository does (keyset). */
function setup(stored: StoredTranscript | undefined) {
  const records = stored?.records ?? [];
  const transcripts = {
    load: jest.fn().mockResolvedValue(stored),
    loadSession: jest.fn().mockResolvedValue(stored?.session),
    loadRecords: jest.fn((_sessionId: string, limit: number, after?: number) =>
      Promise.resolve(
        records.filter((r) => after === undefined || r.position > after).slice(0, limit),
      ),
    ),
    listSessions: jest.fn().mockResolvedValue([]),
  };
  const serverKey = { load: jest.fn(() => ({ key, spki, fingerprint: fingerprint(spki) })) };
  const service = new TranscriptExportService(
    transcripts as unknown as TranscriptRepository,
    serverKey as unknown as ServerPublicKeyRepository,
  );
  return { service, transcripts, serverKey };
}

const lines = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('TranscriptExportService.exportSession', () => {
  it('numbers records per direction as the client does: c2s from 1, both from 0 after a key_update', async () => {
    position = 0;
    const records = [
      record('s2c', '{"type":"login_ok"}'),
      record('c2s', '{"type":"ping"}'),
      record('c2s', '{"type":"key_update"}'),
      record('s2c', '{"type":"pong"}'),
      record('c2s', '{"type":"ping","n":1}'),
      record('s2c', '{"type":"key_update"}'),
      record('s2c', '{"type":"pong","n":1}'),
      record('c2s', '{"type":"deliver","body":"key_update"}'), // the word alone is not one
      record('c2s', '{"type":"bye"}', false),
    ];
    const { service } = setup({ session: session(), records });
    const out = lines(await service.exportSession('s-1'));
    expect(out[0]).toMatchObject({
      kind: 'header',
      version: 1,
      session_id: 's-1',
      server: 'gw-a',
      server_key: spki.toString('base64'),
      server_fingerprint: fingerprint(spki),
      h2: chain(1).toString('base64'),
      started_at: new Date(T0).toISOString(),
    });
    expect(out.slice(1, -1).map((l) => [l.dir, l.seq, l.chained])).toEqual([
      ['s2c', 0, true],
      ['c2s', 1, true],
      ['c2s', 2, true],
      ['s2c', 1, true],
      ['c2s', 0, true],
      ['s2c', 2, true],
      ['s2c', 0, true],
      ['c2s', 1, true],
      ['c2s', 2, false],
    ]);
    expect(out[2]).toMatchObject({
      plaintext: Buffer.from('{"type":"ping"}').toString('base64'),
      text: '{"type":"ping"}',
    });
  });

  // docs/PROTOCOL.md §10 item 25: a refused request is stored, and exported, by digest.
  it('exports a record kept by digest as a digest line, numbered in its place', async () => {
    position = 0;
    const digest = Buffer.alloc(32, 0xab);
    const records: StoredTranscriptRecord[] = [
      record('s2c', '{"type":"login_ok"}'),
      { position: position++, direction: 'c2s', chained: true, digest },
      record('s2c', '{"type":"error","code":"bad_request","message":"sig","id":"x"}'),
      record('c2s', '{"type":"ping"}'),
    ];
    const { service } = setup({ session: session(), records });
    const out = lines(await service.exportSession('s-1'));
    expect(out[2]).toEqual({
      kind: 'record',
      dir: 'c2s',
      seq: 1,
      chained: true,
      digest: digest.toString('base64'),
    });
    expect(out[4]).toMatchObject({ dir: 'c2s', seq: 2, text: '{"type":"ping"}' });
  });

  it('ends a session with a receipt but no countersignature as connection_lost', async () => {
    const { service } = setup({ session: session(), records: [] });
    const end = lines(await service.exportSession('s-1')).at(-1);
    expect(end).toEqual({
      kind: 'end',
      ended_at: new Date(T0 + 1000).toISOString(),
      reason: 'connection_lost',
      receipt: {
        session_id: 's-1',
        c2s_count: 2,
        c2s_chain: chain(2).toString('base64'),
        s2c_count: 3,
        s2c_chain: chain(3).toString('base64'),
        signature: Buffer.alloc(64, 4).toString('base64'),
      },
      countersign: null,
      views_match: null,
      signature_valid: null,
    });
  });

  it('ends a countersigned session as closed, with the client view, and says whether views matched', async () => {
    const countersigned = {
      clientView: { c2sCount: 2, c2sChain: chain(5), s2cCount: 3, s2cChain: chain(3) },
      countersignature: Buffer.alloc(64, 6),
    };
    for (const [status, match] of [
      ['agreed', true],
      ['disputed', false],
    ] as const) {
      const { service } = setup({ session: session({ ...countersigned, status }), records: [] });
      const end = lines(await service.exportSession('s-1')).at(-1);
      expect(end).toMatchObject({
        reason: 'closed',
        views_match: match,
        countersign: {
          c2s_count: 2,
          c2s_chain: chain(5).toString('base64'),
          s2c_count: 3,
          s2c_chain: chain(3).toString('base64'),
          signature: Buffer.alloc(64, 6).toString('base64'),
        },
      });
    }
  });

  it('leaves the end line out while the session is open, and the receipt out when none was sent', async () => {
    const open = setup({ session: session({ status: 'open', endedAt: undefined }), records: [] });
    expect(lines(await open.service.exportSession('s-1')).map((l) => l.kind)).toEqual(['header']);
    const lost = setup({
      session: session({ serverView: undefined, receiptSignature: undefined }),
      records: [],
    });
    expect(lines(await lost.service.exportSession('s-1')).at(-1)).toMatchObject({
      receipt: null,
      countersign: null,
    });
  });

  it('refuses an unknown session, a digest session, and a process without the key', async () => {
    await expect(setup(undefined).service.exportSession('s-x')).rejects.toBeInstanceOf(
      TranscriptNotFoundError,
    );
    const digest = setup({ session: session({ mode: 'digest' }), records: [] });
    await expect(digest.service.exportSession('s-1')).rejects.toBeInstanceOf(
      TranscriptNotExportableError,
    );
    const keyless = setup({ session: session(), records: [] });
    keyless.serverKey.load.mockImplementation(() => {
      throw new ServerKeyUnavailableError('/nowhere.pem', 'no such file');
    });
    await expect(keyless.service.exportSession('s-1')).rejects.toBeInstanceOf(
      ServerKeyUnavailableError,
    );
    expect(keyless.transcripts.loadSession).not.toHaveBeenCalled();
  });

  it('refuses a session whose records retention deleted, reading none', async () => {
    const purged = setup({ session: session({ recordsPurgedAt: T0 + 5000 }), records: [] });
    const refusal = purged.service.exportSession('s-1');
    await expect(refusal).rejects.toBeInstanceOf(TranscriptPurgedError);
    await expect(refusal).rejects.toMatchObject({
      code: 'transcript_purged',
      sessionId: 's-1',
      purgedAt: T0 + 5000,
      message: expect.stringContaining('can no longer be exported') as unknown,
    });
    expect(purged.transcripts.loadRecords).not.toHaveBeenCalled();
  });
});

/** `count` records alternating c2s, s2c, with key updates at the given positions. */
function longSession(count: number, keyUpdates: readonly number[]): StoredTranscriptRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    position: i,
    direction: i % 2 === 0 ? ('c2s' as const) : ('s2c' as const),
    chained: true,
    plaintext: Buffer.from(keyUpdates.includes(i) ? '{"type":"key_update"}' : `{"n":${i}}`),
  }));
}

async function take(lines: AsyncIterator<string>, count: number): Promise<string[]> {
  const taken: string[] = [];
  for (let i = 0; i < count; i++) {
    const next = await lines.next();
    if (next.done) break;
    taken.push(next.value);
  }
  return taken;
}

describe('TranscriptExportService.exportLines', () => {
  it('reads the records in keyset batches of EXPORT_BATCH, never the whole session at once', async () => {
    expect(EXPORT_BATCH).toBe(256);
    // c2s key_update as the last c2s record of batch 1, s2c's as the last record of batch 2.
    const { service, transcripts } = setup({
      session: session(),
      records: longSession(600, [254, 511]),
    });
    const out = lines(await service.exportSession('s-1'));
    expect(transcripts.load).not.toHaveBeenCalled();
    expect(transcripts.loadRecords.mock.calls).toEqual([
      ['s-1', 256, undefined],
      ['s-1', 256, 255],
      ['s-1', 256, 511],
    ]);
    expect(out.map((l) => l.kind)).toEqual(['header', ...Array<string>(600).fill('record'), 'end']);
    // `seq` goes on across batches, and restarts after a key_update in the previous batch.
    const seqAt = (position: number) => out[1 + position]!.seq;
    expect([seqAt(0), seqAt(252), seqAt(254), seqAt(256), seqAt(598)]).toEqual([
      1, 127, 128, 0, 171,
    ]);
    expect([seqAt(1), seqAt(257), seqAt(511), seqAt(513), seqAt(599)]).toEqual([
      0, 128, 255, 0, 43,
    ]);
    expect(out[1 + 300]).toMatchObject({ dir: 'c2s', text: '{"n":300}' });
  });

  it('stops after a batch that was not full, and reads one more when the last one was', async () => {
    const exact = setup({ session: session(), records: longSession(512, []) });
    expect(lines(await exact.service.exportSession('s-1'))).toHaveLength(514);
    expect(exact.transcripts.loadRecords.mock.calls.map((c) => c[2])).toEqual([
      undefined,
      255,
      511,
    ]);
    const none = setup({ session: session(), records: [] });
    expect(lines(await none.service.exportSession('s-1')).map((l) => l.kind)).toEqual([
      'header',
      'end',
    ]);
    expect(none.transcripts.loadRecords).toHaveBeenCalledTimes(1);
  });

  it('reads the next batch only when the lines of the previous one have been taken', async () => {
    const { service, transcripts } = setup({ session: session(), records: longSession(600, []) });
    const iterator = (await service.exportLines('s-1'))[Symbol.asyncIterator]();
    expect(transcripts.loadSession).toHaveBeenCalledWith('s-1');
    expect(transcripts.loadRecords).not.toHaveBeenCalled();
    expect(JSON.parse((await take(iterator, 1))[0]!)).toMatchObject({ kind: 'header' });
    await take(iterator, 256);
    expect(transcripts.loadRecords).toHaveBeenCalledTimes(1);
    await take(iterator, 1);
    expect(transcripts.loadRecords).toHaveBeenCalledTimes(2);
    const rest = await take(iterator, 1000);
    expect(rest).toHaveLength(600 - 257 + 1);
    expect(rest.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('refuses before the first line, and fails the iteration when the store fails midway', async () => {
    await expect(setup(undefined).service.exportLines('s-x')).rejects.toBeInstanceOf(
      TranscriptNotFoundError,
    );
    const { service, transcripts } = setup({ session: session(), records: longSession(600, []) });
    const lost = new Error('connection terminated');
    transcripts.loadRecords.mockImplementationOnce((_id: string, limit: number) =>
      Promise.resolve(longSession(600, []).slice(0, limit)),
    );
    transcripts.loadRecords.mockRejectedValueOnce(lost);
    const iterator = (await service.exportLines('s-1'))[Symbol.asyncIterator]();
    expect(await take(iterator, 257)).toHaveLength(257);
    await expect(iterator.next()).rejects.toBe(lost);
  });

  it('fails, rather than end a partial transcript as whole, when a purge ran meanwhile', async () => {
    const all = longSession(600, []);
    const { service, transcripts } = setup({ session: session(), records: all });
    // The first batch is read, then the purge commits: the rest is gone, the row says so.
    transcripts.loadRecords
      .mockImplementationOnce((_id: string, limit: number) => Promise.resolve(all.slice(0, limit)))
      .mockResolvedValue([]);
    const iterator = (await service.exportLines('s-1'))[Symbol.asyncIterator]();
    transcripts.loadSession.mockResolvedValue(session({ recordsPurgedAt: T0 + 9000 }));
    const out = await take(iterator, 257);
    expect(out.map((l) => (JSON.parse(l) as { kind: string }).kind)).toEqual([
      'header',
      ...Array<string>(256).fill('record'),
    ]);
    await expect(iterator.next()).rejects.toBeInstanceOf(TranscriptPurgedError);
  });
});

describe('TranscriptExportService.listSessions', () => {
  it('passes the page on, with the limit clamped to 1..200, and open sessions ending in null', async () => {
    const { service, transcripts } = setup(undefined);
    transcripts.listSessions.mockResolvedValue([
      {
        sessionId: 's-2',
        username: 'alice',
        gateway: 'gw-a',
        mode: 'full',
        status: 'open',
        startedAt: T0 + 5,
        endedAt: undefined,
      },
    ]);
    expect(
      await service.listSessions('alice', { after: { startedAt: T0 + 9, sessionId: 's-3' } }),
    ).toEqual([expect.objectContaining({ sessionId: 's-2', endedAt: null })]);
    expect(transcripts.listSessions).toHaveBeenLastCalledWith('alice', 50, {
      startedAt: T0 + 9,
      sessionId: 's-3',
    });
    await service.listSessions('alice', { limit: 10_000 });
    expect(transcripts.listSessions).toHaveBeenLastCalledWith('alice', 200, undefined);
    await service.listSessions('alice', { limit: -3 });
    expect(transcripts.listSessions).toHaveBeenLastCalledWith('alice', 1, undefined);
  });
});
