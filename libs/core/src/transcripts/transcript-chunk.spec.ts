import fc from 'fast-check';

import {
  type ChunkRecord,
  ChunkFormatError,
  decodeChunk,
  encodeChunk,
  encodedRecordSize,
} from './transcript-chunk';

const record = fc.record({
  direction: fc.constantFrom<'c2s' | 's2c'>('c2s', 's2c'),
  chained: fc.boolean(),
  plaintext: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
});

describe('transcript chunks', () => {
  it('decodes what it encodes, in order, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (records: ChunkRecord[]) => {
        const chunk = encodeChunk(records);
        expect(chunk.length).toBe(records.reduce((n, r) => n + encodedRecordSize(r.plaintext), 0));
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
        for (const r of records) boundaries.add((at += encodedRecordSize(r.plaintext)));
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
    const flags = Buffer.from(chunk);
    flags[0] = 0b100;
    expect(() => decodeChunk(flags)).toThrow(/flags/);
    const long = Buffer.from(chunk);
    long.writeUInt32BE(3, 1);
    expect(() => decodeChunk(long)).toThrow(/past the end/);
    expect(decodeChunk(Buffer.alloc(0))).toEqual([]);
  });
});
