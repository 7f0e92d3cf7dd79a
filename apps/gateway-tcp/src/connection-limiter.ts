import { Inject, Injectable } from '@nestjs/common';
import { CONFIG, type SecureChatConfig } from '@securechat/core';

/**
 * Caps on connections still in the handshake — per source address and in total, like
 * OpenSSH's MaxStartups — and on established sessions in total. A flood from one address
 * cannot starve the others of handshake slots.
 */
@Injectable()
export class ConnectionLimiter {
  readonly #handshakesByAddress = new Map<string, number>();
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
    const forAddress = this.#handshakesByAddress.get(address) ?? 0;
    if (this.#handshakes >= maxHandshakes || forAddress >= maxHandshakesPerAddress) {
      return 'too_many_handshakes';
    }
    this.#handshakes += 1;
    this.#handshakesByAddress.set(address, forAddress + 1);
    return 'ok';
  }

  endHandshake(address: string): void {
    this.#handshakes -= 1;
    const left = (this.#handshakesByAddress.get(address) ?? 1) - 1;
    if (left <= 0) this.#handshakesByAddress.delete(address);
    else this.#handshakesByAddress.set(address, left);
  }

  /** Takes a session slot; false when the total is reached. */
  tryStartSession(): boolean {
    if (this.#sessions >= this.config.limits.maxSessions) return false;
    this.#sessions += 1;
    return true;
  }

  endSession(): void {
    this.#sessions -= 1;
  }
}
