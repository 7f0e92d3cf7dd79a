/**
 * exportSession: the session was stored in `digest` mode (TRANSCRIPTS=digest), so only its
 * chains and signatures exist; without the records there is nothing a verifier could replay.
 */
export class TranscriptNotExportableError extends Error {
  override readonly name = 'TranscriptNotExportableError';
  readonly code = 'transcript_not_exportable';

  constructor(
    readonly sessionId: string,
    readonly mode: string,
  ) {
    super(`the session was stored in ${mode} mode: it has no records to export`);
  }
}
