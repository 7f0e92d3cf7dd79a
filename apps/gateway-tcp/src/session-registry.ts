import { Injectable } from '@nestjs/common';
import { type StoredMessage } from '@securechat/core';

/**
 * What the registry needs of a live session: somewhere to hand a fan-out delivery, and a way
 * for an operator's order (SessionCloser) to end it.
 */
export interface DeliveryTarget {
  readonly username: string;
  readonly sessionId: string;
  deliver(message: StoredMessage): void;
  /** Ends the session with a fatal `error` record the client can read (§9), then closes. */
  shutdown(code: 'shutting_down', message: string): void;
}

/**
 * The live sessions of this gateway, by user for fan-out (§6: every live session of a user)
 * and by session id for operators closing one session.
 */
@Injectable()
export class SessionRegistry {
  readonly #byUser = new Map<string, Set<DeliveryTarget>>();
  readonly #bySession = new Map<string, DeliveryTarget>();

  add(target: DeliveryTarget): void {
    let set = this.#byUser.get(target.username);
    if (!set) this.#byUser.set(target.username, (set = new Set()));
    set.add(target);
    this.#bySession.set(target.sessionId, target);
  }

  remove(target: DeliveryTarget): void {
    const set = this.#byUser.get(target.username);
    if (!set) return;
    set.delete(target);
    if (set.size === 0) this.#byUser.delete(target.username);
    // Only the registered one: a stranger reusing the id must not unregister it.
    if (this.#bySession.get(target.sessionId) === target) this.#bySession.delete(target.sessionId);
  }

  sessionsOf(username: string): ReadonlySet<DeliveryTarget> {
    return this.#byUser.get(username) ?? new Set();
  }

  /** The live session with this id, if this gateway holds it. */
  session(sessionId: string): DeliveryTarget | undefined {
    return this.#bySession.get(sessionId);
  }

  all(): DeliveryTarget[] {
    return [...this.#byUser.values()].flatMap((set) => [...set]);
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byUser.values()) n += set.size;
    return n;
  }
}
