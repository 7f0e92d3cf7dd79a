/**
 * TranscriptRetentionScheduler with a mocked purge and Jest's fake timers: when it purges
 * (at start and then on its interval, only with a retention above 0), what it logs, and that
 * it stops. Timers are advanced by hand; nothing here waits for real time or measures it.
 */
import { Logger } from '@nestjs/common';

import { type SecureChatConfig } from '@securechat/core';

import {
  RETENTION_INTERVAL_MS,
  TranscriptRetentionScheduler,
} from './transcript-retention.scheduler';
import { type PurgeTotals, type TranscriptRetentionService } from './transcript-retention.service';

const totals: PurgeTotals & { before: number } = {
  before: Date.UTC(2026, 0, 1),
  sessions: 3,
  chunks: 12,
  bytes: 4096,
  withReceipt: 2,
  withoutReceipt: 1,
};

function setup(days: number | undefined) {
  const retention = {
    purgeExpired: jest.fn((_days: number, _options?: { stop?: () => boolean }) =>
      Promise.resolve(totals),
    ),
  };
  const scheduler = new TranscriptRetentionScheduler(
    { transcriptRetentionDays: days } as SecureChatConfig,
    retention as unknown as TranscriptRetentionService,
  );
  return { retention, scheduler };
}

/** Lets the promise callbacks of a run settle (fake timers leave microtasks alone). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

let logs: string[];
let errors: string[];

beforeEach(() => {
  jest.useFakeTimers();
  logs = [];
  errors = [];
  jest.spyOn(Logger.prototype, 'log').mockImplementation((message: unknown) => {
    logs.push(String(message));
  });
  jest.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => {
    errors.push(String(message));
  });
});

afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('TranscriptRetentionScheduler', () => {
  it.each([
    ['0, the default', 0],
    ['left out', undefined],
  ])('schedules nothing and purges nothing with a retention of %s', async (_case, days) => {
    const { retention, scheduler } = setup(days);
    scheduler.onApplicationBootstrap();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(10 * RETENTION_INTERVAL_MS);
    await scheduler.run();
    expect(retention.purgeExpired).not.toHaveBeenCalled();
    expect(logs).toEqual([]);
  });

  it('purges at start and then once per interval, with the configured days', async () => {
    const { retention, scheduler } = setup(30);
    scheduler.onApplicationBootstrap();
    expect(retention.purgeExpired).toHaveBeenCalledTimes(1);
    expect(retention.purgeExpired.mock.calls[0]![0]).toBe(30);
    await settle();
    jest.advanceTimersByTime(RETENTION_INTERVAL_MS);
    expect(retention.purgeExpired).toHaveBeenCalledTimes(2);
    await settle();
    jest.advanceTimersByTime(RETENTION_INTERVAL_MS);
    expect(retention.purgeExpired).toHaveBeenCalledTimes(3);
    await scheduler.beforeApplicationShutdown();
  });

  it('logs one line per run with its counts', async () => {
    const { scheduler } = setup(30);
    await scheduler.run();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toBe(
      'transcript retention (30 days): deleted the records of 3 sessions that ended before ' +
        '2026-01-01T00:00:00.000Z (12 chunks, 4096 bytes); 2 keep a receipt that verifies ' +
        'against the stored chain heads, 1 had none',
    );
  });

  it('runs one purge at a time: a run due while one is in flight joins it', async () => {
    const { retention, scheduler } = setup(30);
    let finish!: (value: typeof totals) => void;
    retention.purgeExpired.mockImplementationOnce(
      () => new Promise((resolve) => (finish = resolve)),
    );
    const first = scheduler.run();
    const second = scheduler.run();
    expect(retention.purgeExpired).toHaveBeenCalledTimes(1);
    finish(totals);
    await Promise.all([first, second]);
    await scheduler.run();
    expect(retention.purgeExpired).toHaveBeenCalledTimes(2);
  });

  it('logs a failed run by its kind only, and tries again on the next one', async () => {
    const { retention, scheduler } = setup(30);
    retention.purgeExpired.mockRejectedValueOnce(
      Object.assign(new Error('Failed query: delete … params: secret'), { code: '57014' }),
    );
    await expect(scheduler.run()).resolves.toBeUndefined();
    expect(errors).toEqual(['transcript retention run failed: Error 57014']);
    await scheduler.run();
    expect(logs).toHaveLength(1);
  });

  it('stops: clears its timer, asks the run in flight to stop, and waits for it', async () => {
    const { retention, scheduler } = setup(30);
    let finish!: (value: typeof totals) => void;
    retention.purgeExpired.mockImplementationOnce(
      () => new Promise((resolve) => (finish = resolve)),
    );
    scheduler.onApplicationBootstrap();
    const stop = retention.purgeExpired.mock.calls[0]![1]!.stop!;
    expect(stop()).toBe(false);
    let stopped = false;
    const shutdown = scheduler.beforeApplicationShutdown().then(() => (stopped = true));
    expect(stop()).toBe(true);
    await settle();
    expect(stopped).toBe(false);
    finish(totals);
    await shutdown;
    expect(jest.getTimerCount()).toBe(0);
    await scheduler.run();
    expect(retention.purgeExpired).toHaveBeenCalledTimes(1);
  });
});
