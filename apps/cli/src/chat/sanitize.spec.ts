import fc from 'fast-check';

import {
  codePoints,
  fit,
  hangingWrap,
  sanitizeForTerminal,
  sanitizeLines,
  sanitizeName,
  terminalSafeJson,
  wrap,
} from './sanitize';

const RUNS = { numRuns: 500 };
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const ZWJ = '\u200D';
const VS15 = '\uFE0E';
const VS16 = '\uFE0F';

/**
 * The classes issue 7 names, written out here rather than taken from sanitize.ts: controls,
 * format characters (bidi, zero-width, soft hyphen, BOM, tags…), line and paragraph separators,
 * lone surrogates, variation selectors, and the other default-ignorable (invisible) characters.
 */
const FORBIDDEN_CLASSES = new RegExp(
  [
    '[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\p{Default_Ignorable_Code_Point}\\p{Variation_Selector}]',
    // The ones the issue names, spelled out (the classes above hold them all).
    '[\\u202A-\\u202E\\u2066-\\u2069\\u200B-\\u200F\\u2028\\u2029\\u061C\\uFEFF\\u180E\\u00AD]',
    '[\\u{E0000}-\\u{E007F}]',
    '[\\uFE00-\\uFE0F]',
    '[\\u{E0100}-\\u{E01EF}]',
  ].join('|'),
  'u',
);
const PICTOGRAPH = /^\p{Extended_Pictographic}$/u;
const SKIN_TONE = /^\p{Emoji_Modifier}$/u;

/**
 * Where a forbidden character is let through in sanitized text: the two emoji joiners, and only
 * in emoji (see sanitize.ts). Everything else forbidden must never appear.
 */
function allowedGlue(chars: string[], i: number): boolean {
  const [before = '', char, after = ''] = [chars[i - 1], chars[i], chars[i + 1]];
  const beforeBefore = chars[i - 2] ?? '';
  if (char === ZWJ) {
    const joinable =
      PICTOGRAPH.test(before) ||
      SKIN_TONE.test(before) ||
      (before === VS16 && PICTOGRAPH.test(beforeBefore));
    return joinable && PICTOGRAPH.test(after);
  }
  if (char === VS15 || char === VS16) {
    return PICTOGRAPH.test(before) || (/^[#*0-9]$/.test(before) && after === '\u20E3');
  }
  return false;
}

/** The forbidden characters left in `text`, with their index, outside allowed emoji glue. */
function forbiddenIn(text: string): string[] {
  const chars = codePoints(text);
  return chars.flatMap((char, i) =>
    FORBIDDEN_CLASSES.test(char) && !allowedGlue(chars, i)
      ? [`${i}:U+${char.codePointAt(0)?.toString(16)}`]
      : [],
  );
}

const codePoint = (min: number, max: number) =>
  fc.integer({ min, max }).map((code) => String.fromCodePoint(code));

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
  {
    weight: 3,
    arbitrary: fc.oneof(
      codePoint(0x202a, 0x202e),
      codePoint(0x2066, 0x2069),
      codePoint(0x200b, 0x200f),
      codePoint(0x2028, 0x2029),
      codePoint(0xe0000, 0xe007f),
      codePoint(0xfe00, 0xfe0f),
      codePoint(0xe0100, 0xe01ef),
      codePoint(0xd800, 0xdfff), // lone surrogates (or, two in a row, a pair)
      fc.constantFrom('\u061C', '\uFEFF', '\u180E', '\u00AD', '\u3164', '\u034F', '\u2060'),
    ),
  },
  // Emoji parts, so that the joiner rules are exercised in and out of context.
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ZWJ,
      VS15,
      VS16,
      '👩',
      '💻',
      '❤',
      '🏳',
      '🌈',
      '🏽',
      '1',
      '#',
      '\u20E3',
    ),
  },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'x', 'é', ' ') },
);
const text = fc.string({ unit, maxLength: 300 });
const nonSpace = (s: string): string => s.replace(/\s/g, '');

