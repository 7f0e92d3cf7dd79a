import fc from 'fast-check';

import { codePoints, fit, hangingWrap, sanitizeForTerminal, wrap } from './sanitize';

const RUNS = { numRuns: 500 };
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Any code point, with the dangerous ones (and spaces, for wrapping) much more likely. */
const unit = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '\u001b',
      '\u009b',
      '\u0007',
      '\u0000',
      '\u007f',
      '\u0085',
      '\n',
      '\r',
      '\t',
      ' ',
      ' ',
      '😀',
      '\u00a0',
    ),
  },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'x', 'é', ' ') },
);
const text = fc.string({ unit, maxLength: 300 });
const nonSpace = (s: string): string => s.replace(/\s/g, '');

describe('sanitizeForTerminal', () => {
  it('leaves no C0/C1 control, DEL or ESC in any string, and keeps the length', () => {
    fc.assert(
      fc.property(text, (s) => {
        const out = sanitizeForTerminal(s);
        expect(out).not.toMatch(CONTROL);
        expect(out).not.toContain('\u001b');
        expect(codePoints(out)).toHaveLength(codePoints(s).length);
      }),
      RUNS,
    );
  });

  it('turns layout characters into spaces and other controls into U+FFFD', () => {
    expect(sanitizeForTerminal('a\nb\r\tc')).toBe('a b  c');
    expect(sanitizeForTerminal('\u001b[2J\u009b1m\u007f')).toBe('\uFFFD[2J\uFFFD1m\uFFFD');
    expect(sanitizeForTerminal('plain ✓ text')).toBe('plain ✓ text');
  });
});

describe('fit', () => {
  it('returns exactly width code points', () => {
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 200 }), (s, width) => {
        const out = fit(s, width);
        expect(codePoints(out)).toHaveLength(width);
        const kept = Math.min(width, codePoints(s).length);
        expect(codePoints(out).slice(0, kept)).toEqual(codePoints(s).slice(0, kept));
      }),
      RUNS,
    );
  });

  it('never splits a surrogate pair', () => {
    expect(fit('😀😀', 1)).toBe('😀');
    expect(fit('😀', 3)).toBe('😀  ');
  });
});

describe('wrap', () => {
  it('keeps every piece within its width and every non-space character, in order', () => {
    fc.assert(
      fc.property(
        text,
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        (s, width, restWidth) => {
          const pieces = wrap(s, width, restWidth);
          pieces.forEach((piece, i) => {
            expect(codePoints(piece).length).toBeLessThanOrEqual(i === 0 ? width : restWidth);
          });
          expect(nonSpace(pieces.join(''))).toBe(nonSpace(s));
        },
      ),
      RUNS,
    );
  });

  it('breaks at spaces where it can', () => {
    expect(wrap('hello brave new world', 11)).toEqual(['hello brave', 'new world']);
    expect(wrap('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(wrap('', 5)).toEqual(['']);
  });
});

describe('hangingWrap', () => {
  it('keeps indented pieces within the width and every non-space character, in order', () => {
    fc.assert(
      fc.property(
        text,
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 8 }),
        (s, width, indent) => {
          const pieces = hangingWrap(s, width, indent);
          for (const piece of pieces) {
            expect(codePoints(piece).length).toBeLessThanOrEqual(width);
          }
          expect(nonSpace(pieces.join(''))).toBe(nonSpace(s));
        },
      ),
      RUNS,
    );
  });

  it('indents continuation lines', () => {
    expect(hangingWrap('aaaa bbbb cccc', 6, 2)).toEqual(['aaaa', '  bbbb', '  cccc']);
  });
});
