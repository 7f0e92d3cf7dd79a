/**
 * The relay's answers to `delivered` and `transcript_append` are part of the contracts in
 * libs/core; re-exported here for the relay's own imports.
 */
export { type DeliveredResult, type TranscriptAppendResult } from '@securechat/core';
