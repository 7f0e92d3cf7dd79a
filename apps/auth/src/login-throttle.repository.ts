/**
 * Throttling of failed logins per username and per source address (docs/PROTOCOL.md §4.5:
 * "Repeated failures are throttled per username and per source address"). An abstract class
 * so that it doubles as the Nest injection token: the embedded process binds it to
 * MemoryLoginThrottleRepository, the distributed one to a Redis implementation.
 *
 * Policy, whatever the storage: consecutive failures are counted per key; once a count `f`
 * reaches its threshold `t` (config.throttle.userFailures / addressFailures) the key is blocked
 * until `lastFailureAt + min(2^(f−t) s, config.throttle.maxDelaySeconds)`. A success clears the
 * username's count only, so one correct password does not unlock an address that is guessing
 * across many accounts.
 *
 * AuthService counts an attempt before its outcome is known (`attempt`: check and count in one
 * atomic step, so concurrent attempts — on one auth instance or several — cannot all pass the
 * check before any failure is recorded) and gives the address's unit back when the attempt
 * succeeds (`refund`).
 *
 * Keys are opaque strings chosen by the caller (AuthService bounds their length); `now` is
 * milliseconds since the Unix epoch, from ClockRepository.
 */
export abstract class LoginThrottleRepository {
  /**
   * Whole seconds until an attempt for this username or from this address may be made: the
   * larger of the two, 0 when both are free. `username` null checks the address only
   * (registration).
   */
  abstract blockedFor(username: string | null, address: string, now: number): Promise<number>;

  /** Counts one failure for the username (unless null) and for the address. */
  abstract recordFailure(username: string | null, address: string, now: number): Promise<void>;

  /**
   * `blockedFor` and, when it is 0, `recordFailure` as one atomic step: the whole seconds the
   * caller must wait (nothing counted), or 0 with one failure counted against the username
   * (unless null) and the address. Whatever else runs concurrently against the same keys,
   * no more attempts pass than the policy allows.
   */
  abstract attempt(username: string | null, address: string, now: number): Promise<number>;

  /**
   * Gives back one failure counted against the address by `attempt` (the attempt succeeded, or
   * was refused before any work). Never below zero; the last-failure time is left alone.
   */
  abstract refund(address: string, now: number): Promise<void>;

  /** Clears the username's failure count (not the address's). */
  abstract recordSuccess(username: string): Promise<void>;

  /**
   * Clears the username's failure count on an operator's order (admin API). The same effect
   * as a success today; a separate method so that the two can diverge without the callers
   * noticing.
   */
  abstract clear(username: string): Promise<void>;
}
