/**
 * Per-user sending quotas: messages per second with a burst (a token bucket) and body bytes per
 * UTC day. The defaults are far above what a person chatting sends; they bound what one
 * account — a stolen key, a runaway bot — can make the server store and fan out. An abstract
 * class so that it doubles as the Nest injection token: the embedded process binds it to
 * MemorySendQuotaRepository, the distributed relay to RedisSendQuotaRepository (one count for
 * every relay instance).
 */
export abstract class SendQuotaRepository {
  /**
   * Charges a run of one user's sends, in order: accepts the longest prefix the quotas allow and
   * counts exactly that prefix, atomically (concurrent runs of the same user, on any relay
   * instance, never together exceed the quota). `bodyBytes[i]` is send i's body size. Returns
   * how many were accepted and, when not all were, the whole seconds after which the first
   * refused one could pass (at least 1).
   */
  abstract charge(
    username: string,
    bodyBytes: readonly number[],
    now: number,
  ): Promise<QuotaDecision>;
}

export interface QuotaDecision {
  /** Sends accepted, from the front of the run. */
  readonly accepted: number;
  /** Seconds until the first refused send could be accepted; 0 when all were accepted. */
  readonly retryAfter: number;
}

/** The quota settings (config.quotas); 0 turns one off. */
export interface QuotaPolicy {
  /** Tokens added per second; one send takes one. */
  readonly messagesPerSecond: number;
  /** Bucket size: sends accepted at once after a quiet spell. */
  readonly messageBurst: number;
  /** Body bytes per user per UTC day. */
  readonly bytesPerDay: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** The UTC day `now` falls in, as a day number (keys and resets). */
export function utcDay(now: number): number {
  return Math.floor(now / DAY_MS);
}

/** Whole seconds from `now` to the next UTC midnight, at least 1. */
export function secondsToNextDay(now: number): number {
  return Math.max(1, Math.ceil(((utcDay(now) + 1) * DAY_MS - now) / 1000));
}
