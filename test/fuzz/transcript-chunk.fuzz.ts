/**
 * Target `transcript-chunk`: libs/core's transcript chunk decoder (the storage form of a run of
 * transcript records, docs/PROTOCOL.md §8; records kept by digest, docs/PROTOCOL.md §10 item 25),
 * which the relay reads back from the database.
 *
 * Input: the chunk bytes.
 *
 * Invariants: only ChunkFormatError; a chunk that decodes re-encodes to exactly the same bytes
 * (one spelling per transcript), its records' encoded sizes add up to its length, every
 * payload (plaintext or digest) is a view of the input within its bounds, and every digest is
 * 32 bytes.
 */
import {
  ChunkFormatError,
  chunkRecordPayload,
  decodeChunk,
  DIGEST_BYTES,
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
      const payload = chunkRecordPayload(record);
      invariant(payload.buffer === data.buffer, 'payload is not a view of the chunk');
      invariant(
        record.digest === undefined || record.digest.length === DIGEST_BYTES,
        `a digest of ${payload.length} bytes`,
      );
      size += encodedRecordSize(payload);
    }
    invariant(size === data.length, `records cover ${size} of ${data.length} bytes`);
    invariant(encodeChunk(records).equals(data), 'chunk does not re-encode to the same bytes');
    return Promise.resolve();
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
