/**
 * Renders the chat model into exactly `height` rows of exactly `width` columns (plain text;
 * the terminal driver adds the colours). Layout, top to bottom: the status bar, the
 * conversation list beside the message pane, a rule naming the conversation, the input line.
 * Usable from 80×24 down; below 60 columns the list is dropped.
 */
import { type ChatLine, type ChatModel, STATUS_KEY, verificationMark } from './chat-model';
import { codePoints, fit, hangingWrap, sanitizeForTerminal, sanitizeName } from './sanitize';

export const LIST_WIDTH = 20;
const MIN_WIDTH_FOR_LIST = 60;
export const MIN_ROWS = 6;
export const MIN_COLUMNS = 20;

export interface Screen {
  readonly rows: string[];
  /** Where the cursor goes: the end of the input line. */
  readonly cursorRow: number;
  readonly cursorColumn: number;
}

function clock(ts: number): string {
  const date = new Date(ts);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

/** One chat line as display text: "12:01 alice ✓ hello". */
export function formatLine(line: ChatLine): string {
  const mark = verificationMark(line.state);
  const who = line.from === undefined ? (line.state.kind === 'error' ? '!' : '*') : line.from;
  const stamp = clock(line.ts);
  return line.from === undefined
    ? `${stamp} ${who} ${line.text}`
    : `${stamp} ${who}${mark === '' ? '' : ` ${mark}`}: ${line.text}`;
}

/** Keys come from the server's `from`/`to`, which nothing validates: shown as names. */
function title(key: string): string {
  return key === STATUS_KEY ? 'status' : sanitizeName(key);
}

export function renderChat(model: ChatModel, width: number, height: number): Screen {
  const w = Math.max(width, MIN_COLUMNS);
  const h = Math.max(height, MIN_ROWS);
  const bodyRows = h - 3;
  const showList = w >= MIN_WIDTH_FOR_LIST;
  const paneWidth = showList ? w - LIST_WIDTH - 1 : w;

  // The header names who is signed in: no character of it may disguise that name.
  const status = ` SecureChat · ${sanitizeName(model.me)} · ${sanitizeForTerminal(model.status)}`;
  const rows: string[] = [fit(status, w)];

  const list = showList ? renderList(model, bodyRows) : [];
  const pane = renderPane(model, paneWidth, bodyRows);
  for (let i = 0; i < bodyRows; i += 1) {
    const right = pane[i] ?? '';
    rows.push(
      showList ? `${fit(list[i] ?? '', LIST_WIDTH)}│${fit(right, paneWidth)}` : fit(right, w),
    );
  }

  const scrolled = model.scroll > 0 ? ` (scrolled up ${model.scroll})` : '';
  const rule = `── ${title(model.current)}${scrolled} `;
  const hint = ' Tab: next · PgUp/PgDn · /help ──';
  const fill = Math.max(0, w - codePoints(rule).length - codePoints(hint).length);
  rows.push(fit(rule + '─'.repeat(fill) + hint, w));

  const prompt = '> ';
  const room = w - prompt.length - 1;
  // Pasted text may hold C1 controls (the key handler only drops C0): never drawn raw.
  const input = codePoints(sanitizeForTerminal(model.input));
  const visible = input.slice(Math.max(0, input.length - room)).join('');
  rows.push(fit(prompt + visible, w));
  return { rows, cursorRow: h - 1, cursorColumn: prompt.length + codePoints(visible).length };
}

function renderList(model: ChatModel, rows: number): string[] {
  const entries = model.conversations.map((c) => {
    const marker = c.key === model.current ? '>' : ' ';
    const unread = c.unread > 0 ? ` (${c.unread > 999 ? '999+' : c.unread})` : '';
    const name = title(c.key);
    const room = LIST_WIDTH - 2 - unread.length;
    return `${marker} ${fit(name, Math.max(room, 1)).trimEnd()}${unread}`;
  });
  // Keep the current conversation visible when the list is longer than the pane.
  const index = model.conversations.findIndex((c) => c.key === model.current);
  const start = Math.max(0, Math.min(index - rows + 1, entries.length - rows));
  return entries.slice(Math.max(0, start), Math.max(0, start) + rows);
}

function renderPane(model: ChatModel, width: number, rows: number): string[] {
  const conversation = model.conversation(model.current);
  if (conversation === undefined) return [];
  const wrapped = conversation.lines.flatMap((line) => hangingWrap(formatLine(line), width, 2));
  const maxScroll = Math.max(0, wrapped.length - rows);
  if (model.scroll > maxScroll) model.scroll = maxScroll;
  const end = wrapped.length - model.scroll;
  return wrapped.slice(Math.max(0, end - rows), end);
}
