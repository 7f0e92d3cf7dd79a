import { Injectable, type OnModuleInit, Optional } from '@nestjs/common';
import {
  cachedSource,
  ClockRepository,
  MetricsRepository,
  NoopMetricsRepository,
} from '@securechat/core';

import { MessageRepository } from './message.repository';

/** A scrape every second must not become a COUNT every second: one per this period at most. */
const PENDING_COUNT_TTL_MS = 5_000;

/** Registers the relay's scrape-time gauges (the hot-path counters live in the controller). */
@Injectable()
export class RelayMetrics implements OnModuleInit {
  constructor(
    private readonly messages: MessageRepository,
    private readonly clock: ClockRepository,
    @Optional() private readonly metrics: MetricsRepository = new NoopMetricsRepository(),
  ) {}

  onModuleInit(): void {
    this.metrics.gauge(
      'pending_deliveries',
      cachedSource(
        () => this.messages.countPending(),
        PENDING_COUNT_TTL_MS,
        () => this.clock.now(),
      ),
    );
  }
}
