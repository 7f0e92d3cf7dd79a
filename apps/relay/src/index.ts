/** apps/relay: the relay service (docs/PROTOCOL.md §7.4, §8) as a Nest module. */
export * from './relay.module';
export * from './relay.service';
export * from './relay.results';
export * from './transcript.service';
export {
  type StoredTranscript,
  type StoredTranscriptRecord,
  type StoredTranscriptSession,
  type StoredView,
} from './transcript.repository';
export { type GroupCommitStats } from './message-batcher';
