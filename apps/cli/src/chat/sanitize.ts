/**
 * What may reach the terminal. Text from the network (message bodies, usernames, room names,
 * ids, error messages) and from transcript files is shown on a terminal, where it could
 * otherwise move the cursor, rewrite earlier lines or retitle the window (a forged "verified"
 * mark, a hidden message), reorder itself (bidi controls: `alice\u202Etxt.exe`), or hide
 * characters (zero-width spaces, tag characters, variation selectors) so that two different
 * names look the same.
 *
 * The rule: a character of a forbidden class (FORBIDDEN below: every control Cc, format Cf,
 * line/paragraph separator Zl/Zp, lone surrogate Cs, Default_Ignorable_Code_Point, variation
 * selector) is replaced by a visible escape, `<U+202E>` — the Unicode notation, uppercase hex,
 * at least four digits. Tab, CR and LF become a space instead, so one message never spoofs the
 * layout of another. Everything else is kept.
 *
 * Emoji stay legible, by the simplest rule that keeps them without opening a hiding place:
 * U+200D ZERO WIDTH JOINER is kept only between two pictographs (woman, joiner, laptop; the
 * family sequences; the first pictograph may carry a skin tone or U+FE0F), and one U+FE0E or
 * U+FE0F presentation selector only right after a pictograph (the red heart) or inside a keycap
 * (`1` U+FE0F U+20E3). There a joiner can only merge two pictures into one and a selector only
 * choose text or emoji style: neither can reorder, hide or imitate letters, and no chain of
 * selectors can follow one base, so nothing can be smuggled behind it. Anywhere else both are
 * escaped. Tag characters are always escaped, so the three subdivision flags (England,
 * Scotland, Wales) show as a black flag plus escapes: the price of a simple rule.
 *
 * Names (usernames, rooms, ids, fingerprints) are stricter (sanitizeName): the protocol allows
 * only ASCII there, so anything outside printable ASCII is escaped, look-alike letters too
 * (Cyrillic `а` is `<U+0430>`), and a name can never pass for another.
 *
 * Both are idempotent (an escape is plain ASCII, which stays as it is), so text sanitized twice
 * reads the same. A literal `<U+202E>` typed by someone shows the same as an escaped U+202E:
 * both are visible and harmless, which is all the escape has to guarantee.
 */

/** The characters that never reach the terminal as themselves (see the file comment). */
export const FORBIDDEN =
  /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Variation_Selector}]/u;
const FORBIDDEN_ALL = new RegExp(FORBIDDEN.source, 'gu');
const LAYOUT = /^[\t\n\r]$/;
const PICTOGRAPH = /^\p{Extended_Pictographic}$/u;
const EMOJI_MODIFIER = /^\p{Emoji_Modifier}$/u;
const KEYCAP_BASE = /^[#*0-9]$/;
const ZWJ = '\u200D';
const TEXT_STYLE = '\uFE0E';
const EMOJI_STYLE = '\uFE0F';
const KEYCAP = '\u20E3';
/** What a name may hold as itself: printable ASCII, no space. */
const NAME_CHAR = /^[\x21-\x7e]$/;

/** The visible stand-in for one code point: `<U+202E>`, `<U+E0041>`. */
export function visibleEscape(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  return `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/**
 * Whether a joiner or presentation selector is part of an emoji here. `before` is the last
 * code point already written (so the decision holds again on the output: idempotence),
 * `after` the next one of the input.
 */
function emojiGlue(char: string, before: string, after: string): boolean {
  if (char === ZWJ) {
    const joinable =
      PICTOGRAPH.test(before) || EMOJI_MODIFIER.test(before) || before === EMOJI_STYLE;
    // After U+FE0F only when that selector itself followed a pictograph: checked when it was kept.
    return joinable && PICTOGRAPH.test(after);
  }
  if (char === TEXT_STYLE || char === EMOJI_STYLE) {
    return PICTOGRAPH.test(before) || (KEYCAP_BASE.test(before) && after === KEYCAP);
  }
  return false;
}

/**
 * One line of peer-controlled text (a body, an error message) as it may be printed: tab, CR
 * and LF become spaces, every other forbidden character its visible escape (except the emoji
 * joiners described above). Idempotent.
 */
export function sanitizeForTerminal(text: string): string {
  const chars = codePoints(text);
  let out = '';
  let last = '';
  chars.forEach((char, i) => {
    let piece: string;
    if (LAYOUT.test(char)) piece = ' ';
    else if (!FORBIDDEN.test(char) || emojiGlue(char, last, chars[i + 1] ?? '')) piece = char;
    else piece = visibleEscape(char);
    out += piece;
    last = piece === char ? char : piece.slice(-1);
  });
  return out;
}

/**
 * A username, room name, id or fingerprint as it may be printed: printable ASCII stays, every
 * other character (space, controls, any non-ASCII letter) becomes its visible escape, so no
 * name can imitate another. Idempotent.
 */
export function sanitizeName(name: string): string {
  return codePoints(name)
    .map((char) => (NAME_CHAR.test(char) ? char : visibleEscape(char)))
    .join('');
}

/**
 * Text of several lines that may quote peer-controlled text (an error with hints): each line
 * sanitized on its own, the line breaks kept. The peer's part should already be sanitized where
 * it was quoted, so it cannot add lines of its own; this is the backstop at the edge.
 */
export function sanitizeLines(text: string): string {
  return text.split(/\r?\n/).map(sanitizeForTerminal).join('\n');
}

/**
 * JSON for a terminal or a pipe: the same value (any JSON parser reads it back unchanged), with
 * every forbidden character written as a `\uXXXX` escape — JSON.stringify leaves C1 controls,
 * bidi controls, U+2028/U+2029 and the rest raw. JSON has no raw character of them outside
 * strings, so the escapes are always inside one.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(FORBIDDEN_ALL, (char) => {
    let escaped = '';
    for (let i = 0; i < char.length; i += 1) {
      escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
    }
    return escaped;
  });
}

/** Code points, so a width count never splits a surrogate pair. */
export function codePoints(text: string): string[] {
  return [...text];
}

/** Pads or cuts to exactly `width` code points. */
export function fit(text: string, width: number): string {
  const chars = codePoints(text);
  if (chars.length >= width) return chars.slice(0, width).join('');
  return text + ' '.repeat(width - chars.length);
}

/**
 * Breaks a line into pieces of at most `width` code points (`restWidth` after the first), at
 * spaces where it can.
 */
export function wrap(text: string, width: number, restWidth = width): string[] {
  if (width < 1) return [];
  const next = Math.max(1, restWidth);
  const chars = codePoints(text);
  const lines: string[] = [];
  let start = 0;
  let limit = width;
  while (chars.length - start > limit) {
    let end = start + limit;
    const space = chars.lastIndexOf(' ', end);
    if (space > start + limit / 3) end = space + 1;
    lines.push(chars.slice(start, end).join('').trimEnd());
    start = end;
    limit = next;
  }
  lines.push(chars.slice(start).join(''));
  return lines;
}

/** Like wrap, with continuation lines indented by `indent` spaces (still within `width`). */
export function hangingWrap(text: string, width: number, indent: number): string[] {
  if (width <= indent) return wrap(text, width);
  const pad = ' '.repeat(indent);
  return wrap(text, width, width - indent).map((piece, i) => (i === 0 ? piece : pad + piece));
}
