/**
 * exportSession: retention (SECURECHAT_TRANSCRIPT_RETENTION_DAYS or an admin purge) deleted the
 * session's records. Its row, chain heads, receipt and countersignature are kept, so the
 * receipt still verifies against them, but the session cannot be rebuilt from the store: an
 * export would be partial, so there is none. The client's own transcript is the copy left.
 */
export class TranscriptPurgedError extends Error {
  override readonly name = 'TranscriptPurgedError';
  readonly code = 'transcript_purged';

  constructor(
    readonly sessionId: string,
    /** ms since the epoch. */
    readonly purgedAt: number,
  ) {
    super(
      `the session's records were deleted by retention at ${new Date(purgedAt).toISOString()}; ` +
        'its receipt and countersignature are kept, but it can no longer be exported',
    );
  }
}
