import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

import { describeError } from './relay-failure.error';
import { TranscriptRetentionService } from './transcript-retention.service';

/** How often the relay purges, once at start and then at this interval. */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The relay's periodic transcript purge (SECURECHAT_TRANSCRIPT_RETENTION_DAYS > 0; 0, the
 * default, keeps every record and schedules nothing): once at start and then hourly, the
 * records of sessions that ended more than that many days ago are deleted, their rows kept
 * (TranscriptRetentionService). Every relay instance runs it; their purges take disjoint
 * sessions and a repeated delete deletes nothing, so running several is safe. Each run logs
 * one line with its counts; a failed run is logged and the next one tries again.
 */
@Injectable()
export class TranscriptRetentionScheduler
  implements OnApplicationBootstrap, BeforeApplicationShutdown
{
  readonly #logger = new Logger('TranscriptRetention');
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopping = false;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    private readonly retention: TranscriptRetentionService,
  ) {}

  /** The setting; 0 (also when a test's config leaves it out) keeps everything. */
  get retentionDays(): number {
    return this.config.transcriptRetentionDays ?? 0;
  }

  onApplicationBootstrap(): void {
    if (!(this.retentionDays > 0)) return;
    // In the background: a first purge of a large backlog must not hold up the start.
    void this.run();
    this.#timer = setInterval(() => void this.run(), RETENTION_INTERVAL_MS);
    this.#timer.unref();
  }

  /**
   * One purge now, unless retention is off or the relay is stopping; a call while a run is in
   * flight joins it. Never rejects: a failure is logged.
   */
  run(): Promise<void> {
    const days = this.retentionDays;
    if (!(days > 0) || this.#stopping) return Promise.resolve();
    this.#running ??= this.#purge(days).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    // The run in flight stops after its current batch (one transaction, committed or not).
    await this.#running;
  }

  async #purge(days: number): Promise<void> {
    try {
      const r = await this.retention.purgeExpired(days, { stop: () => this.#stopping });
      this.#logger.log(
        `transcript retention (${days} days): deleted the records of ${r.sessions} sessions ` +
          `that ended before ${new Date(r.before).toISOString()} (${r.chunks} chunks, ` +
          `${r.bytes} bytes); ${r.withReceipt} keep a receipt that verifies against the stored ` +
          `chain heads, ${r.withoutReceipt} had none`,
      );
    } catch (error) {
      this.#logger.error(`transcript retention run failed: ${describeError(error)}`);
    }
  }
}
