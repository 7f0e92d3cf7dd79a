import { type PresenceEntry } from './presence.repository';

/**
 * What operators may do with live sessions, across every gateway of a deployment. An abstract
 * class so that it doubles as the Nest injection token (SessionControlService implements it).
 */
export abstract class SessionControl {
  /** Every live session, oldest login first. */
  abstract list(): Promise<PresenceEntry[]>;

  /** The live sessions of one user, oldest login first. */
  abstract listUser(username: string): Promise<PresenceEntry[]>;

  /**
   * Asks the gateway holding `sessionId` to end it. Resolves with the number of sessions
   * presence knew by that id (0 or 1) once the order is sent; the gateway closes the
   * connection at once (within milliseconds) but asynchronously.
   */
  abstract closeSession(sessionId: string, reason: string): Promise<number>;

  /** As closeSession, for every live session of `username`. */
  abstract closeUser(username: string, reason: string): Promise<number>;
}
