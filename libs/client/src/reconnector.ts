/**
 * When to dial again after a lost connection: capped exponential backoff with jitter, attempts
 * counted since the last success, and which failures are not worth a retry. Time comes from
 * injected timers, so the unit specs run without waiting.
 */
import { PeerError, ServerIdentityError } from '@securechat/protocol';

import { TrustConfigurationError } from './client-errors';
import { type TimerHandle, type Timers, systemTimers } from './timers';

export interface ReconnectOptions {
  /** First delay (default 250 ms); doubled per attempt, with jitter. */
  readonly initialDelayMs: number;
  /** Largest delay (default 30 s). */
  readonly maxDelayMs: number;
  /**
   * Attempts after a connection loss before giving up (default Infinity: a chat left open
   * through a long server outage must come back by itself, issue 14). Scripts set a limit.
   */
  readonly maxAttempts: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  maxAttempts: Infinity,
};

/** The next attempt: its 1-based number and the wait before it. */
export interface ReconnectAttempt {
  readonly attempt: number;
  readonly delayMs: number;
}

/** Exponential backoff with "equal jitter": half the capped delay, plus up to half again. */
export function backoffDelay(
  attempt: number,
  options: Pick<ReconnectOptions, 'initialDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  // 2^30 already exceeds any sensible cap; a larger exponent would only overflow to Infinity.
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Whether a failure ends the client instead of leading to a reconnect. */
export function isFinalFailure(error: unknown): boolean {
  if (error instanceof ServerIdentityError || error instanceof TrustConfigurationError) return true;
  if (error instanceof TypeError) return true; // our own configuration is wrong
  if (error instanceof PeerError) {
    switch (error.code) {
      case 'auth_failed':
      case 'forbidden':
      case 'conflict':
      case 'bad_request':
      case 'unsupported_protocol':
        return true;
      default:
        return false;
    }
  }
  return false;
}

/** Counts the attempts since the last successful connection and decides the next wait. */
export class Reconnector {
  readonly options: ReconnectOptions;
  readonly #random: () => number;
  readonly #timers: Timers;
  #attempt = 0;
  #timer: TimerHandle | undefined;

  constructor(
    options: Partial<ReconnectOptions> = {},
    random: () => number = Math.random,
    timers: Timers = systemTimers,
  ) {
    // An option given as undefined (e.g. an unset CLI flag) means its default.
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    const merged: ReconnectOptions = { ...DEFAULT_RECONNECT, ...given };
    const { initialDelayMs, maxDelayMs, maxAttempts } = merged;
    if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0) {
      throw new TypeError('reconnect.initialDelayMs must be a finite number ≥ 0');
    }
    if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) {
      throw new TypeError('reconnect.maxDelayMs must be a finite number ≥ 0');
    }
    if (!(maxAttempts === Infinity || (Number.isInteger(maxAttempts) && maxAttempts >= 0))) {
      throw new TypeError('reconnect.maxAttempts must be an integer ≥ 0 or Infinity');
    }
    this.options = merged;
    this.#random = random;
    this.#timers = timers;
  }

  /** Attempts made since the last successful connection. */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * The next attempt after `reason`, or undefined once `maxAttempts` are spent. A server's
   * `retry_after` (rate_limited, docs/PROTOCOL.md §9) is honoured even beyond the cap: dialling
   * earlier would only be refused again.
   */
  next(reason?: Error): ReconnectAttempt | undefined {
    this.#attempt += 1;
    if (this.#attempt > this.options.maxAttempts) return undefined;
    let delayMs = backoffDelay(this.#attempt, this.options, this.#random);
    if (reason instanceof PeerError && reason.retryAfter !== undefined) {
      delayMs = Math.max(delayMs, reason.retryAfter * 1000);
    }
    return { attempt: this.#attempt, delayMs };
  }

  /** `next(reason)`, with `retry` called after its delay; undefined: nothing was scheduled. */
  schedule(reason: Error | undefined, retry: () => void): ReconnectAttempt | undefined {
    this.cancel();
    const next = this.next(reason);
    if (next !== undefined) {
      this.#timer = this.#timers.set(() => {
        this.#timer = undefined;
        retry();
      }, next.delayMs);
    }
    return next;
  }

  /** Drops a scheduled retry (the client is closing). */
  cancel(): void {
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
  }

  /** A connection was established: the next loss starts from the first delay again. */
  reset(): void {
    this.#attempt = 0;
  }
}
