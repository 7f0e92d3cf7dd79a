import { Module } from '@nestjs/common';

import { ServerPublicKeyRepository } from './server-public-key.repository';
import { TranscriptExportService } from './transcript-export.service';
import { TranscriptRepository } from './transcript.repository';

/**
 * TranscriptExportService for whichever process hosts the admin API. Needs from a global
 * module only `DATABASE` (the transcript tables) and `CONFIG` (`identityKeyPath`, read when
 * the first export runs), so it can be imported without the rest of the relay.
 */
@Module({
  providers: [TranscriptExportService, TranscriptRepository, ServerPublicKeyRepository],
  exports: [TranscriptExportService],
})
export class TranscriptExportModule {}
