import { Injectable } from '@nestjs/common';
import { type StoredMessage } from '@securechat/core';

/** What the registry needs of a live session: somewhere to hand a fan-out delivery. */
export interface DeliveryTarget {
  readonly username: string;
  deliver(message: StoredMessage): void;
}

/** The live sessions of this gateway, by user, for fan-out (§6: every live session of a user). */
@Injectable()
export class SessionRegistry {
  readonly #byUser = new Map<string, Set<DeliveryTarget>>();

  add(target: DeliveryTarget): void {
    let set = this.#byUser.get(target.username);
    if (!set) this.#byUser.set(target.username, (set = new Set()));
    set.add(target);
  }

  remove(target: DeliveryTarget): void {
    const set = this.#byUser.get(target.username);
    if (!set) return;
    set.delete(target);
    if (set.size === 0) this.#byUser.delete(target.username);
  }

  sessionsOf(username: string): ReadonlySet<DeliveryTarget> {
    return this.#byUser.get(username) ?? new Set();
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
