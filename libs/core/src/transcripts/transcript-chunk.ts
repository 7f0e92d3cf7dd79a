/**
 * The storage form of a run of transcript records (docs/PROTOCOL.md §8): consecutive records of
 * one session packed into one byte string, so that the gateway ships, and the relay stores, one
 * value per session per flush instead of one row per record. Not a wire format of the
 * protocol: the records inside are the byte-exact plaintexts §7 chains.
 *
 * ```
 * chunk  = record*
 * record = u8 flags || u32be length || plaintext      flags: bit 0 = s2c, bit 1 = chained
 * ```
 * Positions are implicit: the chunk's first position, then one after the other.
 */

/** One record as a chunk holds it. */
export interface ChunkRecord {
  readonly direction: 'c2s' | 's2c';
  /** Whether §7 counts it in its direction's chain (`bye`, `receipt`, `countersign` are not). */
  readonly chained: boolean;
  readonly plaintext: Buffer;
}

const HEADER_BYTES = 5;
const S2C = 0b01;
const CHAINED = 0b10;
/** No record plaintext is larger than a frame can carry (16 MiB is the largest max_frame). */
export const MAX_CHUNK_RECORD_BYTES = 16 * 1024 * 1024;

/** Thrown by `decodeChunk` for bytes that are not a well-formed chunk. */
export class ChunkFormatError extends Error {
  override readonly name = 'ChunkFormatError';
}

/** The encoded size of one record: what a shipper counts against its byte bound. */
export function encodedRecordSize(plaintext: Uint8Array): number {
  return HEADER_BYTES + plaintext.length;
}

/** Packs records, in order, into one chunk. */
export function encodeChunk(records: readonly ChunkRecord[]): Buffer {
  let size = 0;
  for (const record of records) {
    if (record.plaintext.length > MAX_CHUNK_RECORD_BYTES) {
      throw new RangeError('encodeChunk: a record is larger than any frame');
    }
    size += encodedRecordSize(record.plaintext);
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const record of records) {
    out[at] = (record.direction === 's2c' ? S2C : 0) | (record.chained ? CHAINED : 0);
    out.writeUInt32BE(record.plaintext.length, at + 1);
    out.set(record.plaintext, at + HEADER_BYTES);
    at += encodedRecordSize(record.plaintext);
  }
  return out;
}

/**
 * Unpacks a chunk. Strict: unknown flag bits, a length past the end, or trailing bytes are a
 * ChunkFormatError, never a silently shortened transcript. Plaintexts are views into `chunk`.
 */
export function decodeChunk(chunk: Buffer): ChunkRecord[] {
  if (!Buffer.isBuffer(chunk)) throw new TypeError('decodeChunk: expected a Buffer');
  const records: ChunkRecord[] = [];
  let at = 0;
  while (at < chunk.length) {
    if (chunk.length - at < HEADER_BYTES) throw new ChunkFormatError('truncated record header');
    const flags = chunk[at]!;
    if ((flags & ~(S2C | CHAINED)) !== 0) throw new ChunkFormatError('unknown record flags');
    const length = chunk.readUInt32BE(at + 1);
    const start = at + HEADER_BYTES;
    if (length > MAX_CHUNK_RECORD_BYTES || start + length > chunk.length) {
      throw new ChunkFormatError('record length past the end of the chunk');
    }
    records.push({
      direction: flags & S2C ? 's2c' : 'c2s',
      chained: (flags & CHAINED) !== 0,
      plaintext: chunk.subarray(start, start + length),
    });
    at = start + length;
  }
  return records;
}
