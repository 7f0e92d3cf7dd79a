/**
 * Batching, chunking, ordering and retry of transcript shipping, against a fake relay whose calls
 * the test completes by hand (and which, like the real store, ignores a chunk it already has),
 * and jest's fake timers for the 50 ms flush interval.
 */
import { Logger } from '@nestjs/common';
import {
  type ChunkRecord,
  chunkRecordPayload,
  decodeChunk,
  encodeChunk,
  encodedRecordSize,
  type PlaintextChunkRecord,
  type SecureChatConfig,
  type TranscriptAppendResult,
  type TranscriptBatch,
  type TranscriptChunk,
  type TranscriptClose,
  type TranscriptOpen,
} from '@securechat/core';

import { type RelayClient } from './service-clients';
import { TranscriptShipper } from './transcript-shipper';

/** The shipper's bounds (transcript-shipper.ts), restated: the tests are about them. */
const MIB = 1024 * 1024;
const MAX_BATCH_BYTES = MIB;
const MAX_BUFFERED_BYTES = 64 * MIB;
/** Encoded size of the large records below: 16 of them make a chunk of exactly 1 MiB. */
const RECORD_BYTES = 64 * 1024;
const RECORDS_PER_CHUNK = MAX_BATCH_BYTES / RECORD_BYTES;

interface RelayCall {
  readonly batch: TranscriptBatch;
  settled: boolean;
  succeed(): void;
  fail(message?: string): void;
  /** The relay stored the batch but the answer was lost (a timeout): the gateway sees a failure. */
  failAfterStoring(message?: string): void;
}

const chunkKey = (chunk: TranscriptChunk) => `${chunk.sessionId}@${chunk.firstPosition}`;

