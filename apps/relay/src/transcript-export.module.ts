import { Module } from '@nestjs/common';

import { ServerPublicKeyRepository } from './server-public-key.repository';
import { TranscriptExportService } from './transcript-export.service';
import { TranscriptRetentionService } from './transcript-retention.service';
import { TranscriptRepository } from './transcript.repository';

/**
 * TranscriptExportService and TranscriptRetentionService (the admin purge) for whichever
 * process hosts the admin API. Needs from a global module only `DATABASE` (the transcript
 * tables), `ClockRepository` (when a purge ran) and `CONFIG` (`identityKeyPath`, read when the
 * first export runs), so it can be imported without the rest of the relay.
 */
@Module({
  providers: [
    TranscriptExportService,
    TranscriptRetentionService,
    TranscriptRepository,
    ServerPublicKeyRepository,
  ],
  exports: [TranscriptExportService, TranscriptRetentionService],
})
export class TranscriptExportModule {}
