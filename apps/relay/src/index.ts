/** apps/relay: the relay service (docs/PROTOCOL.md §7.4, §8) as a Nest module. */
export * from './relay.module';
export * from './relay.service';
export * from './transcript-export.module';
export * from './transcript-export.service';
export * from './transcript-retention.service';
export * from './transcript-retention.scheduler';
export * from './server-public-key.repository';
export * from './send-quota.repository';
export * from './memory-send-quota.repository';
export * from './redis-send-quota.repository';
export * from './errors/transcript-not-found.error';
export * from './errors/transcript-not-exportable.error';
export * from './errors/transcript-purged.error';
export * from './errors/server-key-unavailable.error';
export {
  type PurgeableSession,
  type PurgePosition,
  type StoredSessionSummary,
  type StoredTranscript,
  type StoredTranscriptRecord,
  type StoredTranscriptSession,
  type StoredView,
} from './transcript.repository';
export { type GroupCommitStats } from './message-batcher';
