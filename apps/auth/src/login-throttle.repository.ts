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

  /** Clears the username's failure count (not the address's). */
  abstract recordSuccess(username: string): Promise<void>;

  /**
   * Clears the username's failure count on an operator's order (admin API). The same effect
   * as a success today; a separate method so that the two can diverge without the callers
   * noticing.
   */
  abstract clear(username: string): Promise<void>;
}
