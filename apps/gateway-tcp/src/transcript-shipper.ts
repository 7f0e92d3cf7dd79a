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
  #flushing: Promise<void> | undefined;
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

  /** Sends what is buffered; resolves once it is stored (or the attempt failed and was kept). */
  async flush(): Promise<void> {
    if (this.#flushing) await this.#flushing;
    if (this.backlog === 0) return;
    const batch: TranscriptBatch = {
      opens: this.#opens.splice(0),
      records: this.#records.splice(0, MAX_BATCH_RECORDS),
      closes: this.#records.length === 0 ? this.#closes.splice(0) : [],
    };
    this.#flushing = this.relay.transcriptAppend(batch).then(
      () => undefined,
      (error: unknown) => {
        // Put the batch back in front, in order, and try again on the next flush.
        this.#opens.unshift(...batch.opens);
        this.#records.unshift(...batch.records);
        this.#closes.unshift(...batch.closes);
        this.#logger.warn(`transcript batch not stored, will retry: ${(error as Error).message}`);
        this.#schedule();
      },
    );
    await this.#flushing;
    this.#flushing = undefined;
    if (this.backlog > 0) this.#schedule();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    for (let attempt = 0; attempt < 3 && this.backlog > 0; attempt++) await this.flush();
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
