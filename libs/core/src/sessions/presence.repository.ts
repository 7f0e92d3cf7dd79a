/** One live session, as operators and other gateways see it. */
export interface PresenceEntry {
  readonly sessionId: string;
  readonly username: string;
  /** The gateway holding the session (config.gatewayId). */
  readonly gateway: string;
  readonly sourceAddress: string;
  /** Login time, ms since the Unix epoch. */
  readonly since: number;
}

/**
 * Who is logged in where, across every gateway of a deployment. Informational: fan-out does
 * not depend on it (every gateway hears every event and checks its own SessionRegistry), so
 * an entry that is briefly stale or missing costs nothing but an inaccurate listing.
 *
 * An abstract class so that it doubles as the Nest injection token: the embedded process binds
 * MemoryPresenceRepository (memory-presence.repository.ts), the distributed one
 * RedisPresenceRepository (redis-presence.repository.ts).
 */
export abstract class PresenceRepository {
  abstract add(entry: PresenceEntry): Promise<void>;

  abstract remove(sessionId: string, username: string): Promise<void>;

  /** Every live session, oldest login first. */
  abstract list(): Promise<PresenceEntry[]>;

  /** The live sessions of one user, oldest login first. */
  abstract listUser(username: string): Promise<PresenceEntry[]>;

  /**
   * Tells presence that `gateway` is alive; call it every few seconds. Resolves false when
   * the gateway's entries may have been dropped meanwhile (first call, or its heartbeat had
   * lapsed and another gateway pruned them): the caller should then `add` its live sessions
   * again.
   */
  abstract heartbeat(gateway: string): Promise<boolean>;
}

/** Listing order: oldest login first, then by session id, so that a listing is stable. */
export function presenceByLogin(a: PresenceEntry, b: PresenceEntry): number {
  return a.since - b.since || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}