describe('sanitizeForTerminal', () => {
  it('leaves no character of the forbidden classes, outside emoji joiners in emoji', () => {
    fc.assert(
      fc.property(text, (s) => {
        const out = sanitizeForTerminal(s);
        expect(forbiddenIn(out)).toEqual([]);
        expect(out).not.toMatch(CONTROL);
      }),
      RUNS,
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(text, (s) => {
        const once = sanitizeForTerminal(s);
        expect(sanitizeForTerminal(once)).toBe(once);
      }),
      RUNS,
    );
  });

  it('keeps text without forbidden characters as it is', () => {
    const plain = fc.string({
      unit: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
      maxLength: 100,
    });
    fc.assert(
      fc.property(plain, (s) => {
        fc.pre(!FORBIDDEN_CLASSES.test(s));
        expect(sanitizeForTerminal(s)).toBe(s);
      }),
      RUNS,
    );
  });

  it('turns layout characters into spaces and other controls into visible escapes', () => {
    expect(sanitizeForTerminal('a\nb\r\tc')).toBe('a b  c');
    expect(sanitizeForTerminal('\u001b[2J\u009b1m\u007f')).toBe('<U+001B>[2J<U+009B>1m<U+007F>');
    expect(sanitizeForTerminal('plain ✓ text, ünïcödé, 日本語')).toBe(
      'plain ✓ text, ünïcödé, 日本語',
    );
  });

  it.each([
    ['a right-to-left override', 'invoice_\u202Egpj.exe', 'invoice_<U+202E>gpj.exe'],
    ['an isolate', 'x\u2067y\u2069', 'x<U+2067>y<U+2069>'],
    ['the Arabic letter mark', 'a\u061Cb', 'a<U+061C>b'],
    [
      'zero-width characters',
      'ad\u200Bmin\u200C\u200D\u2060',
      'ad<U+200B>min<U+200C><U+200D><U+2060>',
    ],
    ['marks that only steer direction', '\u200E\u200F', '<U+200E><U+200F>'],
    ['line and paragraph separators', 'a\u2028b\u2029c', 'a<U+2028>b<U+2029>c'],
    ['a byte order mark', '\uFEFFhi', '<U+FEFF>hi'],
    ['the Mongolian vowel separator', 'a\u180Eb', 'a<U+180E>b'],
    ['a soft hyphen', 'pass\u00ADword', 'pass<U+00AD>word'],
    [
      'tag characters (hidden ASCII)',
      'hi\u{E0041}\u{E0042}\u{E007F}',
      'hi<U+E0041><U+E0042><U+E007F>',
    ],
    ['variation selectors after letters', 'a\uFE0F\u{E0100}', 'a<U+FE0F><U+E0100>'],
    ['a chain of selectors after an emoji', '😀\uFE0F\uFE0F\uFE01', '😀\uFE0F<U+FE0F><U+FE01>'],
    ['a Hangul filler (an invisible letter)', '\u3164', '<U+3164>'],
    ['lone surrogates', 'a\uD800b\uDFFF', 'a<U+D800>b<U+DFFF>'],
  ])('escapes %s visibly', (_case, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });

  it.each([
    ['a family', '👨\u200D👩\u200D👧'],
    ['a profession with a skin tone', '👩🏽\u200D💻'],
    ['a flag with a presentation selector', '🏳\uFE0F\u200D🌈'],
    ['an emoji-style heart', '❤\uFE0F'],
    ['a text-style emoji', '☺\uFE0E'],
    ['a keycap', '1\uFE0F\u20E3'],
    ['an eye in a speech bubble', '👁\uFE0F\u200D🗨\uFE0F'],
  ])('keeps %s legible', (_case, emoji) => {
    expect(sanitizeForTerminal(`hi ${emoji}!`)).toBe(`hi ${emoji}!`);
  });

  it('escapes a joiner that is not between two pictographs', () => {
    expect(sanitizeForTerminal('👩\u200Da')).toBe('👩<U+200D>a');
    expect(sanitizeForTerminal('a\u200D👩')).toBe('a<U+200D>👩');
    expect(sanitizeForTerminal('👩\u200D\u200D💻')).toBe('👩<U+200D><U+200D>💻');
    expect(sanitizeForTerminal('1\uFE0F')).toBe('1<U+FE0F>');
  });
});

describe('sanitizeName', () => {
  const name = fc.string({ unit, maxLength: 60 });

  it('leaves only printable ASCII, and is idempotent', () => {
    fc.assert(
      fc.property(name, (s) => {
        const out = sanitizeName(s);
        expect(out).toMatch(/^[\x21-\x7e]*$/);
        expect(forbiddenIn(out)).toEqual([]);
        expect(sanitizeName(out)).toBe(out);
      }),
      RUNS,
    );
  });

  it('keeps every valid username and room name as it is', () => {
    const valid = fc.stringMatching(/^#?[a-z0-9_-]{3,32}$/);
    fc.assert(
      fc.property(valid, (s) => expect(sanitizeName(s)).toBe(s)),
      RUNS,
    );
  });

  it('shows look-alikes, spaces and joiners, so no name passes for another', () => {
    expect(sanitizeName('\u0430lice')).toBe('<U+0430>lice');
    expect(sanitizeName('alice\u200B')).toBe('alice<U+200B>');
    expect(sanitizeName('bob ✓')).toBe('bob<U+0020><U+2713>');
    expect(sanitizeName('eve\u202E')).toBe('eve<U+202E>');
  });
});

describe('sanitizeLines', () => {
  it('sanitizes each line and keeps the line breaks', () => {
    expect(sanitizeLines('one\u202E\r\ntwo\tthree\nfour\u001b')).toBe(
      'one<U+202E>\ntwo three\nfour<U+001B>',
    );
  });
});

describe('terminalSafeJson', () => {
  it('is the same JSON value, with no forbidden character written raw', () => {
    fc.assert(
      fc.property(text, (s) => {
        const value = { body: s, list: [s] };
        const json = terminalSafeJson(value);
        expect(JSON.parse(json)).toEqual(value);
        expect(json).not.toMatch(FORBIDDEN_CLASSES);
      }),
      RUNS,
    );
  });

  it('escapes bidi controls, C1 controls and tags as \\u escapes', () => {
    expect(terminalSafeJson({ from: 'a\u202Eb\u009b\u{E0041}' })).toBe(
      '{"from":"a\\u202eb\\u009b\\udb40\\udc41"}',
    );
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
