/**
 * Property tests of the PROTOCOL.md §1 notation and the PROTOCOL.md §2 base64 rule (encoding.ts).
 */
import fc from 'fast-check';

import {
  decodeCanonicalBase64,
  fromBase64,
  isCanonicalBase64,
  label,
  lengthPrefixed,
  toBase64,
  u32,
  u64,
  utf8,
} from './encoding';
import { ProtocolError } from './errors/protocol-error';

const RUNS = { numRuns: 1000 };
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Reference: decode strictly by RFC 4648 §4 (alphabet, 4-character groups, `=` only as the
 * last one or two characters), then re-encode; canonical iff the re-encoding is `text`.
 */
function referenceDecode(text: string): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  const out: number[] = [];
  for (let g = 0; g < text.length; g += 4) {
    const group = text.slice(g, g + 4);
    const last = g + 4 === text.length;
    const pad = last && group.endsWith('==') ? 2 : last && group.endsWith('=') ? 1 : 0;
    let bits = 0;
    for (let i = 0; i < 4; i++) {
      const value = i < 4 - pad ? ALPHABET.indexOf(group[i]!) : 0;
      if (value < 0) return undefined;
      bits = (bits << 6) | value;
    }
    out.push((bits >> 16) & 0xff, (bits >> 8) & 0xff, bits & 0xff);
    out.length -= pad;
  }
  return Buffer.from(out);
}

function referenceCanonical(text: string): boolean {
  const bytes = referenceDecode(text);
  return bytes !== undefined && bytes.toString('base64') === text;
}

const bytesArb = fc.uint8Array({ maxLength: 64 });

/** Strings near base64: canonical encodings, their mutations, and strings over a base64-ish alphabet. */
const base64ishArb: fc.Arbitrary<string> = (() => {
  const canonical = bytesArb.map((b) => Buffer.from(b).toString('base64'));
  const oddChar = fc.constantFrom(
    ...ALPHABET.slice(0, 8),
    '+',
    '/',
    '=',
    '-',
    '_',
    ' ',
    '\n',
    '\r',
    '\t',
    '.',
    '\0',
    'é',
    '\ud800',
    '😀',
  );
  const mutated = fc
    .tuple(canonical, fc.nat(), oddChar, fc.constantFrom('replace', 'insert', 'delete', 'strip'))
    .map(([s, at, c, how]) => {
      const i = s.length === 0 ? 0 : at % s.length;
      switch (how) {
        case 'replace':
          return s.slice(0, i) + c + s.slice(i + 1);
        case 'insert':
          return s.slice(0, i) + c + s.slice(i);
        case 'delete':
          return s.slice(0, i) + s.slice(i + 1);
        case 'strip':
          return s.replace(/=+$/, '');
      }
    });
  // Last character of a padded group chosen freely: non-zero trailing bits (e.g. 'YR==').
  const trailing = fc
    .tuple(fc.uint8Array({ maxLength: 30 }), fc.integer({ min: 0, max: 63 }), fc.constantFrom(1, 2))
    .map(([b, v, pad]) => {
      const body = Buffer.from(b).toString('base64');
      const head = pad === 2 ? 'Y' : 'YW';
      return `${body}${head}${ALPHABET[v]}${'='.repeat(pad)}`;
    });
  const free = fc.string({ unit: fc.oneof(oddChar, fc.constantFrom(...ALPHABET)), maxLength: 16 });
  return fc.oneof(canonical, mutated, trailing, free, fc.string({ unit: 'binary', maxLength: 12 }));
})();

