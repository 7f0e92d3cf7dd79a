import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  CONFIG,
  type SecureChatConfig,
  type TranscriptBatch,
  type TranscriptClose,
  type TranscriptOpen,
  type TranscriptRecord,
} from '@securechat/core';

import { RelayClient } from './service-clients';

const FLUSH_INTERVAL_MS = 50;
const MAX_BATCH_RECORDS = 500;
/** Records held while the relay is unreachable; beyond this the oldest are dropped and counted. */
const MAX_BUFFERED_RECORDS = 200_000;

/**
 * Ships every session's records to the relay's transcript store in batches (one relay call per
 * flush, not per record). In `digest` mode only session rows go: opens and closes carry the
 * chains and receipts. A failed flush is retried with the next one, in order.
 */
@Injectable()
export class TranscriptShipper implements OnModuleDestroy {
  readonly #logger = new Logger('TranscriptShipper');
  #opens: TranscriptOpen[] = [];
  #records: TranscriptRecord[] = [];
  #closes: TranscriptClose[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<boolean> | undefined;
  #dropped = 0;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    private readonly relay: RelayClient,
  ) {}

  get mode(): 'full' | 'digest' {
    return this.config.transcripts;
  }

  /** Records waiting to be shipped (for metrics and tests). */
  get backlog(): number {
    return this.#opens.length + this.#records.length + this.#closes.length;
  }

  open(open: TranscriptOpen): void {
    this.#opens.push(open);
    this.#schedule();
  }

  record(record: TranscriptRecord): void {
    if (this.mode === 'digest') return;
    if (this.#records.length >= MAX_BUFFERED_RECORDS) {
      this.#records.shift();
      if (this.#dropped++ % 1000 === 0) {
        this.#logger.error(`transcript store unreachable: ${this.#dropped} records dropped so far`);
      }
    }
    this.#records.push(record);
    if (this.#records.length >= MAX_BATCH_RECORDS) void this.flush();
    else this.#schedule();
  }

  close(close: TranscriptClose): void {
    this.#closes.push(close);
    this.#schedule();
  }

  /**
   * Ships everything buffered, one relay call at a time and in order; resolves once it is
   * stored, or once an attempt failed (the batch is kept, in front, and retried later).
   */
  flush(): Promise<boolean> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #drain(): Promise<boolean> {
    while (this.backlog > 0) {
      const records = this.#records.splice(0, MAX_BATCH_RECORDS);
      const batch: TranscriptBatch = {
        opens: this.#opens.splice(0),
        records,
        // A close travels only once every earlier record has gone, never ahead of them.
        closes: this.#records.length === 0 ? this.#closes.splice(0) : [],
      };
      try {
        await this.relay.transcriptAppend(batch);
      } catch (error) {
        // Nothing else is in flight, so putting the batch back in front keeps the order.
        this.#opens.unshift(...batch.opens);
        this.#records.unshift(...batch.records);
        this.#closes.unshift(...batch.closes);
        this.#logger.warn(`transcript batch not stored, will retry: ${(error as Error).message}`);
        this.#schedule();
        return false;
      }
    }
    return true;
  }

  /** Ships the rest before the process exits; gives up after three failed attempts. */
  async onModuleDestroy(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let failures = 0; this.backlog > 0 && failures < 3;) {
      if (!(await this.flush())) failures += 1;
    }
    if (this.#timer) clearTimeout(this.#timer);
    if (this.backlog > 0)
      this.#logger.error(`${this.backlog} transcript entries not stored at shutdown`);
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }
}
