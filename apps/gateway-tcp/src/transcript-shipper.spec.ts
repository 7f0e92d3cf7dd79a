/**
 * Batching, ordering and retry of transcript shipping, against a fake relay whose calls the test
 * completes by hand, and jest's fake timers for the 50 ms flush interval.
 */
import { Logger } from '@nestjs/common';
import {
  type SecureChatConfig,
  type TranscriptAppendResult,
  type TranscriptBatch,
  type TranscriptClose,
  type TranscriptOpen,
  type TranscriptRecord,
} from '@securechat/core';

import { type RelayClient } from './service-clients';
import { TranscriptShipper } from './transcript-shipper';

interface RelayCall {
  readonly batch: TranscriptBatch;
  settled: boolean;
  succeed(): void;
  fail(message?: string): void;
}

/** A relay whose transcriptAppend calls stay pending until the test settles them. */
function manualRelay() {
  const calls: RelayCall[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  /** What the store holds, in the order the relay accepted it. */
  const stored: TranscriptBatch[] = [];
  const transcriptAppend = jest.fn(
    (batch: TranscriptBatch) =>
      new Promise<TranscriptAppendResult>((resolve, reject) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const copy: TranscriptBatch = {
          opens: [...batch.opens],
          records: [...batch.records],
          closes: [...batch.closes],
        };
        const call: RelayCall = {
          batch: copy,
          settled: false,
          succeed: () => {
            call.settled = true;
            inFlight -= 1;
            stored.push(copy);
            resolve({
              ok: true,
              opened: copy.opens.length,
              recorded: copy.records.length,
              closed: copy.closes.length,
            });
          },
          fail: (message = 'relay down') => {
            call.settled = true;
            inFlight -= 1;
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
    get maxInFlight() {
      return maxInFlight;
    },
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

const recordOf = (sessionId: string, position: number): TranscriptRecord => ({
  sessionId,
  position,
  direction: position % 2 === 0 ? 'c2s' : 's2c',
  chained: true,
  plaintext: Buffer.from(`record ${position}`).toString('base64'),
});

const closeOf = (sessionId: string): TranscriptClose => ({
  sessionId,
  endedAt: 1_700_000_001_000,
  status: 'agreed',
  serverView: { c2sCount: 1, c2sChain: 'Yw==', s2cCount: 1, s2cChain: 'cw==' },
});

const positions = (batch: TranscriptBatch) => batch.records.map((r) => r.position);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Lets pending promise callbacks run (fake timers do not fake promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
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
      shipper.record(recordOf('s1', 0));
      shipper.record(recordOf('s1', 1));
      shipper.close(closeOf('s1'));
      expect(shipper.backlog).toBe(4);

      await jest.advanceTimersByTimeAsync(49);
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
      await jest.advanceTimersByTimeAsync(1);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch).toEqual({
        opens: [openOf('s1')],
        records: [recordOf('s1', 0), recordOf('s1', 1)],
        closes: [closeOf('s1')],
      });
      expect(shipper.backlog).toBe(0);
      fake.calls[0]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(1000);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
    });

    it('does not call the relay when there is nothing to ship', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      await shipper.flush();
      await jest.advanceTimersByTimeAsync(1000);
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
    });

    it('ships on flush() without waiting for the timer, and resolves once stored', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      shipper.record(recordOf('s1', 0));
      let done = false;
      const flushed = shipper.flush().then(() => (done = true));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      await settle();
      expect(done).toBe(false);
      fake.calls[0]!.succeed();
      await flushed;
      expect(done).toBe(true);
      expect(shipper.backlog).toBe(0);
    });

    it('caps a batch at 500 records and flushes as soon as 500 are buffered', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 499; i++) shipper.record(recordOf('s1', i));
      expect(fake.transcriptAppend).not.toHaveBeenCalled();
      shipper.record(recordOf('s1', 499));
      // The 500th record ships at once, without the timer.
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(positions(fake.calls[0]!.batch)).toEqual(range(0, 500));
      expect(fake.calls[0]!.batch.opens).toEqual([openOf('s1')]);

      // Everything after it ships too, in order, never more than 500 records in one call.
      for (let i = 500; i < 1700; i++) shipper.record(recordOf('s1', i));
      for (let round = 0; round < 10 && (shipper.backlog > 0 || fake.pending().length); round++) {
        for (const call of fake.pending()) call.succeed();
        await settle();
        await jest.advanceTimersByTimeAsync(50);
      }
      expect(shipper.backlog).toBe(0);
      expect(fake.calls.flatMap((call) => positions(call.batch))).toEqual(range(0, 1700));
      for (const call of fake.calls) expect(call.batch.records.length).toBeLessThanOrEqual(500);
      expect(fake.calls.length).toBeGreaterThanOrEqual(4);
    });

    it('ships what arrives during a flight with the next flush', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      void shipper.flush();
      shipper.record(recordOf('s1', 0));
      shipper.close(closeOf('s1'));
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(fake.calls[1]!.batch).toEqual({
        opens: [],
        records: [recordOf('s1', 0)],
        closes: [closeOf('s1')],
      });
    });
  });

  describe('ordering', () => {
    it('ships a session’s open no later than its records, even when records fill a batch', () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('a'));
      shipper.open(openOf('b'));
      for (let i = 0; i < 500; i++) shipper.record(recordOf(i % 2 ? 'a' : 'b', i));
      expect(fake.calls[0]!.batch.opens).toEqual([openOf('a'), openOf('b')]);
      expect(fake.calls[0]!.batch.records).toHaveLength(500);
    });

    it('holds a close back until every record buffered before it has been shipped', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 700; i++) shipper.record(recordOf('s1', i));
      shipper.close(closeOf('s1'));
      // The first 500 went at once; the close waits for the other 200.
      expect(fake.calls[0]!.batch.closes).toEqual([]);
      fake.calls[0]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(positions(fake.calls[1]!.batch)).toEqual(range(500, 700));
      expect(fake.calls[1]!.batch.closes).toEqual([closeOf('s1')]);
    });

    it('never ships a close in a batch while records remain buffered', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 1000; i++) shipper.record(recordOf('s1', i));
      shipper.close(closeOf('s1'));
      for (let round = 0; round < 10 && (shipper.backlog > 0 || fake.pending().length); round++) {
        for (const call of fake.pending()) call.succeed();
        await settle();
        await jest.advanceTimersByTimeAsync(50);
      }
      expect(shipper.backlog).toBe(0);
      const closesAt = fake.calls.findIndex((call) => call.batch.closes.length > 0);
      expect(closesAt).toBe(fake.calls.length - 1);
      expect(fake.calls.flatMap((call) => positions(call.batch))).toEqual(range(0, 1000));
    });

    // Regression: concurrent flushes once ran several relay calls at once and reordered batches.
    it('keeps at most one relay call in flight, so parallel flushes cannot reorder a session', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 1200; i++) shipper.record(recordOf('s1', i));
      shipper.close(closeOf('s1'));
      void shipper.flush();
      fake.calls[0]!.succeed();
      await settle();
      expect(fake.maxInFlight).toBe(1);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
    });

    // Regression: a close once reached the store before earlier records of its session.
    it('never lets a close reach the store before its session’s earlier records, even across a failure', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      for (let i = 0; i < 1200; i++) shipper.record(recordOf('s1', i));
      shipper.close(closeOf('s1'));
      void shipper.flush();
      fake.calls[0]!.succeed();
      await settle();
      const [oldest, ...newer] = fake.pending();
      oldest!.fail();
      for (const call of newer) call.succeed();
      await settle();
      for (let round = 0; round < 10 && (shipper.backlog > 0 || fake.pending().length); round++) {
        await jest.advanceTimersByTimeAsync(50);
        for (const call of fake.pending()) call.succeed();
        await settle();
      }
      expect(shipper.backlog).toBe(0);
      const closeIndex = fake.stored.findIndex((batch) => batch.closes.length > 0);
      expect(fake.stored.slice(0, closeIndex + 1).flatMap(positions)).toEqual(range(0, 1200));
      expect(fake.stored.flatMap(positions)).toEqual(range(0, 1200));
    });

    // Regression: failed queued flushes once put batches back in reverse order.
    it('keeps records in order when flushes queued behind a failing call fail too', async () => {
      const relay = {
        transcriptAppend: jest.fn<Promise<TranscriptAppendResult>, [TranscriptBatch]>(() =>
          Promise.reject(new Error('relay down')),
        ),
      };
      const shipper = shipperWith(relay as unknown as RelayClient);
      for (let i = 0; i < 2000; i++) shipper.record(recordOf('s1', i));
      shipper.close(closeOf('s1'));
      await settle();
      relay.transcriptAppend.mockClear();
      relay.transcriptAppend.mockResolvedValue({ ok: true, opened: 0, recorded: 0, closed: 0 });
      for (let round = 0; round < 10 && shipper.backlog > 0; round++) await shipper.flush();
      const shipped = relay.transcriptAppend.mock.calls.map(([batch]) => batch);
      expect(shipped.flatMap(positions)).toEqual(range(0, 2000));
      expect(shipped.at(-1)!.closes).toEqual([closeOf('s1')]);
    });
  });

  describe('digest mode', () => {
    it('ships opens and closes but no records', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay, 'digest');
      shipper.open(openOf('s1'));
      for (let i = 0; i < 600; i++) shipper.record(recordOf('s1', i));
      expect(shipper.backlog).toBe(1);
      expect(fake.transcriptAppend).not.toHaveBeenCalled(); // 600 ignored records trigger nothing
      shipper.close(closeOf('s1'));
      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(fake.calls[0]!.batch).toEqual({
        opens: [openOf('s1')],
        records: [],
        closes: [closeOf('s1')],
      });
    });
  });

  describe('failures', () => {
    it('keeps a failed batch and retries it first, in the same order, on the next flush', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('a'));
      shipper.record(recordOf('a', 0));
      shipper.record(recordOf('a', 1));
      shipper.close(closeOf('a'));
      const first = shipper.flush();
      // Arrives while the failing call is in flight: must come after the retried batch.
      shipper.open(openOf('b'));
      shipper.record(recordOf('b', 0));
      shipper.close(closeOf('b'));
      fake.calls[0]!.fail('connection refused');
      await first;
      expect(shipper.backlog).toBe(7);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('connection refused'));

      await jest.advanceTimersByTimeAsync(50);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(fake.calls[1]!.batch).toEqual({
        opens: [openOf('a'), openOf('b')],
        records: [recordOf('a', 0), recordOf('a', 1), recordOf('b', 0)],
        closes: [closeOf('a'), closeOf('b')],
      });
      fake.calls[1]!.succeed();
      await settle();
      expect(shipper.backlog).toBe(0);
    });

    it('retries on the timer by itself after a failure, and keeps retrying', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
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
      fake.calls[2]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(500);
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(3);
      expect(shipper.backlog).toBe(0);
    });

    it('puts a failed full batch back in front of the records that arrived meanwhile', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      for (let i = 0; i < 500; i++) shipper.record(recordOf('s1', i));
      for (let i = 500; i < 600; i++) shipper.record(recordOf('s1', i));
      fake.calls[0]!.fail();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(positions(fake.calls[1]!.batch)).toEqual(range(0, 500));
      fake.calls[1]!.succeed();
      await settle();
      await jest.advanceTimersByTimeAsync(50);
      expect(positions(fake.calls[2]!.batch)).toEqual(range(500, 600));
    });

    it('drops the oldest records beyond 200000 buffered, and says so', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      // Records 0..499 are in flight (the relay does not answer); 500..200499 fill the buffer.
      const base = recordOf('s1', 0);
      for (let i = 0; i < 200_500; i++) shipper.record({ ...base, position: i });
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(shipper.backlog).toBe(200_000);
      expect(error).not.toHaveBeenCalled();
      shipper.record(recordOf('s1', 200_500));
      expect(shipper.backlog).toBe(200_000);
      expect(error).toHaveBeenCalledTimes(1);
      expect(error).toHaveBeenCalledWith(expect.stringContaining('1 records dropped'));
      fake.calls[0]!.succeed();
      await settle();
      // Record 500, the oldest buffered, is gone; the next batch starts at 501.
      expect(positions(fake.calls[1]!.batch).slice(0, 3)).toEqual([501, 502, 503]);
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
      shipper.record(recordOf('s1', 0));
      shipper.close(closeOf('s1'));
      await shipper.onModuleDestroy();
      expect(relay.transcriptAppend).toHaveBeenCalledTimes(1);
      expect(relay.transcriptAppend.mock.calls[0]![0]).toEqual({
        opens: [openOf('s1')],
        records: [recordOf('s1', 0)],
        closes: [closeOf('s1')],
      });
      expect(shipper.backlog).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('waits for a flush in flight, then ships the rest', async () => {
      const fake = manualRelay();
      const shipper = shipperWith(fake.relay);
      shipper.open(openOf('s1'));
      void shipper.flush();
      shipper.close(closeOf('s1'));
      const destroyed = shipper.onModuleDestroy();
      await settle();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(1);
      fake.calls[0]!.succeed();
      await settle();
      expect(fake.transcriptAppend).toHaveBeenCalledTimes(2);
      expect(fake.calls[1]!.batch.closes).toEqual([closeOf('s1')]);
      fake.calls[1]!.succeed();
      await destroyed;
      expect(shipper.backlog).toBe(0);
    });

    it('gives up after three failed attempts without throwing', async () => {
      const relay = {
        transcriptAppend: jest.fn(() => Promise.reject(new Error('relay down'))),
      };
      const shipper = shipperWith(relay as unknown as RelayClient);
      shipper.open(openOf('s1'));
      await expect(shipper.onModuleDestroy()).resolves.toBeUndefined();
      expect(relay.transcriptAppend).toHaveBeenCalledTimes(3);
      expect(shipper.backlog).toBe(1);
    });

    // Regression: shutdown once stopped after three batches even when all of them succeeded.
    it('ships everything at shutdown when the relay is healthy, however many batches it takes', async () => {
      const relay = {
        transcriptAppend: jest.fn<Promise<TranscriptAppendResult>, [TranscriptBatch]>(() =>
          Promise.reject(new Error('relay down')),
        ),
      };
      const shipper = shipperWith(relay as unknown as RelayClient);
      // One record at a time with the failing call settled in between, so one call is in flight
      // at a time and the buffer stays in order.
      for (let i = 0; i < 2000; i++) {
        shipper.record(recordOf('s1', i));
        await settle();
      }
      shipper.close(closeOf('s1'));
      expect(shipper.backlog).toBe(2001);
      relay.transcriptAppend.mockClear();
      relay.transcriptAppend.mockResolvedValue({ ok: true, opened: 0, recorded: 0, closed: 0 });
      await shipper.onModuleDestroy();
      const shipped = relay.transcriptAppend.mock.calls.map(([batch]) => batch);
      expect(shipped.flatMap(positions)).toEqual(range(0, 2000));
      expect(shipped.flatMap((batch) => batch.closes)).toEqual([closeOf('s1')]);
      expect(shipper.backlog).toBe(0);
    });
  });
});