describe('isCanonicalBase64', () => {
  it('agrees with a strict decode/re-encode reference', () => {
    fc.assert(
      fc.property(base64ishArb, (text) => {
        const canonical = referenceCanonical(text);
        expect(isCanonicalBase64(text)).toBe(canonical);
        const decoded = decodeCanonicalBase64(text);
        if (canonical) expect(decoded?.equals(referenceDecode(text)!)).toBe(true);
        else expect(decoded).toBeUndefined();
      }),
      RUNS,
    );
  });

  it('accepts the encoding of any bytes, and fromBase64 returns those bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 16 }), (bytes, start) => {
        // A view with a byteOffset, as a Buffer slice would be.
        const backing = new Uint8Array(start + bytes.length);
        backing.set(bytes, start);
        const view = backing.subarray(start);
        const text = toBase64(view);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(isCanonicalBase64(text)).toBe(true);
        expect(fromBase64(text, 'f').equals(Buffer.from(bytes))).toBe(true);
        expect(fromBase64(text, 'f', bytes.length).equals(Buffer.from(bytes))).toBe(true);
      }),
      RUNS,
    );
  });

  it('fromBase64 rejects non-canonical text and wrong lengths with bad_frame, naming only the field', () => {
    fc.assert(
      fc.property(base64ishArb, fc.nat({ max: 40 }), (text, length) => {
        const decoded = referenceCanonical(text) ? referenceDecode(text) : undefined;
        let error: unknown;
        let result: Buffer | undefined;
        try {
          result = fromBase64(text, 'the_field', length);
        } catch (e) {
          error = e;
        }
        if (decoded !== undefined && decoded.length === length) {
          expect(error).toBeUndefined();
          expect(result!.equals(decoded)).toBe(true);
          return;
        }
        expect(error).toBeInstanceOf(ProtocolError);
        expect((error as ProtocolError).code).toBe('bad_frame');
        // A fixed text naming the field, never quoting the value.
        expect((error as ProtocolError).message).toMatch(
          /^the_field: (not canonical padded base64|expected \d+ bytes)$/,
        );
      }),
      RUNS,
    );
  });

  it('decides the §2 examples', () => {
    expect(isCanonicalBase64('')).toBe(true);
    expect(isCanonicalBase64('YQ==')).toBe(true);
    expect(isCanonicalBase64('YWI=')).toBe(true);
    expect(isCanonicalBase64('YWJj')).toBe(true);
    expect(isCanonicalBase64('+/+/')).toBe(true);
    for (const bad of [
      'YQ', // missing padding
      'YQ=',
      'YWI',
      'YR==', // non-zero trailing bits
      'YWJ=',
      'YQ==YQ==', // padding inside
      'YQ== ',
      ' YQ==',
      'YW\nJj',
      'YW Jj',
      '-_-_', // URL-safe alphabet
      'YQ===',
      '====',
      'Y===',
      'YWJjZA',
      'ＹＷＪｊ', // full-width letters
    ]) {
      expect([bad, isCanonicalBase64(bad)]).toEqual([bad, false]);
    }
  });
});

describe('u32', () => {
  it('is big-endian for every value in 0..2^32-1', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.nat({ max: 0xffff_ffff }), fc.constantFrom(0, 1, 255, 256, 0xffff_ffff)),
        (n) => {
          const out = u32(n);
          expect(out).toHaveLength(4);
          expect(out[0]! * 2 ** 24 + out[1]! * 2 ** 16 + out[2]! * 2 ** 8 + out[3]!).toBe(n);
        },
      ),
      RUNS,
    );
  });

  it('refuses anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ max: -1 }),
          fc.double({ min: 2 ** 32, noNaN: true }),
          fc.double({ noNaN: false }).filter((x) => !Number.isInteger(x)),
          fc.constantFrom(-1, 2 ** 32, 0.5, NaN, Infinity, -Infinity),
        ),
        (n) => {
          expect(() => u32(n)).toThrow(RangeError);
        },
      ),
      RUNS,
    );
  });
});

