/** exportSession: no transcript is stored under that session id. */
export class TranscriptNotFoundError extends Error {
  override readonly name = 'TranscriptNotFoundError';
  readonly code = 'transcript_not_found';

  constructor(readonly sessionId: string) {
    super('no transcript is stored for that session');
  }
}
