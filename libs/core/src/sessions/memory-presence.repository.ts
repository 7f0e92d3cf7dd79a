import { Injectable } from '@nestjs/common';

import { presenceByLogin, type PresenceEntry, PresenceRepository } from './presence.repository';

/**
 * PresenceRepository for the embedded mode: one process holds every session, so a gateway
 * cannot die without its presence going with it, and heartbeats have nothing to prove.
 */
@Injectable()
export class MemoryPresenceRepository extends PresenceRepository {
  readonly #byUser = new Map<string, Map<string, PresenceEntry>>();

  override add(entry: PresenceEntry): Promise<void> {
    let sessions = this.#byUser.get(entry.username);
    if (!sessions) this.#byUser.set(entry.username, (sessions = new Map<string, PresenceEntry>()));
    sessions.set(entry.sessionId, { ...entry });
    return Promise.resolve();
  }

  override remove(sessionId: string, username: string): Promise<void> {
    const sessions = this.#byUser.get(username);
    if (sessions?.delete(sessionId) === true && sessions.size === 0) this.#byUser.delete(username);
    return Promise.resolve();
  }

  override list(): Promise<PresenceEntry[]> {
    const all = [...this.#byUser.values()].flatMap((sessions) => [...sessions.values()]);
    return Promise.resolve(all.sort(presenceByLogin));
  }

  override listUser(username: string): Promise<PresenceEntry[]> {
    return Promise.resolve([...(this.#byUser.get(username)?.values() ?? [])].sort(presenceByLogin));
  }

  override heartbeat(_gateway: string): Promise<boolean> {
    return Promise.resolve(true);
  }
}
