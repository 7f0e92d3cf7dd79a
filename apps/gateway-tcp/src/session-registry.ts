import { Injectable } from '@nestjs/common';
import { type StoredMessage } from '@securechat/core';

/**
 * What the registry needs of a live session: somewhere to hand a fan-out delivery, and a way
 * for an operator's order (SessionCloser) or a recheck of its account (SessionRecheck) to end it.
 */
export interface DeliveryTarget {
  readonly username: string;
  readonly sessionId: string;
  /**
   * The account's credential generation when this session's login was decided (auth's login
   * answer); undefined when auth did not say. SessionRecheck ends the session once the stored
   * generation differs.
   */
  readonly credentialsVersion?: number;
  deliver(message: StoredMessage): void;
  /**
   * Ends the session with a fatal `error` record the client can read (docs/PROTOCOL.md §9), then
   * closes.
   */
  shutdown(code: 'shutting_down', message: string): void;
}

/**
 * The live sessions of this gateway, by user for fan-out (PROTOCOL.md §6: every live session of a
 * user) and by session id for operators closing one session.
 */
@Injectable()
export class SessionRegistry {
  /**
   * A user's session, or a Set once they have more than one: most users have one session, and
   * a Set per user would cost each of them ~0.2 KiB for as long as they stay connected.
   */
  readonly #byUser = new Map<string, DeliveryTarget | Set<DeliveryTarget>>();
  readonly #bySession = new Map<string, DeliveryTarget>();
  #size = 0;

  add(target: DeliveryTarget): void {
    const held = this.#byUser.get(target.username);
    if (held === undefined) {
      this.#byUser.set(target.username, target);
      this.#size += 1;
    } else if (held instanceof Set) {
      if (!held.has(target)) this.#size += 1;
      held.add(target);
    } else if (held !== target) {
      this.#byUser.set(target.username, new Set([held, target]));
      this.#size += 1;
    }
    this.#bySession.set(target.sessionId, target);
  }

  remove(target: DeliveryTarget): void {
    const held = this.#byUser.get(target.username);
    if (held instanceof Set) {
      if (!held.delete(target)) return;
      if (held.size === 1) this.#byUser.set(target.username, held.values().next().value!);
    } else if (held === target) {
      this.#byUser.delete(target.username);
    } else {
      return;
    }
    this.#size -= 1;
    // Only the registered one: a stranger reusing the id must not unregister it.
    if (this.#bySession.get(target.sessionId) === target) this.#bySession.delete(target.sessionId);
  }

  /** The user's live sessions, oldest first: a copy, so a session may leave while it is walked. */
  sessionsOf(username: string): readonly DeliveryTarget[] {
    const held = this.#byUser.get(username);
    if (held === undefined) return [];
    return held instanceof Set ? [...held] : [held];
  }

  /** The live session with this id, if this gateway holds it. */
  session(sessionId: string): DeliveryTarget | undefined {
    return this.#bySession.get(sessionId);
  }

  /** The users with at least one live session, each once: a copy, like sessionsOf. */
  usernames(): string[] {
    return [...this.#byUser.keys()];
  }

  all(): DeliveryTarget[] {
    return [...this.#byUser.values()].flatMap((held) => (held instanceof Set ? [...held] : [held]));
  }

  get size(): number {
    return this.#size;
  }
}
