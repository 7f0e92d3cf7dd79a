import { createHash } from 'node:crypto';

import fc from 'fast-check';

import {
  type ChunkRecord,
  ChunkFormatError,
  chunkRecordPayload,
  decodeChunk,
  DIGEST_BYTES,
  encodeChunk,
  encodedRecordSize,
} from './transcript-chunk';

const direction = fc.constantFrom<'c2s' | 's2c'>('c2s', 's2c');
const plaintextRecord = fc.record({
  direction,
  chained: fc.boolean(),
  plaintext: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});
/** A record kept by digest (docs/PROTOCOL.md §10 item 25): 32 bytes in place of the plaintext. */
const digestRecord = fc.record({
  direction,
  chained: fc.boolean(),
  digest: fc
    .uint8Array({ minLength: DIGEST_BYTES, maxLength: DIGEST_BYTES })
    .map((bytes) => Buffer.from(bytes)),
});
const record: fc.Arbitrary<ChunkRecord> = fc.oneof(plaintextRecord, digestRecord);
const size = (r: ChunkRecord) => encodedRecordSize(chunkRecordPayload(r));

describe('transcript chunks', () => {
  it('decodes what it encodes, in order, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (records: ChunkRecord[]) => {
        const chunk = encodeChunk(records);
        expect(chunk.length).toBe(records.reduce((n, r) => n + size(r), 0));
        expect(decodeChunk(chunk)).toEqual(records);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses any truncation of a chunk instead of returning fewer records', () => {
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 10 }), fc.nat(), (records, cut) => {
        const chunk = encodeChunk(records);
        const boundaries = new Set<number>();
        let at = 0;
        for (const r of records) boundaries.add((at += size(r)));
        const length = cut % chunk.length;
        // A cut at a record boundary is a valid, shorter chunk; anywhere else it is an error.
        if (length === 0 || boundaries.has(length)) return;
        expect(() => decodeChunk(chunk.subarray(0, length))).toThrow(ChunkFormatError);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses unknown flag bits and lengths past the end', () => {
    const chunk = encodeChunk([{ direction: 's2c', chained: true, plaintext: Buffer.from('{}') }]);
    expect(decodeChunk(chunk)).toHaveLength(1);
    for (const unknown of [0b1000, 0x80, 0xff]) {
      const flags = Buffer.from(chunk);
      flags[0] = unknown;
      expect(() => decodeChunk(flags)).toThrow(/flags/);
    }
    const long = Buffer.from(chunk);
    long.writeUInt32BE(3, 1);
    expect(() => decodeChunk(long)).toThrow(/past the end/);
    expect(decodeChunk(Buffer.alloc(0))).toEqual([]);
  });

  it('keeps a record by digest: flag bit 2, the 32-byte SHA-256 in place of the plaintext', () => {
    const plaintext = Buffer.from(
      '{"type":"send","id":"x","to":"bob","body":"hi","ts":1,"sig":"AA=="}',
    );
    const digest = createHash('sha256').update(plaintext).digest();
    const chunk = encodeChunk([
      { direction: 's2c', chained: true, plaintext: Buffer.from('{"type":"login_ok"}') },
      { direction: 'c2s', chained: true, digest },
    ]);
    const at = size({
      direction: 's2c',
      chained: true,
      plaintext: Buffer.from('{"type":"login_ok"}'),
    });
    expect(chunk[at]).toBe(0b110); // c2s, chained, digest
    expect(chunk.readUInt32BE(at + 1)).toBe(32);
    expect(chunk.subarray(at + 5)).toEqual(digest);
    const [, decoded] = decodeChunk(chunk);
    expect(decoded).toEqual({ direction: 'c2s', chained: true, digest });
    expect(decoded!.plaintext).toBeUndefined();
    expect(chunk.includes(plaintext)).toBe(false);
  });

  it('refuses a digest record whose payload is not 32 bytes, on both sides', () => {
    const header = (flags: number, length: number) => {
      const bytes = Buffer.alloc(5 + length);
      bytes[0] = flags;
      bytes.writeUInt32BE(length, 1);
      return bytes;
    };
    for (const length of [0, 31, 33, 64]) {
      expect(() => decodeChunk(header(0b110, length))).toThrow(ChunkFormatError);
      expect(() => decodeChunk(header(0b110, length))).toThrow(/digest record of/);
      expect(() =>
        encodeChunk([{ direction: 'c2s', chained: true, digest: Buffer.alloc(length) }]),
      ).toThrow(RangeError);
    }
    expect(decodeChunk(header(0b100, 32))).toEqual([
      { direction: 'c2s', chained: false, digest: Buffer.alloc(32) },
    ]);
  });

  it('decodes any flags byte to a record or a ChunkFormatError, never anything else (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 40 }),
        (flags, payload) => {
          const bytes = Buffer.concat([Buffer.from([flags, 0, 0, 0, payload.length]), payload]);
          let records: ChunkRecord[];
          try {
            records = decodeChunk(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(ChunkFormatError);
            expect(flags > 0b111 || ((flags & 0b100) !== 0 && payload.length !== 32)).toBe(true);
            return;
          }
          expect(flags).toBeLessThanOrEqual(0b111);
          expect(records).toHaveLength(1);
          expect(records[0]!.digest !== undefined).toBe((flags & 0b100) !== 0);
          expect(encodeChunk(records)).toEqual(bytes);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