/** A relay whose transcriptAppend calls stay pending until the test settles them. */
function manualRelay() {
  const calls: RelayCall[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  /** What the store accepted, in the order it accepted it. */
  const stored: TranscriptBatch[] = [];
  /** The store's chunks: like the relay's, one per sessionId + firstPosition, the first kept. */
  const chunks = new Map<string, TranscriptChunk>();
  const keep = (batch: TranscriptBatch) => {
    stored.push(batch);
    let recorded = 0;
    for (const chunk of batch.chunks) {
      if (chunks.has(chunkKey(chunk))) continue;
      chunks.set(chunkKey(chunk), chunk);
      recorded += decodeChunk(Buffer.from(chunk.records, 'base64')).length;
    }
    return recorded;
  };
  const transcriptAppend = jest.fn(
    (batch: TranscriptBatch) =>
      new Promise<TranscriptAppendResult>((resolve, reject) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const copy: TranscriptBatch = {
          opens: [...batch.opens],
          chunks: batch.chunks.map((chunk) => ({ ...chunk })),
          closes: [...batch.closes],
        };
        const settle = () => {
          if (call.settled) throw new Error('relay call settled twice');
          call.settled = true;
          inFlight -= 1;
        };
        const call: RelayCall = {
          batch: copy,
          settled: false,
          succeed: () => {
            settle();
            const recorded = keep(copy);
            resolve({ ok: true, opened: copy.opens.length, recorded, closed: copy.closes.length });
          },
          fail: (message = 'relay down') => {
            settle();
            reject(new Error(message));
          },
          failAfterStoring: (message = 'relay timed out') => {
            settle();
            keep(copy);
            reject(new Error(message));
          },
        };
        calls.push(call);
      }),
  );
  return {
    calls,
    stored,
    transcriptAppend,
    relay: { transcriptAppend } as unknown as RelayClient,
    /** Calls not answered yet, oldest first. */
    pending: () => calls.filter((call) => !call.settled),
    /** The session's records as the store holds them, by position. */
    transcriptOf: (sessionId: string) =>
      [...chunks.values()]
        .filter((chunk) => chunk.sessionId === sessionId)
        .sort((a, b) => a.firstPosition - b.firstPosition)
        .flatMap((chunk) => decodeBatch({ opens: [], chunks: [chunk], closes: [] })),
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

/** A relay that answers every call at once, rejecting until told otherwise. */
function failingRelay() {
  const transcriptAppend = jest.fn<Promise<TranscriptAppendResult>, [TranscriptBatch]>(() =>
    Promise.reject(new Error('relay down')),
  );
  return {
    transcriptAppend,
    relay: { transcriptAppend } as unknown as RelayClient,
    recover: () => {
      transcriptAppend.mockClear();
      transcriptAppend.mockResolvedValue({ ok: true, opened: 0, recorded: 0, closed: 0 });
    },
    batches: () => transcriptAppend.mock.calls.map(([batch]) => batch),
  };
}

function shipperWith(relay: RelayClient, transcripts: 'full' | 'digest' = 'full') {
  return new TranscriptShipper({ transcripts } as unknown as SecureChatConfig, relay);
}

const openOf = (sessionId: string): TranscriptOpen => ({
  sessionId,
  username: `user-${sessionId}`,
  gateway: 'gw-test',
  mode: 'full',
  h2: 'aDI=',
  startedAt: 1_700_000_000_000,
});

const closeOf = (sessionId: string): TranscriptClose => ({
  sessionId,
  endedAt: 1_700_000_001_000,
  status: 'agreed',
  serverView: { c2sCount: 1, c2sChain: 'Yw==', s2cCount: 1, s2cChain: 'cw==' },
});

/** A small record, its bytes and flags telling which session and position it is. */
const recordOf = (sessionId: string, position: number): PlaintextChunkRecord => ({
  direction: position % 2 === 0 ? 'c2s' : 's2c',
  chained: position % 3 !== 2,
  plaintext: Buffer.from(`{"session":"${sessionId}","record":${position}}`),
});

/** A record of `size` encoded bytes (RECORD_BYTES unless told), labelled like recordOf's. */
function bigRecordOf(
  sessionId: string,
  position: number,
  size = RECORD_BYTES,
): PlaintextChunkRecord {
  const plaintext = Buffer.alloc(size - encodedRecordSize(Buffer.alloc(0)), position & 0xff);
  plaintext.write(`${sessionId}#${position}#`);
  return { direction: position % 2 === 0 ? 'c2s' : 's2c', chained: true, plaintext };
}

type Shipped = [sessionId: string, position: number, record: ChunkRecord];

/** A batch's chunks back as (sessionId, position, record), in the batch's order. */
function decodeBatch(batch: TranscriptBatch): Shipped[] {
  return batch.chunks.flatMap((chunk) =>
    decodeChunk(Buffer.from(chunk.records, 'base64')).map((record, i): Shipped => [
      chunk.sessionId,
      chunk.firstPosition + i,
      record,
    ]),
  );
}

/** The small records `recordOf` makes, as decodeBatch would give them back. */
const shippedOf = (sessionId: string, positions: readonly number[]): Shipped[] =>
  positions.map((position) => [sessionId, position, recordOf(sessionId, position)]);

/** [sessionId, position] of every record in the batches, in order (for large records). */
const positionsOf = (...batches: TranscriptBatch[]) =>
  batches.flatMap(decodeBatch).map(([sessionId, position]) => [sessionId, position]);

/**
 * Where shipped records differ from the expected ones, as `session#position` lines ([] when
 * they are the same): toEqual would compare large plaintexts byte by byte, far too slowly.
 */
function differences(actual: Shipped[], expected: Shipped[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const [sessionId, position, record] = actual[i] ?? ['(none)', -1, undefined];
    const [wantSession, wantPosition, want] = expected[i] ?? ['(none)', -1, undefined];
    const same =
      sessionId === wantSession &&
      position === wantPosition &&
      record?.direction === want?.direction &&
      record?.chained === want?.chained &&
      !!record &&
      !!want &&
      chunkRecordPayload(record).equals(chunkRecordPayload(want));
    if (!same)
      lines.push(`${i}: ${sessionId}#${position}, expected ${wantSession}#${wantPosition}`);
  }
  return lines;
}

/** Large records that did not come back byte for byte as `bigRecordOf` made them. */
const corrupted = (batches: TranscriptBatch[], size = RECORD_BYTES) => {
  const shipped = batches.flatMap(decodeBatch);
  return differences(
    shipped,
    shipped.map(([sessionId, position]): Shipped => [
      sessionId,
      position,
      bigRecordOf(sessionId, position, size),
    ]),
  );
};

/** Each chunk of a batch as sessionId@firstPosition. */
const chunkHeads = (batch: TranscriptBatch) => batch.chunks.map(chunkKey);

/** Record bytes of one chunk (what the shipper counts against its bounds). */
const chunkBytes = (chunk: TranscriptChunk) => Buffer.from(chunk.records, 'base64').length;
const batchBytes = (batch: TranscriptBatch) =>
  batch.chunks.reduce((sum, chunk) => sum + chunkBytes(chunk), 0);

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const labelled = (sessionId: string, positions: readonly number[]) =>
  positions.map((position) => [sessionId, position]);

/** Lets pending promise callbacks run (fake timers do not fake promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Answers every call until the shipper has nothing left (or `rounds` run out). */
async function drainAll(
  fake: ReturnType<typeof manualRelay>,
  shipper: TranscriptShipper,
  rounds = 100,
): Promise<void> {
  for (let round = 0; round < rounds && (shipper.backlog > 0 || fake.pending().length); round++) {
    for (const call of fake.pending()) call.succeed();
    await settle();
    await jest.advanceTimersByTimeAsync(50);
  }
}

describe('TranscriptShipper', () => {
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;

  beforeEach(() => {
    jest.useFakeTimers();
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('reports its mode from the configuration', () => {
    expect(shipperWith(manualRelay().relay, 'full').mode).toBe('full');
    expect(shipperWith(manualRelay().relay, 'digest').mode).toBe('digest');
  });

  describe('batching', () => {
    it('ships everything buffered within 50 ms in one relay call, on the timer', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      shipper.record('s1', 1, recordOf('s1', 1));
      shipper.close(closeOf('s1'));
      expect(shipper.backlog).toBe(4);
      expect(shipper.backlogBytes).toBe(
        encodedRecordSize(recordOf('s1', 0).plaintext) +
          encodedRecordSize(recordOf('s1', 1).plaintext),
      );

      await jest.advanceTimersByTimeAsync(49);
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
      await jest.advanceTimersByTimeAsync(1);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch).toEqual({
        opens: [openOf('s1')],
        chunks: [
          {
            sessionId: 's1',
            firstPosition: 0,
            records: encodeChunk([recordOf('s1', 0), recordOf('s1', 1)]).toString('base64'),
          },
        ],
        closes: [closeOf('s1')],
      });
      expect(decodeBatch(fake.calls[0]!.batch)).toEqual(shippedOf('s1', [0, 1]));
      fake.calls[0]!.succeed();
      await settle();
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
      await jest.advanceTimersByTimeAsync(1000);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
    });

    // docs/PROTOCOL.md §10 item 25: a refused request goes as its 32-byte digest, and counts so.
    it('ships a record kept by digest in its place in the chunk, counting 37 bytes for it', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      const refused: ChunkRecord = { direction: 'c2s', chained: true, digest: Buffer.alloc(32, 9) };
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      shipper.record('s1', 1, refused);
      shipper.record('s1', 2, recordOf('s1', 2));
      expect(shipper.backlogBytes).toBe(
        encodedRecordSize(recordOf('s1', 0).plaintext) +
          37 +
          encodedRecordSize(recordOf('s1', 2).plaintext),
      );
      await jest.advanceTimersByTimeAsync(50);
      expect(decodeBatch(fake.calls[0]!.batch)).toEqual([
        ['s1', 0, recordOf('s1', 0)],
        ['s1', 1, refused],
        ['s1', 2, recordOf('s1', 2)],
      ]);
      fake.calls[0]!.succeed();
      await settle();
      expect(shipper.backlogBytes).toBe(0);
    });

    it('does not call the relay when there is nothing to ship', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      await expect(shipper.flush()).resolves.toBe(true);
      await jest.advanceTimersByTimeAsync(1000);
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
    });

    it('ships on flush() without waiting for the timer, and resolves once stored', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      let done: boolean | undefined;
      const flushed = shipper.flush().then((stored) => (done = stored));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(decodeBatch(fake.calls[0]!.batch)).toEqual(shippedOf('s1', [0]));
      await settle();
      expect(done).toBeUndefined();
      // Records in flight are still held (a failure puts them back), so they still count.
      expect(shipper.backlogBytes).toBe(encodedRecordSize(recordOf('s1', 0).plaintext));
      fake.calls[0]!.succeed();
      await flushed;
      expect(done).toBe(true);
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
    });

    it('packs interleaved records of several sessions into one chunk per session per flush', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      const next = { a: 0, b: 0, c: 0 };
      const ship = (...sessions: (keyof typeof next)[]) => {
        for (const sessionId of sessions) {
          const position = next[sessionId]++;
          shipper.record(sessionId, position, recordOf(sessionId, position));
        }
      };
      for (const sessionId of ['a', 'b', 'c']) shipper.open(openOf(sessionId));
      ship('a', 'b', 'a', 'c', 'a', 'b', 'c', 'c', 'a', 'b');
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      const first = fake.calls[0]!.batch;
      expect(chunkHeads(first)).toEqual(['a@0', 'b@0', 'c@0']);
      expect(decodeBatch(first)).toEqual([
        ...shippedOf('a', [0, 1, 2, 3]),
        ...shippedOf('b', [0, 1, 2]),
        ...shippedOf('c', [0, 1, 2]),
      ]);
      fake.calls[0]!.succeed();
      await settle();

      // The next flush: a new chunk per session, starting where the last one ended.
      ship('c', 'b', 'c', 'b', 'b');
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      const second = fake.calls[1]!.batch;
      expect(second.opens).toEqual([]);
      expect(chunkHeads(second)).toEqual(['c@3', 'b@3']);
      expect(decodeBatch(second)).toEqual([
        ...shippedOf('c', [3, 4]),
        ...shippedOf('b', [3, 4, 5]),
      ]);
      fake.calls[1]!.succeed();
      await settle();
      expect(fake.transcriptOf('a')).toEqual(shippedOf('a', range(0, 4)));
      expect(fake.transcriptOf('b')).toEqual(shippedOf('b', range(0, 6)));
      expect(fake.transcriptOf('c')).toEqual(shippedOf('c', range(0, 5)));
    });

    it('starts a new chunk where a session’s positions skip', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      for (const position of [0, 1, 2, 5, 6, 9]) {
        shipper.record('s1', position, recordOf('s1', position));
        if (position === 5) shipper.record('s2', 0, recordOf('s2', 0));
      }
      expect(shipper.backlog).toBe(7);
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      const batch = fake.calls[0]!.batch;
      expect(chunkHeads(batch)).toEqual(['s1@0', 's1@5', 's2@0', 's1@9']);
      expect(decodeBatch(batch)).toEqual([
        ...shippedOf('s1', [0, 1, 2]),
        ...shippedOf('s1', [5, 6]),
        ...shippedOf('s2', [0]),
        ...shippedOf('s1', [9]),
      ]);
    });

    it('seals a session’s chunk at 1 MiB of record bytes and ships it at once', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      const below = range(0, RECORDS_PER_CHUNK - 1).map((i) => bigRecordOf('s1', i));
      // One byte short of 1 MiB: the chunk stays open and nothing is sent.
      below.push(bigRecordOf('s1', RECORDS_PER_CHUNK - 1, RECORD_BYTES - 1));
      below.forEach((record, position) => shipper.record('s1', position, record));
      expect(shipper.backlogBytes).toBe(MAX_BATCH_BYTES - 1);
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
      // The next record reaches 1 MiB: sealed, and shipped without the timer.
      shipper.record('s1', RECORDS_PER_CHUNK, recordOf('s1', RECORDS_PER_CHUNK));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      const batch = fake.calls[0]!.batch;
      expect(batch.opens).toEqual([openOf('s1')]);
      expect(chunkHeads(batch)).toEqual(['s1@0']);
      expect(
        differences(decodeBatch(batch), [
          ...below.map((record, position): Shipped => ['s1', position, record]),
          ...shippedOf('s1', [RECORDS_PER_CHUNK]),
        ]),
      ).toEqual([]);

      // Everything after it ships too, in order, one sealed chunk per full MiB.
      const total = 5 * RECORDS_PER_CHUNK + 3;
      for (let i = RECORDS_PER_CHUNK + 1; i < total; i++)
        shipper.record('s1', i, bigRecordOf('s1', i));
      await drainAll(fake, shipper);
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
      const batches = fake.calls.map((call) => call.batch);
      expect(positionsOf(...batches)).toEqual(labelled('s1', range(0, total)));
      expect(corrupted(batches.slice(1))).toEqual([]);
      for (const chunk of batches.flatMap((b) => b.chunks)) {
        // A chunk is sealed once it reaches 1 MiB: it holds less than 1 MiB plus one record.
        expect(chunkBytes(chunk)).toBeLessThan(MAX_BATCH_BYTES + RECORD_BYTES);
      }
      expect(fake.maxInFlight).toBe(1);
    });

    it('fills a relay call with chunks up to ~1 MiB, and sends a chunk over 1 MiB alone', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('first'));
      void shipper.flush();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      // While that call is in flight: one chunk larger than 1 MiB on its own (one big record),
      // and eight sessions of 320 KiB each, interleaved.
      const huge = MAX_BATCH_BYTES + MAX_BATCH_BYTES / 2;
      shipper.record('big', 0, bigRecordOf('big', 0, huge));
      const sessions = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'];
      for (let position = 0; position < 5; position++) {
        for (const sessionId of sessions) {
          shipper.record(sessionId, position, bigRecordOf(sessionId, position));
        }
      }
      expect(shipper.backlogBytes).toBe(huge + 8 * 5 * RECORD_BYTES);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.succeed();
      await settle();
      await drainAll(fake, shipper);
      expect(shipper.backlog).toBe(0);

      const batches = fake.calls.slice(1).map((call) => call.batch);
      // The chunk over 1 MiB goes, alone.
      expect(chunkHeads(batches[0]!)).toEqual(['big@0']);
      expect(batchBytes(batches[0]!)).toBe(huge);
      for (const batch of batches) {
        expect(batch.chunks.length).toBeGreaterThanOrEqual(1);
        const beforeLast = batchBytes(batch) - chunkBytes(batch.chunks.at(-1)!);
        expect(beforeLast).toBeLessThan(MAX_BATCH_BYTES);
      }
      // Calls are filled up to the bound, not one chunk each: a call ended only where the next
      // chunk would have taken it past 1 MiB.
      batches.slice(0, -1).forEach((batch, i) => {
        const next = batches[i + 1]!.chunks[0]!;
        expect(batchBytes(batch) + chunkBytes(next)).toBeGreaterThan(MAX_BATCH_BYTES);
      });
      expect(batches.length).toBeGreaterThanOrEqual(3);
      expect(batches.flatMap(chunkHeads).sort()).toEqual(
        ['big@0', ...sessions.map((s) => `${s}@0`)].sort(),
      );
      for (const sessionId of sessions) {
        expect(fake.transcriptOf(sessionId).map(([, position]) => position)).toEqual(range(0, 5));
      }
      expect(corrupted(batches.slice(1))).toEqual([]);
      expect(corrupted(batches.slice(0, 1), huge)).toEqual([]);
    });

    it('ships what arrives during a flight with the next flush', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      void shipper.flush();
      shipper.record('s1', 0, recordOf('s1', 0));
      shipper.close(closeOf('s1'));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch).toEqual({ opens: [openOf('s1')], chunks: [], closes: [] });
      fake.calls[0]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(fake.calls[1]!.batch.opens).toEqual([]);
      expect(decodeBatch(fake.calls[1]!.batch)).toEqual(shippedOf('s1', [0]));
      expect(fake.calls[1]!.batch.closes).toEqual([closeOf('s1')]);
    });
  });

  describe('ordering', () => {
    it('ships a session’s open no later than its records, even when a chunk fills', () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('a'));
      shipper.open(openOf('b'));
      for (let i = 0; i < RECORDS_PER_CHUNK; i++) {
        shipper.record('b', i, bigRecordOf('b', i));
        shipper.record('a', i, bigRecordOf('a', i));
      }
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch.opens).toEqual([openOf('a'), openOf('b')]);
      expect(chunkHeads(fake.calls[0]!.batch)).toEqual(['b@0']);
      expect(positionsOf(fake.calls[0]!.batch)).toEqual(labelled('b', range(0, RECORDS_PER_CHUNK)));
    });

    it('holds a close back until every record buffered before it has been shipped', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      // 2.5 MiB: two full chunks and half of a third.
      const total = 2 * RECORDS_PER_CHUNK + RECORDS_PER_CHUNK / 2;
      for (let i = 0; i < total; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      shipper.close(closeOf('s1'));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch.closes).toEqual([]);
      fake.calls[0]!.succeed();
      await settle();
      // The second full chunk fills the next call; the close cannot come along yet.
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(chunkHeads(fake.calls[1]!.batch)).toEqual([`s1@${RECORDS_PER_CHUNK}`]);
      expect(fake.calls[1]!.batch.closes).toEqual([]);
      fake.calls[1]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(3);
      expect(positionsOf(fake.calls[2]!.batch)).toEqual(
        labelled('s1', range(2 * RECORDS_PER_CHUNK, total)),
      );
      expect(fake.calls[2]!.batch.closes).toEqual([closeOf('s1')]);
    });

    it('never ships a close in a batch while records remain buffered', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      shipper.open(openOf('s2'));
      const total = 4 * RECORDS_PER_CHUNK + 5;
      for (let i = 0; i < total; i++) {
        shipper.record('s1', i, bigRecordOf('s1', i));
        if (i < 3) shipper.record('s2', i, bigRecordOf('s2', i));
      }
      shipper.close(closeOf('s2'));
      shipper.close(closeOf('s1'));
      await drainAll(fake, shipper);
      expect(shipper.backlog).toBe(0);
      const closesAt = fake.calls.findIndex((call) => call.batch.closes.length > 0);
      expect(closesAt).toBe(fake.calls.length - 1);
      expect(fake.calls[closesAt]!.batch.closes).toEqual([closeOf('s2'), closeOf('s1')]);
      expect(fake.transcriptOf('s1').map(([, p]) => p)).toEqual(range(0, total));
      expect(fake.transcriptOf('s2').map(([, p]) => p)).toEqual(range(0, 3));
      expect(
        fake.calls.flatMap((call) => positionsOf(call.batch)).filter(([s]) => s === 's1'),
      ).toEqual(labelled('s1', range(0, total)));
    });

    // Regression: concurrent flushes once ran several relay calls at once and reordered batches.
    it('keeps at most one relay call in flight, so parallel flushes cannot reorder a session', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      const total = 3 * RECORDS_PER_CHUNK + 4;
      for (let i = 0; i < total; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      shipper.close(closeOf('s1'));
      void shipper.flush();
      void shipper.flush();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.succeed();
      await settle();
      expect(fake.maxInFlight).toBe(1);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      await drainAll(fake, shipper);
      expect(fake.maxInFlight).toBe(1);
      expect(fake.calls.flatMap((call) => positionsOf(call.batch))).toEqual(
        labelled('s1', range(0, total)),
      );
    });

    // Regression: a close once reached the store before earlier records of its session.
    it('never lets a close reach the store before its session’s earlier records, even across a failure', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      const total = 3 * RECORDS_PER_CHUNK + 4;
      for (let i = 0; i < total; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      shipper.close(closeOf('s1'));
      void shipper.flush();
      fake.calls[0]!.succeed();
      await settle();
      const [oldest, ...newer] = fake.pending();
      oldest!.fail();
      for (const call of newer) call.succeed();
      await settle();
      for (let round = 0; round < 20 && (shipper.backlog > 0 || fake.pending().length); round++) {
        await jest.advanceTimersByTimeAsync(50);
        for (const call of fake.pending()) call.succeed();
        await settle();
      }
      expect(shipper.backlog).toBe(0);
      const closeIndex = fake.stored.findIndex((batch) => batch.closes.length > 0);
      expect(closeIndex).toBe(fake.stored.length - 1);
      expect(positionsOf(...fake.stored.slice(0, closeIndex + 1))).toEqual(
        labelled('s1', range(0, total)),
      );
      expect(positionsOf(...fake.stored)).toEqual(labelled('s1', range(0, total)));
    });

    // Regression: failed queued flushes once put batches back in reverse order.
    it('keeps records in order when flushes queued behind a failing call fail too', async () => {
      const relay = failingRelay();
      const shipper = shipperWith(relay.relay);
      const total = 6 * RECORDS_PER_CHUNK + 7;
      for (let i = 0; i < total; i++) {
        shipper.record('s1', i, bigRecordOf('s1', i));
        // Let some failures land between records, so later chunks queue behind put-back ones.
        if (i % 5 === 0) await settle();
      }
      shipper.close(closeOf('s1'));
      await settle();
      expect(relay.transcriptAppend.mock.calls.length).toBeGreaterThan(1);
      expect(shipper.backlog).toBe(total + 1);
      relay.recover();
      for (let round = 0; round < 20 && shipper.backlog > 0; round++) await shipper.flush();
      const shipped = relay.batches();
      expect(positionsOf(...shipped)).toEqual(labelled('s1', range(0, total)));
      expect(corrupted(shipped)).toEqual([]);
      expect(shipped.flatMap((batch) => batch.closes)).toEqual([closeOf('s1')]);
      expect(shipped.at(-1)!.closes).toEqual([closeOf('s1')]);
    });
  });

  describe('digest mode', () => {
    it('ships opens and closes but no records', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay, 'digest');
      shipper.open(openOf('s1'));
      for (let i = 0; i < 3 * RECORDS_PER_CHUNK; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      expect(shipper.backlog).toBe(1);
      expect(shipper.backlogBytes).toBe(0);
      expect(fake.transcriptAppend).not.toHaveBeenCalled(); // 3 MiB of ignored records trigger nothing
      shipper.close(closeOf('s1'));
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch).toEqual({
        opens: [openOf('s1')],
        chunks: [],
        closes: [closeOf('s1')],
      });
    });
  });

  describe('failures', () => {
    it('keeps a failed batch and retries it first, in the same order, on the next flush', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('a'));
      shipper.record('a', 0, recordOf('a', 0));
      shipper.record('a', 1, recordOf('a', 1));
      shipper.close(closeOf('a'));
      const first = shipper.flush();
      // Arrives while the failing call is in flight: must come after the retried batch.
      shipper.open(openOf('b'));
      shipper.record('b', 0, recordOf('b', 0));
      shipper.close(closeOf('b'));
      fake.calls[0]!.fail('connection refused');
      await expect(first).resolves.toBe(false);
      expect(shipper.backlog).toBe(7);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('connection refused'));

      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      const retry = fake.calls[1]!.batch;
      expect(retry.opens).toEqual([openOf('a'), openOf('b')]);
      expect(retry.chunks[0]).toEqual(fake.calls[0]!.batch.chunks[0]);
      expect(chunkHeads(retry)).toEqual(['a@0', 'b@0']);
      expect(decodeBatch(retry)).toEqual([...shippedOf('a', [0, 1]), ...shippedOf('b', [0])]);
      expect(retry.closes).toEqual([closeOf('a'), closeOf('b')]);
      fake.calls[1]!.succeed();
      await settle();
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
    });

    it('retries a failed chunk byte for byte, never merged with records that arrived meanwhile', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      for (const position of [0, 1, 2]) shipper.record('s1', position, recordOf('s1', position));
      void shipper.flush();
      const failed = fake.calls[0]!.batch.chunks;
      expect(failed.map(chunkKey)).toEqual(['s1@0']);
      // The session goes on while the call fails, twice.
      shipper.record('s1', 3, recordOf('s1', 3));
      fake.calls[0]!.fail();
      await settle();
      shipper.record('s1', 4, recordOf('s1', 4));
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(fake.calls[1]!.batch.chunks[0]).toEqual(failed[0]);
      expect(chunkHeads(fake.calls[1]!.batch)).toEqual(['s1@0', 's1@3']);
      const secondTry = fake.calls[1]!.batch.chunks;
      fake.calls[1]!.fail();
      await settle();
      shipper.record('s1', 5, recordOf('s1', 5));
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(3);
      const third = fake.calls[2]!.batch;
      expect(third.chunks.slice(0, 2)).toEqual(secondTry);
      expect(third.chunks[0]!.records).toBe(failed[0]!.records);
      expect(chunkHeads(third)).toEqual(['s1@0', 's1@3', 's1@5']);
      expect(decodeBatch(third)).toEqual(shippedOf('s1', range(0, 6)));
      fake.calls[2]!.succeed();
      await settle();
      expect(shipper.backlog).toBe(0);
    });

    it('loses and duplicates nothing when the relay stored a batch whose answer was lost', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 4; i++) shipper.record('s1', i, recordOf('s1', i));
      await jest.advanceTimersByTimeAsync(50);
      for (let i = 4; i < 6; i++) shipper.record('s1', i, recordOf('s1', i));
      fake.calls[0]!.failAfterStoring();
      await settle();
      shipper.record('s1', 6, recordOf('s1', 6));
      shipper.close(closeOf('s1'));
      await drainAll(fake, shipper);
      expect(shipper.backlog).toBe(0);
      // The retry carried the stored chunk as it was, so the store kept it once.
      expect(fake.calls[1]!.batch.chunks[0]).toEqual(fake.calls[0]!.batch.chunks[0]);
      expect(fake.transcriptOf('s1')).toEqual(shippedOf('s1', range(0, 7)));
    });

    it('retries on the timer by itself after a failure, and keeps retrying', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      await jest.advanceTimersByTimeAsync(50);
      fake.calls[0]!.fail();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      fake.calls[1]!.fail();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(3);
      expect(fake.calls[2]!.batch.opens).toEqual([openOf('s1')]);
      expect(fake.calls[2]!.batch.chunks).toEqual(fake.calls[0]!.batch.chunks);
      fake.calls[2]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(500);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(3);
      expect(shipper.backlog).toBe(0);
    });

    it('puts a failed full chunk back in front of the records that arrived meanwhile', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      for (let i = 0; i < RECORDS_PER_CHUNK; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      const more = RECORDS_PER_CHUNK + 6;
      for (let i = RECORDS_PER_CHUNK; i < more; i++) shipper.record('s1', i, bigRecordOf('s1', i));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.fail();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.calls[1]!.batch.chunks).toEqual(fake.calls[0]!.batch.chunks);
      expect(positionsOf(fake.calls[1]!.batch)).toEqual(
        labelled('s1', range(0, RECORDS_PER_CHUNK)),
      );
      fake.calls[1]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(positionsOf(fake.calls[2]!.batch)).toEqual(
        labelled('s1', range(RECORDS_PER_CHUNK, more)),
      );
      expect(corrupted(fake.calls.map((call) => call.batch))).toEqual([]);
    });

    it('drops new records past 64 MiB buffered, counts them, and says so every 1000', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      // A size that does not divide 1 MiB or 64 MiB: the bound is hit in the middle of a chunk.
      const size = 90_000;
      const accepted = Math.floor(MAX_BUFFERED_BYTES / size);
      // The first chunk goes at once and stays in flight (the relay does not answer); it still
      // counts against the bound, as everything after it does.
      for (let i = 0; i < accepted; i++) shipper.record('s1', i, bigRecordOf('s1', i, size));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(shipper.backlog).toBe(accepted);
      expect(shipper.backlogBytes).toBe(accepted * size);
      expect(error).not.toHaveBeenCalled();

      shipper.record('s1', accepted, bigRecordOf('s1', accepted, size));
      expect(shipper.backlog).toBe(accepted);
      expect(shipper.backlogBytes).toBe(accepted * size);
      expect(error).toHaveBeenCalledTimes(1);
      expect(error).toHaveBeenCalledWith(expect.stringContaining(' 1 records dropped'));
      // The bound is in bytes: a record that fits the room left is kept. It follows a dropped
      // one, so it starts a chunk of its own (its position is not the next of the open chunk).
      const room = MAX_BUFFERED_BYTES - accepted * size;
      const fits = accepted + 1;
      shipper.record('s1', fits, bigRecordOf('s1', fits, room));
      expect(shipper.backlog).toBe(accepted + 1);
      expect(shipper.backlogBytes).toBe(MAX_BUFFERED_BYTES);
      // Now even the smallest record is dropped; the log repeats once per 1000 drops.
      const tiny: ChunkRecord = { direction: 'c2s', chained: false, plaintext: Buffer.alloc(0) };
      for (let i = fits + 1; i < fits + 1000; i++) shipper.record('s1', i, tiny);
      expect(error).toHaveBeenCalledTimes(1);
      shipper.record('s1', fits + 1000, tiny);
      expect(error).toHaveBeenCalledTimes(2);
      expect(error).toHaveBeenLastCalledWith(expect.stringContaining(' 1001 records dropped'));
      expect(shipper.backlog).toBe(accepted + 1);
      expect(shipper.backlogBytes).toBe(MAX_BUFFERED_BYTES);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);

      // The relay is back: room again, and the next record is kept, in a chunk of its own.
      fake.calls[0]!.succeed();
      await settle();
      const freed = batchBytes(fake.calls[0]!.batch);
      expect(shipper.backlogBytes).toBe(MAX_BUFFERED_BYTES - freed);
      const resumed = fits + 1001;
      shipper.record('s1', resumed, recordOf('s1', resumed));
      expect(shipper.backlog).toBe(accepted + 2 - decodeBatch(fake.calls[0]!.batch).length);
      await drainAll(fake, shipper, 200);
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
      const stored = fake.transcriptOf('s1');
      expect(stored.map(([, position]) => position)).toEqual([
        ...range(0, accepted),
        fits,
        resumed,
      ]);
      expect(stored.at(-1)).toEqual(['s1', resumed, recordOf('s1', resumed)]);
      const heads = fake.calls.flatMap((call) => chunkHeads(call.batch));
      expect(heads).toEqual(expect.arrayContaining([`s1@${fits}`, `s1@${resumed}`]));
      expect(corrupted(fake.calls.map((call) => call.batch).slice(0, 1), size)).toEqual([]);
      expect(error).toHaveBeenCalledTimes(2);
    });
  });

  describe('onModuleDestroy', () => {
    it('flushes at once without waiting for the timer', async () => {
      const relay = {
        transcriptAppend: jest.fn<Promise<TranscriptAppendResult>, [TranscriptBatch]>(() =>
          Promise.resolve({ ok: true, opened: 1, recorded: 1, closed: 1 }),
        ),
      };
      const shipper = shipperWith(relay as unknown as RelayClient);
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      shipper.close(closeOf('s1'));
      await shipper.onModuleDestroy();
      expect(relay.transcriptAppend).toHaveBeenCalledTimes(1);
      const batch = relay.transcriptAppend.mock.calls[0]![0];
      expect(batch.opens).toEqual([openOf('s1')]);
      expect(decodeBatch(batch)).toEqual(shippedOf('s1', [0]));
      expect(batch.closes).toEqual([closeOf('s1')]);
      expect(shipper.backlog).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('waits for a flush in flight, then ships the rest', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      void shipper.flush();
      shipper.record('s1', 0, recordOf('s1', 0));
      shipper.close(closeOf('s1'));
      const destroyed = shipper.onModuleDestroy();
      await settle();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.succeed();
      await settle();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(decodeBatch(fake.calls[1]!.batch)).toEqual(shippedOf('s1', [0]));
      expect(fake.calls[1]!.batch.closes).toEqual([closeOf('s1')]);
      fake.calls[1]!.succeed();
      await destroyed;
      expect(shipper.backlog).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('gives up after three failed attempts without throwing', async () => {
      const relay = failingRelay();
      const shipper = shipperWith(relay.relay);
      shipper.open(openOf('s1'));
      shipper.record('s1', 0, recordOf('s1', 0));
      await expect(shipper.onModuleDestroy()).resolves.toBeUndefined();
      expect(relay.transcriptAppend).toHaveBeenCalledTimes(3);
      // The same chunk each time.
      const [a, b, c] = relay.batches();
      expect(b!.chunks).toEqual(a!.chunks);
      expect(c!.chunks).toEqual(a!.chunks);
      expect(shipper.backlog).toBe(2);
      expect(error).toHaveBeenCalledWith(
        expect.stringContaining('2 transcript entries not stored'),
      );
      expect(jest.getTimerCount()).toBe(0);
    });

    // Regression: shutdown once stopped after three batches even when all of them succeeded.
    it('ships everything at shutdown when the relay is healthy, however many batches it takes', async () => {
      const relay = failingRelay();
      const shipper = shipperWith(relay.relay);
      // One record at a time with the failing call settled in between, so one call is in flight
      // at a time and the buffer stays in order.
      const total = 8 * RECORDS_PER_CHUNK + 3;
      for (let i = 0; i < total; i++) {
        shipper.record('s1', i, bigRecordOf('s1', i));
        await settle();
      }
      shipper.close(closeOf('s1'));
      expect(shipper.backlog).toBe(total + 1);
      relay.recover();
      await shipper.onModuleDestroy();
      const shipped = relay.batches();
      expect(shipped.length).toBeGreaterThan(3);
      expect(positionsOf(...shipped)).toEqual(labelled('s1', range(0, total)));
      expect(corrupted(shipped)).toEqual([]);
      expect(shipped.flatMap((batch) => batch.closes)).toEqual([closeOf('s1')]);
      expect(shipper.backlog).toBe(0);
      expect(shipper.backlogBytes).toBe(0);
    });
  });
});
