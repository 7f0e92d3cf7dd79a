/**
 * Text from the network is shown on a terminal: a body with escape sequences could otherwise
 * move the cursor, rewrite earlier lines or retitle the window (a forged "verified" mark, a
 * hidden message). Every C0/C1 control and DEL becomes a visible U+FFFD; newlines and tabs
 * become spaces, so one message never spoofs the layout of another.
 */
export function sanitizeForTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\t\n\r]/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD');
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
