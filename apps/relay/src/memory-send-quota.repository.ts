import { Inject, Injectable } from '@nestjs/common';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

import {
  type QuotaDecision,
  type QuotaPolicy,
  SendQuotaRepository,
  secondsToNextDay,
  utcDay,
} from './send-quota.repository';

interface UserQuota {
  tokens: number;
  refilledAt: number;
  day: number;
  bytes: number;
}

/**
 * SendQuotaRepository for the embedded mode: one in-process table. An entry is only needed
 * while it differs from a fresh one (bucket full, nothing sent today), so entries that have
 * refilled are dropped on the next sweep and memory follows the users actually sending.
 * State is lost on restart, which only forgives.
 */
@Injectable()
export class MemorySendQuotaRepository extends SendQuotaRepository {
  readonly #policy: QuotaPolicy;
  readonly #users = new Map<string, UserQuota>();
  #sweptAt = 0;

  constructor(@Inject(CONFIG) config: SecureChatConfig) {
    super();
    this.#policy = config.quotas;
  }

  /** Users with an entry (for tests). */
  get size(): number {
    return this.#users.size;
  }

  /** Atomic by construction: one thread, and nothing here yields. */
  override charge(
    username: string,
    bodyBytes: readonly number[],
    now: number,
  ): Promise<QuotaDecision> {
    const { messagesPerSecond: rate, messageBurst: burst, bytesPerDay } = this.#policy;
    if (rate <= 0 && bytesPerDay <= 0)
      return Promise.resolve({ accepted: bodyBytes.length, retryAfter: 0 });
    this.#sweep(now);
    const day = utcDay(now);
    const entry = this.#users.get(username) ?? { tokens: burst, refilledAt: now, day, bytes: 0 };
    if (rate > 0) {
      entry.tokens = Math.min(
        burst,
        entry.tokens + (Math.max(0, now - entry.refilledAt) / 1000) * rate,
      );
    }
    entry.refilledAt = now;
    if (entry.day !== day) {
      entry.day = day;
      entry.bytes = 0;
    }
    let accepted = 0;
    let retryAfter = 0;
    for (const size of bodyBytes) {
      if (rate > 0 && entry.tokens < 1) {
        retryAfter = Math.max(1, Math.ceil((1 - entry.tokens) / rate));
        break;
      }
      if (bytesPerDay > 0 && entry.bytes + size > bytesPerDay) {
        retryAfter = secondsToNextDay(now);
        break;
      }
      if (rate > 0) entry.tokens -= 1;
      entry.bytes += size;
      accepted++;
    }
    this.#users.set(username, entry);
    return Promise.resolve({ accepted, retryAfter });
  }

  /** At most once a second: drops entries that a fresh one would equal by now. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    const { messagesPerSecond: rate, messageBurst: burst, bytesPerDay } = this.#policy;
    const day = utcDay(now);
    for (const [username, entry] of this.#users) {
      const full = rate <= 0 || entry.tokens + ((now - entry.refilledAt) / 1000) * rate >= burst;
      const unused = bytesPerDay <= 0 || entry.day !== day || entry.bytes === 0;
      if (full && unused) this.#users.delete(username);
    }
  }
}
