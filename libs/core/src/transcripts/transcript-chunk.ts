/**
 * The storage form of a run of transcript records (docs/PROTOCOL.md §8): consecutive records of
 * one session packed into one byte string, so that the gateway ships, and the relay stores, one
 * value per session per flush instead of one row per record. Not a wire format of the
 * protocol: the records inside are the byte-exact plaintexts docs/PROTOCOL.md §8.1 chains, or
 * — for a request the gateway refused before any service saw it — only the SHA-256 of one
 * (docs/PROTOCOL.md §10 item 25), which is all docs/PROTOCOL.md §8.1 needs to chain it.
 *
 * ```
 * chunk  = record*
 * record = u8 flags || u32be length || payload
 *          flags: bit 0 = s2c, bit 1 = chained, bit 2 = digest; the others are zero
 *          payload: the plaintext, or with `digest` its 32-byte SHA-256
 * ```
 * Positions are implicit: the chunk's first position, then one after the other.
 */

interface ChunkRecordBase {
  readonly direction: 'c2s' | 's2c';
  /**
   * Whether docs/PROTOCOL.md §8.1 counts it in its direction's chain (`bye`, `receipt`,
   * `countersign` are not).
   */
  readonly chained: boolean;
}

/** A record kept as it crossed the connection. */
export interface PlaintextChunkRecord extends ChunkRecordBase {
  readonly plaintext: Buffer;
  readonly digest?: undefined;
}

/**
 * A record kept by digest: `SHA-256(plaintext)` (DIGEST_BYTES), the value docs/PROTOCOL.md §8.1
 * folds into the chain, so the chain still recomputes without the plaintext.
 */
export interface DigestChunkRecord extends ChunkRecordBase {
  readonly digest: Buffer;
  readonly plaintext?: undefined;
}

/** One record as a chunk holds it: its plaintext, or only the plaintext's digest. */
export type ChunkRecord = PlaintextChunkRecord | DigestChunkRecord;

const HEADER_BYTES = 5;
const S2C = 0b001;
const CHAINED = 0b010;
const DIGEST = 0b100;
/** The size of a digest record's payload: one SHA-256. */
export const DIGEST_BYTES = 32;
/** No record plaintext is larger than a frame can carry (16 MiB is the largest max_frame). */
export const MAX_CHUNK_RECORD_BYTES = 16 * 1024 * 1024;

/** Thrown by `decodeChunk` for bytes that are not a well-formed chunk. */
export class ChunkFormatError extends Error {
  override readonly name = 'ChunkFormatError';
}

/** What a record stores after its header: the plaintext, or the digest. */
export function chunkRecordPayload(record: ChunkRecord): Buffer {
  return record.digest !== undefined ? record.digest : record.plaintext;
}

/**
 * The encoded size of one record with this payload (plaintext or digest): what a shipper
 * counts against its byte bound.
 */
export function encodedRecordSize(payload: Uint8Array): number {
  return HEADER_BYTES + payload.length;
}

/** Packs records, in order, into one chunk. */
export function encodeChunk(records: readonly ChunkRecord[]): Buffer {
  let size = 0;
  for (const record of records) {
    const payload = chunkRecordPayload(record);
    if (record.digest !== undefined && payload.length !== DIGEST_BYTES) {
      throw new RangeError(`encodeChunk: a digest is ${DIGEST_BYTES} bytes`);
    }
    if (payload.length > MAX_CHUNK_RECORD_BYTES) {
      throw new RangeError('encodeChunk: a record is larger than any frame');
    }
    size += encodedRecordSize(payload);
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const record of records) {
    const payload = chunkRecordPayload(record);
    out[at] =
      (record.direction === 's2c' ? S2C : 0) |
      (record.chained ? CHAINED : 0) |
      (record.digest !== undefined ? DIGEST : 0);
    out.writeUInt32BE(payload.length, at + 1);
    out.set(payload, at + HEADER_BYTES);
    at += encodedRecordSize(payload);
  }
  return out;
}

/**
 * Unpacks a chunk. Strict: unknown flag bits, a length past the end, a digest that is not
 * DIGEST_BYTES long, or trailing bytes are a ChunkFormatError, never a silently shortened
 * transcript. Payloads are views into `chunk`.
 */
export function decodeChunk(chunk: Buffer): ChunkRecord[] {
  if (!Buffer.isBuffer(chunk)) throw new TypeError('decodeChunk: expected a Buffer');
  const records: ChunkRecord[] = [];
  let at = 0;
  while (at < chunk.length) {
    if (chunk.length - at < HEADER_BYTES) throw new ChunkFormatError('truncated record header');
    const flags = chunk[at]!;
    if ((flags & ~(S2C | CHAINED | DIGEST)) !== 0) {
      throw new ChunkFormatError('unknown record flags');
    }
    const length = chunk.readUInt32BE(at + 1);
    const start = at + HEADER_BYTES;
    if (length > MAX_CHUNK_RECORD_BYTES || start + length > chunk.length) {
      throw new ChunkFormatError('record length past the end of the chunk');
    }
    const direction = flags & S2C ? 's2c' : 'c2s';
    const chained = (flags & CHAINED) !== 0;
    const payload = chunk.subarray(start, start + length);
    if (flags & DIGEST) {
      if (length !== DIGEST_BYTES) {
        throw new ChunkFormatError(`digest record of ${length} bytes, not ${DIGEST_BYTES}`);
      }
      records.push({ direction, chained, digest: payload });
    } else {
      records.push({ direction, chained, plaintext: payload });
    }
    at = start + length;
  }
  return records;
}
