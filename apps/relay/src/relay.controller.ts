/**
 * The relay's side of the service transport: one `@MessagePattern` per RELAY_PATTERNS entry,
 * each answering exactly the result type of libs/core relay.contracts.ts. Payloads are
 * validated strictly first; a malformed payload, like any failure to carry out a request, is
 * thrown as a RelayFailure, which the gateway sees as a transport failure and answers
 * `internal` (docs/PROTOCOL.md §9).
 */
import { performance } from 'node:perf_hooks';

import { Controller, Inject, Logger, Optional } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { type z } from 'zod';

import {
  CONFIG,
  type DeliveredBatchResult,
  type DeliveredResult,
  type HistoryResult,
  type JoinResult,
  type LeaveResult,
  MetricsRepository,
  NoopMetricsRepository,
  type PendingResult,
  RELAY_PATTERNS,
  type SecureChatConfig,
  type SendBatchResult,
  type SendResult,
  type TranscriptAppendResult,
} from '@securechat/core';

import { describeError, RelayFailure } from './relay-failure.error';
import { relaySchemas, type RelaySchemas } from './relay.schemas';
import { RelayService } from './relay.service';

@Controller()
export class RelayController {
  readonly #logger = new Logger(RelayController.name);
  readonly #schemas: RelaySchemas;

  constructor(
    private readonly relay: RelayService,
    @Inject(CONFIG) config: SecureChatConfig,
    @Optional() private readonly metrics: MetricsRepository = new NoopMetricsRepository(),
  ) {
    this.#schemas = relaySchemas({
      maxBodyBytes: config.limits.maxBodyBytes,
      maxFrame: config.limits.maxFrame,
    });
  }

  @MessagePattern(RELAY_PATTERNS.send)
  send(@Payload() payload: unknown): Promise<SendResult> {
    // A duration, not a date: the monotonic clock, so a wall-clock step cannot skew it.
    const received = performance.now();
    return this.#handle(RELAY_PATTERNS.send, this.#schemas.send, payload, async (cmd) => {
      const result = await this.relay.send(cmd);
      if (result.ok && !result.duplicate) {
        this.metrics.messageStored(performance.now() - received);
      }
      return result;
    });
  }

  @MessagePattern(RELAY_PATTERNS.sendBatch)
  sendBatch(@Payload() payload: unknown): Promise<SendBatchResult> {
    const received = performance.now();
    return this.#handle(RELAY_PATTERNS.sendBatch, this.#schemas.sendBatch, payload, async (cmd) => {
      const batch = await this.relay.sendBatch(cmd);
      const elapsed = performance.now() - received;
      for (const result of batch.results) {
        if (result.ok && !result.duplicate) this.metrics.messageStored(elapsed);
      }
      return batch;
    });
  }

  @MessagePattern(RELAY_PATTERNS.delivered)
  delivered(@Payload() payload: unknown): Promise<DeliveredResult> {
    return this.#handle(RELAY_PATTERNS.delivered, this.#schemas.delivered, payload, async (cmd) => {
      const result = await this.relay.delivered(cmd);
      if (result.marked) this.metrics.deliveryAcked();
      return result;
    });
  }

  @MessagePattern(RELAY_PATTERNS.deliveredBatch)
  deliveredBatch(@Payload() payload: unknown): Promise<DeliveredBatchResult> {
    return this.#handle(
      RELAY_PATTERNS.deliveredBatch,
      this.#schemas.deliveredBatch,
      payload,
      async (cmd) => {
        const result = await this.relay.deliveredBatch(cmd);
        for (let i = 0; i < result.marked; i++) this.metrics.deliveryAcked();
        return result;
      },
    );
  }

  @MessagePattern(RELAY_PATTERNS.pending)
  pending(@Payload() payload: unknown): Promise<PendingResult> {
    return this.#handle(RELAY_PATTERNS.pending, this.#schemas.pending, payload, (query) =>
      this.relay.pending(query),
    );
  }

  @MessagePattern(RELAY_PATTERNS.join)
  join(@Payload() payload: unknown): Promise<JoinResult> {
    return this.#handle(RELAY_PATTERNS.join, this.#schemas.roomCommand, payload, (cmd) =>
      this.relay.join(cmd),
    );
  }

  @MessagePattern(RELAY_PATTERNS.leave)
  leave(@Payload() payload: unknown): Promise<LeaveResult> {
    return this.#handle(RELAY_PATTERNS.leave, this.#schemas.roomCommand, payload, (cmd) =>
      this.relay.leave(cmd),
    );
  }

  @MessagePattern(RELAY_PATTERNS.history)
  history(@Payload() payload: unknown): Promise<HistoryResult> {
    return this.#handle(RELAY_PATTERNS.history, this.#schemas.history, payload, (query) =>
      this.relay.history(query),
    );
  }

  @MessagePattern(RELAY_PATTERNS.transcriptAppend)
  transcriptAppend(@Payload() payload: unknown): Promise<TranscriptAppendResult> {
    return this.#handle(
      RELAY_PATTERNS.transcriptAppend,
      this.#schemas.transcriptBatch,
      payload,
      (batch) => this.relay.transcriptAppend(batch),
    );
  }

  /**
   * Validates, runs, and turns every failure into a RelayFailure that is safe to print:
   * member paths and issue codes only (never values: a value may be a message body), and
   * storage errors reduced to class and SQLSTATE.
   */
  async #handle<S extends z.ZodType, R>(
    pattern: string,
    schema: S,
    payload: unknown,
    run: (input: z.output<S>) => Promise<R>,
  ): Promise<R> {
    const parsed = schema.safeParse(payload);
    if (!parsed.success) {
      const where = parsed.error.issues
        .slice(0, 3)
        .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.code}`)
        .join('; ');
      const reason = `${pattern}: malformed payload (${where})`;
      this.#logger.warn(reason);
      throw new RelayFailure(reason);
    }
    try {
      return await run(parsed.data);
    } catch (error) {
      if (error instanceof RelayFailure) throw error; // already logged where it happened
      const reason = `${pattern} failed: ${describeError(error)}`;
      this.#logger.error(reason);
      throw new RelayFailure(reason);
    }
  }
}
