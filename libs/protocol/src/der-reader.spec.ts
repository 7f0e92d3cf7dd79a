import fc from 'fast-check';

import { DER_TAG, DerError, DerReader } from './der-reader';

describe('DerReader (X.690 DER, strict)', () => {
  it('throws nothing but DerError on any input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const outer = new DerReader(bytes);
          const inner = outer.enter(DER_TAG.sequence);
          while (!inner.done) inner.read(inner.peekTag()!);
          outer.finish();
        } catch (error) {
          expect(error).toBeInstanceOf(DerError);
        }
      }),
    );
  });

  it('reads the short and the minimal long form of a length', () => {
    const long = new Uint8Array(200).fill(7);
    const reader = new DerReader(Uint8Array.of(0x04, 0x81, 200, ...long, 0x04, 0x01, 9));
    expect(reader.read(DER_TAG.octetString)).toEqual(long);
    expect(reader.read(DER_TAG.octetString)).toEqual(Uint8Array.of(9));
    reader.finish();
  });

  it.each([
    ['indefinite length', [0x30, 0x80, 0x00, 0x00]],
    ['long form below 128', [0x04, 0x81, 0x01, 0x00]],
    ['long form with a leading zero', [0x04, 0x82, 0x00, 0x81, ...new Array<number>(0x81).fill(0)]],
    ['truncated contents', [0x04, 0x05, 1, 2]],
    ['another tag', [0x02, 0x01, 0x01]],
  ])('refuses %s', (_what, bytes) => {
    expect(() => new DerReader(Uint8Array.from(bytes)).read(DER_TAG.octetString)).toThrow(DerError);
  });

  it('bounds the bytes of a long-form length', () => {
    const contents = new Uint8Array(256);
    const twoBytes = Uint8Array.of(0x04, 0x82, 0x01, 0x00, ...contents);
    expect(new DerReader(twoBytes, 2).read(DER_TAG.octetString)).toHaveLength(256);
    expect(() => new DerReader(twoBytes, 1).read(DER_TAG.octetString)).toThrow(/bad length/);
    expect(() => new DerReader(twoBytes, 5)).toThrow(RangeError);
  });

  it('reads minimal non-negative INTEGERs as their magnitude, and refuses the rest', () => {
    expect(new DerReader(Uint8Array.of(0x02, 0x02, 0x00, 0x80)).readUnsigned()).toEqual(
      Uint8Array.of(0x80),
    );
    expect(new DerReader(Uint8Array.of(0x02, 0x01, 0x00)).readUnsigned()).toEqual(Uint8Array.of(0));
    for (const bad of [
      [0x02, 0x00],
      [0x02, 0x01, 0x80],
      [0x02, 0x02, 0x00, 0x01],
    ]) {
      expect(() => new DerReader(Uint8Array.from(bad)).readUnsigned()).toThrow(DerError);
    }
  });

  it('refuses what is left after a structure', () => {
    const reader = new DerReader(Uint8Array.of(0x05, 0x00, 0x05, 0x00));
    reader.read(DER_TAG.null);
    expect(() => reader.finish()).toThrow(/trailing/);
  });
});
