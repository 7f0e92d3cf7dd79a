/**
 * Target `transcript-chunk`: libs/core's transcript chunk decoder (the storage form of a run of
 * transcript records, docs/PROTOCOL.md §8), which the relay reads back from the database.
 *
 * Input: the chunk bytes.
 *
 * Invariants: only ChunkFormatError; a chunk that decodes re-encodes to exactly the same bytes
 * (one spelling per transcript), its records' encoded sizes add up to its length, and every
 * plaintext is a view of the input within its bounds.
 */
import {
  ChunkFormatError,
  decodeChunk,
  encodeChunk,
  encodedRecordSize,
} from '../../libs/core/src/transcripts/transcript-chunk';
import { expectTyped, fuzzEntry, type FuzzTarget, invariant } from './harness';

export const target: FuzzTarget = {
  name: 'transcript-chunk',
  run(data: Buffer): Promise<void> {
    let records: ReturnType<typeof decodeChunk>;
    try {
      records = decodeChunk(data);
    } catch (error) {
      expectTyped(error, [ChunkFormatError], 'decodeChunk');
      return Promise.resolve();
    }
    let size = 0;
    for (const record of records) {
      invariant(
        record.direction === 'c2s' || record.direction === 's2c',
        'record without a direction',
      );
      invariant(record.plaintext.buffer === data.buffer, 'plaintext is not a view of the chunk');
      size += encodedRecordSize(record.plaintext);
    }
    invariant(size === data.length, `records cover ${size} of ${data.length} bytes`);
    invariant(encodeChunk(records).equals(data), 'chunk does not re-encode to the same bytes');
    return Promise.resolve();
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
