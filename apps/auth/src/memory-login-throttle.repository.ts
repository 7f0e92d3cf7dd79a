import { Inject, Injectable, Optional } from '@nestjs/common';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

import { LoginThrottleRepository } from './login-throttle.repository';

/** Nest token for MemoryLoginThrottleOptions (optional; tests use it to shrink the bound). */
export const MEMORY_LOGIN_THROTTLE_OPTIONS = Symbol('MemoryLoginThrottleOptions');

export interface MemoryLoginThrottleOptions {
  /** Most entries kept per kind (usernames, addresses). Default 100,000. */
  readonly maxEntries?: number;
}

export const DEFAULT_MAX_THROTTLE_ENTRIES = 100_000;

/** A username nobody has failed on for a day starts afresh. */
const USERNAME_RETENTION_MS = 24 * 60 * 60 * 1000;

/** 2^31 s is far beyond any maxDelay; capping the exponent keeps the arithmetic finite. */
const MAX_EXPONENT = 31;

interface Entry {
  failures: number;
  lastFailureAt: number;
}

/**
 * Consecutive failures of one kind of key. Map iteration follows insertion order and every
 * failure re-inserts its key, so the front of the map holds the oldest last-failure: expiry
 * and eviction both work from the front in amortised O(1), without a timer.
 */
class FailureTable {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly threshold: number,
    private readonly maxDelayMs: number,
    private readonly retentionMs: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** Epoch ms until which `key` is blocked; 0 when it is not. */
  blockedUntil(key: string, now: number): number {
    this.#sweep(now);
    const entry = this.#live(key, now);
    if (entry === undefined || entry.failures < this.threshold) return 0;
    const exponent = Math.min(entry.failures - this.threshold, MAX_EXPONENT);
    return entry.lastFailureAt + Math.min(2 ** exponent * 1000, this.maxDelayMs);
  }

  record(key: string, now: number): void {
    this.#sweep(now);
    const failures = (this.#live(key, now)?.failures ?? 0) + 1;
    this.#entries.delete(key);
    this.#entries.set(key, { failures, lastFailureAt: now });
    // Bounded so that a stream of fresh usernames or addresses cannot exhaust memory. The
    // evicted entry is the one idle longest, hence the least likely to be blocking anything.
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** One failure fewer, in place (its position and last-failure time unchanged). */
  refund(key: string, now: number): void {
    const entry = this.#live(key, now);
    if (entry === undefined) return;
    entry.failures -= 1;
    if (entry.failures <= 0) this.#entries.delete(key);
  }

  clear(key: string): void {
    this.#entries.delete(key);
  }

  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined && now - entry.lastFailureAt > this.retentionMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweep(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastFailureAt <= this.retentionMs) break;
      this.#entries.delete(key);
    }
  }
}

/**
 * LoginThrottleRepository for the embedded mode: two bounded in-process tables. State is lost
 * on restart, which only forgives failures; in the distributed mode the Redis implementation
 * shares it between auth instances. Usernames are forgotten after 24 h without a failure,
 * addresses after 2 × maxDelay (by then any block they had has long expired).
 */
@Injectable()
export class MemoryLoginThrottleRepository extends LoginThrottleRepository {
  readonly #usernames: FailureTable;
  readonly #addresses: FailureTable;

  constructor(
    @Inject(CONFIG) config: SecureChatConfig,
    @Optional() @Inject(MEMORY_LOGIN_THROTTLE_OPTIONS) options?: MemoryLoginThrottleOptions,
  ) {
    super();
    const { userFailures, addressFailures, maxDelaySeconds } = config.throttle;
    const maxDelayMs = maxDelaySeconds * 1000;
    const maxEntries = options?.maxEntries ?? DEFAULT_MAX_THROTTLE_ENTRIES;
    this.#usernames = new FailureTable(
      userFailures,
      maxDelayMs,
      Math.max(USERNAME_RETENTION_MS, maxDelayMs),
      maxEntries,
    );
    this.#addresses = new FailureTable(addressFailures, maxDelayMs, 2 * maxDelayMs, maxEntries);
  }

  /** Entries currently held per kind (for tests and metrics). */
  get size(): { readonly usernames: number; readonly addresses: number } {
    return { usernames: this.#usernames.size, addresses: this.#addresses.size };
  }

  override blockedFor(username: string | null, address: string, now: number): Promise<number> {
    return Promise.resolve(this.#blockedFor(username, address, now));
  }

  override recordFailure(username: string | null, address: string, now: number): Promise<void> {
    this.#record(username, address, now);
    return Promise.resolve();
  }

  /** Atomic by construction: one thread, and nothing between the check and the count yields. */
  override attempt(username: string | null, address: string, now: number): Promise<number> {
    const blocked = this.#blockedFor(username, address, now);
    if (blocked === 0) this.#record(username, address, now);
    return Promise.resolve(blocked);
  }

  override refund(address: string, now: number): Promise<void> {
    this.#addresses.refund(address, now);
    return Promise.resolve();
  }

  override recordSuccess(username: string): Promise<void> {
    this.#usernames.clear(username);
    return Promise.resolve();
  }

  override clear(username: string): Promise<void> {
    this.#usernames.clear(username);
    return Promise.resolve();
  }

  #blockedFor(username: string | null, address: string, now: number): number {
    const until = Math.max(
      username === null ? 0 : this.#usernames.blockedUntil(username, now),
      this.#addresses.blockedUntil(address, now),
    );
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  #record(username: string | null, address: string, now: number): void {
    if (username !== null) this.#usernames.record(username, now);
    this.#addresses.record(address, now);
  }
}
