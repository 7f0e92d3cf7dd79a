import { Module } from '@nestjs/common';

import { MessageRepository } from './message.repository';
import { RelayMetrics } from './relay-metrics';
import { RelayController } from './relay.controller';
import { RelayService } from './relay.service';
import { RoomRepository } from './room.repository';
import { TranscriptRetentionScheduler } from './transcript-retention.scheduler';
import { TranscriptRetentionService } from './transcript-retention.service';
import { TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

/**
 * The relay service (docs/PROTOCOL.md §7.4 delivery semantics, docs/PROTOCOL.md §8 transcripts):
 * durable messages with group commit, pending deliveries, rooms, history, transcripts, fan-out.
 *
 * It declares no infrastructure of its own. The process wiring (embedded or distributed) must
 * provide these globally, from a `@Global()` module:
 *
 * - `DATABASE` (`Database` from `@securechat/core`): Drizzle over `pg` or PGlite, migrated.
 * - `CONFIG` (`SecureChatConfig`): `limits.maxBodyBytes` and `limits.maxFrame` bound payloads;
 *   `transcriptRetentionDays` > 0 starts the hourly transcript purge
 *   (TranscriptRetentionScheduler);
 *   `roomHistory` says whether a room's history starts at the member's join (RelayService).
 * - `ClockRepository`: `server_ts` of stored messages, `joined_at` of room members (the two
 *   are compared), `delivered_at`, the retention cutoff.
 * - `FanoutPort`: where stored messages are published for the gateways (InProcessFanout in
 *   the embedded mode, Redis in the distributed one).
 *
 * The controller answers RELAY_PATTERNS over whatever Nest transport the process connects
 * (InProcessServer in the embedded mode). RelayService is exported for
 * in-process callers.
 */
@Module({
  controllers: [RelayController],
  providers: [
    RelayService,
    MessageRepository,
    RelayMetrics,
    RoomRepository,
    UserDirectoryRepository,
    TranscriptRepository,
    TranscriptRetentionService,
    TranscriptRetentionScheduler,
  ],
  exports: [RelayService],
})
export class RelayModule {}
