/**
 * Readable log lines for a terminal: pino writes JSON, and on a TTY (or with
 * SECURECHAT_LOG_FORMAT=pretty) each JSON line is rewritten as `time LEVEL context: message
 * key=value …` before it reaches stdout. Written here rather than taken from pino-pretty: a
 * dozen lines, and no transport thread in every process.
 */
import { type DestinationStream } from 'pino';

/** Members every line has, shown in the line's head or not at all. */
const HEAD_KEYS = new Set(['level', 'time', 'service', 'pid', 'hostname', 'context', 'msg']);

const LEVEL_WIDTH = 5;

/** A value as `key=value` shows it: bare when that cannot be misread, else JSON-quoted. */
function showValue(value: unknown): string {
  if (typeof value === 'string')
    return /^[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return 'undefined';
  // undefined for a function or a symbol, which JSON cannot show
  return JSON.stringify(value) ?? typeof value;
}

/** Control characters (a newline from a peer's input, an escape sequence) must not reach a terminal raw. */
function oneLine(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One pino JSON line as a readable line (without its newline). A stack, if any, follows on
 * indented lines. Anything that is not a JSON object is passed through unchanged.
 */
export function formatLogLine(line: string): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return line;
  const fields = entry as Record<string, unknown>;
  const time = typeof fields.time === 'string' ? fields.time.slice(11, 23) : '';
  const level = (typeof fields.level === 'string' ? fields.level : 'info').toUpperCase();
  const context = typeof fields.context === 'string' ? `${oneLine(fields.context)}: ` : '';
  const msg = typeof fields.msg === 'string' ? oneLine(fields.msg) : '';
  const stacks: string[] = [];
  const members: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (HEAD_KEYS.has(key)) continue;
    if (key === 'stack' && typeof value === 'string') {
      stacks.push(value);
    } else if (key === 'err' && typeof value === 'object' && value !== null) {
      const { stack, message } = value as { stack?: unknown; message?: unknown };
      if (typeof stack === 'string') stacks.push(stack);
      else if (typeof message === 'string') members.push(`err=${oneLine(showValue(message))}`);
    } else {
      members.push(`${oneLine(key)}=${oneLine(showValue(value))}`);
    }
  }
  const head = [time, level.padEnd(LEVEL_WIDTH), `${context}${msg}`, ...members]
    .filter((part) => part !== '')
    .join(' ');
  const tail = stacks.flatMap((stack) => stack.split('\n').map((l) => `    ${oneLine(l)}`));
  return [head, ...tail].join('\n');
}

/** Where a readable line goes: SonicBoom's subset that pino and ProcessOps use. */
export interface LogSink {
  write(data: string): unknown;
  flush?(callback?: (error?: Error) => void): void;
  flushSync?(): void;
}

/**
 * A pino destination that rewrites each line with formatLogLine before handing it to `sink`;
 * flushing goes through to it, so a banner printed after a flush still comes after the logs.
 */
export class PrettyDestination implements DestinationStream {
  constructor(private readonly sink: LogSink) {}

  write(data: string): void {
    // pino writes one line per call, ending in a newline.
    const text = data
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => `${formatLogLine(line)}\n`)
      .join('');
    this.sink.write(text);
  }

  flush(callback?: (error?: Error) => void): void {
    if (this.sink.flush) this.sink.flush(callback);
    else callback?.();
  }

  flushSync(): void {
    this.sink.flushSync?.();
  }
}
