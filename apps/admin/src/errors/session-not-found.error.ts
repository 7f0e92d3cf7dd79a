/** Admin API: no live session has this id on any gateway (presence does not know it). */
export class SessionNotFoundError extends Error {
  override readonly name = 'SessionNotFoundError';
  readonly code = 'session_not_found';

  constructor(readonly sessionId: string) {
    super('no live session with this id');
  }
}
