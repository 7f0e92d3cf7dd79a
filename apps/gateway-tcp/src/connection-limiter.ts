import { Inject, Injectable } from '@nestjs/common';
import { addressKey, CONFIG, type SecureChatConfig } from '@securechat/core';

/**
 * Caps on connections still in the handshake — per source address (IPv6: per /64, which one
 * subscriber usually holds whole) and in total, like OpenSSH's MaxStartups — and on
 * established sessions, in total and per user. A flood from one address cannot starve the
 * others of handshake slots, and one account cannot take every session slot.
 */
@Injectable()
export class ConnectionLimiter {
  readonly #handshakesByAddress = new Map<string, number>();
  readonly #sessionsByUser = new Map<string, number>();
  #handshakes = 0;
  #sessions = 0;

  constructor(@Inject(CONFIG) private readonly config: SecureChatConfig) {}

  get counts(): { handshakes: number; sessions: number } {
    return { handshakes: this.#handshakes, sessions: this.#sessions };
  }

  /** Takes a handshake slot for `address`, or returns why not. */
  tryStartHandshake(address: string): 'ok' | 'too_many_handshakes' | 'too_many_sessions' {
    const { maxHandshakes, maxHandshakesPerAddress, maxSessions } = this.config.limits;
    if (this.#sessions >= maxSessions) return 'too_many_sessions';
    const key = addressKey(address);
    const forAddress = this.#handshakesByAddress.get(key) ?? 0;
    if (this.#handshakes >= maxHandshakes || forAddress >= maxHandshakesPerAddress) {
      return 'too_many_handshakes';
    }
    this.#handshakes += 1;
    this.#handshakesByAddress.set(key, forAddress + 1);
    return 'ok';
  }

  endHandshake(address: string): void {
    this.#handshakes -= 1;
    decrement(this.#handshakesByAddress, addressKey(address));
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
}

/** Counts down, forgetting keys at zero so that the maps stay as small as the live set. */
function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}
