import { Inject, Injectable } from '@nestjs/common';
import {
  addressKey,
  ClockRepository,
  CONFIG,
  ipv6PrefixKey,
  type SecureChatConfig,
} from '@securechat/core';

import { AcceptRate } from './accept-rate';

/** Why a new connection is refused before its handshake starts. */
export type HandshakeRefusal = 'too_many_sessions' | 'too_many_handshakes' | 'rate_limited';

/**
 * Admission of new connections, and the caps on established sessions.
 *
 * Handshakes are capped in total, like OpenSSH's MaxStartups, and per source: an IPv4 address,
 * or an IPv6 /64 (which one subscriber usually holds whole), and further per IPv6 /56 and /48,
 * the delegations ISPs hand out, so that one customer cannot take every slot by spreading over
 * the /64s it owns. Each source key also has an accept rate (a token bucket). Sessions are
 * capped in total and per user, so that one account cannot take every session slot.
 */
@Injectable()
export class ConnectionLimiter {
  /**
   * Handshakes per source key. The /64 (or IPv4) keys and the /56 and /48 keys cannot collide
   * (they end in different `/bits`), so one map holds all three levels.
   */
  readonly #handshakesByPrefix = new Map<string, number>();
  readonly #sessionsByUser = new Map<string, number>();
  readonly #acceptRate: AcceptRate;
  #handshakes = 0;
  #sessions = 0;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    clock: ClockRepository,
  ) {
    this.#acceptRate = new AcceptRate({
      ratePerSecond: config.limits.acceptRatePerAddress,
      burst: config.limits.acceptBurstPerAddress,
      now: () => clock.now(),
    });
  }

  get counts(): { handshakes: number; sessions: number } {
    return { handshakes: this.#handshakes, sessions: this.#sessions };
  }

  /** How many keys each map holds: each is bounded by the live set (for metrics and tests). */
  get tracked(): { prefixes: number; rateBuckets: number; users: number } {
    return {
      prefixes: this.#handshakesByPrefix.size,
      rateBuckets: this.#acceptRate.size,
      users: this.#sessionsByUser.size,
    };
  }

  /**
   * Takes a handshake slot for `address` (a socket's remote address), or says why not. A
   * refusal takes nothing, not even an accept token. When several apply, the order is
   * `too_many_sessions`, `too_many_handshakes`, `rate_limited`. Every 'ok' must be matched by
   * one {@link endHandshake} with the same address.
   */
  tryStartHandshake(address: string): 'ok' | HandshakeRefusal {
    if (typeof address !== 'string') throw new TypeError('address must be a string');
    const { maxHandshakes, maxSessions } = this.config.limits;
    if (this.#sessions >= maxSessions) return 'too_many_sessions';
    if (this.#handshakes >= maxHandshakes) return 'too_many_handshakes';
    const prefixes = this.#prefixes(address);
    for (const [key, cap] of prefixes) {
      if ((this.#handshakesByPrefix.get(key) ?? 0) >= cap) return 'too_many_handshakes';
    }
    // Last, so that a connection refused for a cap leaves its address's tokens alone.
    if (!this.#acceptRate.tryTake(prefixes[0][0])) return 'rate_limited';
    this.#handshakes += 1;
    for (const [key] of prefixes) {
      this.#handshakesByPrefix.set(key, (this.#handshakesByPrefix.get(key) ?? 0) + 1);
    }
    return 'ok';
  }

  /**
   * Gives back the slot {@link tryStartHandshake} took for `address`, in every prefix. A
   * release with nothing to release is ignored: counting it would loosen the caps.
   */
  endHandshake(address: string): void {
    if (typeof address !== 'string') throw new TypeError('address must be a string');
    const prefixes = this.#prefixes(address);
    if (!this.#handshakesByPrefix.has(prefixes[0][0])) return;
    this.#handshakes -= 1;
    for (const [key] of prefixes) decrement(this.#handshakesByPrefix, key);
  }

  /** Takes a session slot for `username`, or says which cap is reached. */
  tryStartSession(username: string): 'ok' | 'server_full' | 'user_limit' {
    const { maxSessions, maxSessionsPerUser } = this.config.limits;
    if (this.#sessions >= maxSessions) return 'server_full';
    const forUser = this.#sessionsByUser.get(username) ?? 0;
    if (forUser >= maxSessionsPerUser) return 'user_limit';
    this.#sessions += 1;
    this.#sessionsByUser.set(username, forUser + 1);
    return 'ok';
  }

  endSession(username: string): void {
    this.#sessions -= 1;
    decrement(this.#sessionsByUser, username);
  }

  /** The keys `address` is counted under, with their caps; the address key comes first. */
  #prefixes(address: string): [[string, number], ...[string, number][]] {
    const { maxHandshakesPerAddress, maxHandshakesPer56, maxHandshakesPer48 } = this.config.limits;
    const keys: [[string, number], ...[string, number][]] = [
      [addressKey(address), maxHandshakesPerAddress],
    ];
    const per56 = ipv6PrefixKey(address, 56);
    const per48 = ipv6PrefixKey(address, 48);
    if (per56 !== undefined) keys.push([per56, maxHandshakesPer56]);
    if (per48 !== undefined) keys.push([per48, maxHandshakesPer48]);
    return keys;
  }
}

/** Counts down, forgetting keys at zero so that the maps stay as small as the live set. */
function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}