describe('u64', () => {
  it('is big-endian for safe integers and for bigints in 0..2^64-1', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.maxSafeNat(),
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.constantFrom<number | bigint>(0, 2 ** 53 - 1, 2n ** 53n, 2n ** 64n - 1n),
        ),
        (n) => {
          const out = u64(n);
          expect(out).toHaveLength(8);
          expect(BigInt(`0x${out.toString('hex')}`)).toBe(BigInt(n));
        },
      ),
      RUNS,
    );
  });

  it('refuses negatives, unsafe numbers, non-integers and 2^64', () => {
    const bad: Array<number | bigint> = [-1, -1n, 2 ** 53, 2 ** 64, 2n ** 64n, 0.5, NaN, Infinity];
    for (const n of bad) expect(() => u64(n)).toThrow(RangeError);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.bigInt({ max: -1n }),
          fc.bigInt({ min: 2n ** 64n }),
          fc.integer({ max: -1 }),
          fc.double({ min: 2 ** 53, noNaN: true }),
          fc.double().filter((x) => !Number.isInteger(x)),
        ),
        (n) => {
          expect(() => u64(n)).toThrow(RangeError);
        },
      ),
      RUNS,
    );
  });
});

describe('utf8 and lengthPrefixed', () => {
  /** Strings that may hold lone surrogates. */
  const anyString = fc.string({
    unit: fc.oneof(
      { weight: 9, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      },
    ),
    maxLength: 40,
  });

  it('encodes well-formed text as UTF-8 and refuses lone surrogates', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        if (!s.isWellFormed()) {
          expect(() => utf8(s)).toThrow(RangeError);
          expect(() => lengthPrefixed(s)).toThrow(RangeError);
          return;
        }
        const bytes = Buffer.from(new TextEncoder().encode(s));
        expect(utf8(s).equals(bytes)).toBe(true);
        const prefixed = lengthPrefixed(s);
        expect(prefixed.readUInt32BE(0)).toBe(bytes.length);
        expect(prefixed.subarray(4).equals(bytes)).toBe(true);
      }),
      RUNS,
    );
  });

  it('prefixes bytes with their u32 length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const out = lengthPrefixed(bytes);
        expect(out.equals(Buffer.concat([u32(bytes.length), bytes]))).toBe(true);
      }),
      RUNS,
    );
    expect(lengthPrefixed('')).toEqual(Buffer.from([0, 0, 0, 0]));
    expect(lengthPrefixed('é')).toEqual(Buffer.from([0, 0, 0, 2, 0xc3, 0xa9]));
    expect(lengthPrefixed(new Uint8Array([1, 2, 3]))).toEqual(Buffer.from([0, 0, 0, 3, 1, 2, 3]));
    expect(() => lengthPrefixed('\ud83d')).toThrow(RangeError);
    expect(() => lengthPrefixed('a\udc00b')).toThrow(RangeError);
  });
});

describe('label', () => {
  it('is ASCII followed by one zero byte, for non-empty printable ASCII only', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ minLength: 1, maxLength: 40 }), // printable ASCII
          fc.string({ unit: 'binary-ascii', maxLength: 12 }),
          fc.string({ unit: 'binary', maxLength: 6 }),
        ),
        (s) => {
          const printable = s.length > 0 && [...s].every((c) => c >= ' ' && c <= '~');
          if (!printable) {
            expect(() => label(s)).toThrow(RangeError);
            return;
          }
          const out = label(s);
          expect(out).toHaveLength(s.length + 1);
          expect(out[s.length]).toBe(0);
          expect(out.subarray(0, s.length).toString('latin1')).toBe(s);
        },
      ),
      RUNS,
    );
  });

  it('matches the §3 label bytes and refuses the rest', () => {
    expect(label('SecureChat v1 key').toString('hex')).toBe(
      Buffer.from('SecureChat v1 key\0', 'ascii').toString('hex'),
    );
    for (const bad of ['', 'a\0', 'tab\t', 'new\nline', 'é', 'del\x7f', '\x1f']) {
      expect(() => label(bad)).toThrow(RangeError);
    }
  });
});
