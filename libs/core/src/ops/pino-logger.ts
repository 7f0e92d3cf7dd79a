/**
 * Structured logs: every Nest log line of every process goes through pino, one JSON object per
 * line on stdout, so that a log shipper needs no parsing rules — or, on a terminal, the same
 * lines made readable (pretty-log.ts). Nest's own call shape (message, then optional stack and
 * context) is mapped onto pino's (bindings, message).
 */
import { type LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';

import { type SecureChatConfig } from '../config/config.schema';
import { type LogSink, PrettyDestination } from './pretty-log';

/**
 * Backstop only: the code never logs a payload. Should a password, key, token, signature or
 * message body reach a log call as an object anyway, these paths are masked — at the top level,
 * one or two levels down, and in the arrays our payloads carry (history pages, transcript
 * batches).
 */
const SECRET_KEYS = [
  'password',
  'body',
  'token',
  'authorization',
  'privateKey',
  'private_key',
  'secret',
  'sig',
  'signature',
  'countersignature',
  'plaintext',
  'adminToken',
];
export const REDACT_PATHS: string[] = [
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
  'messages[*].body',
  '*.messages[*].body',
  'records[*].plaintext',
  '*.records[*].plaintext',
  'headers.authorization',
  '*.headers.authorization',
];

export interface PinoLoggerOptions {
  readonly level: SecureChatConfig['logLevel'];
  /** Which process is talking (`embedded`, `gateway`, `auth`, `relay`), on every line. */
  readonly service: string;
  /** Where lines go; stdout when absent (tests pass a buffer). */
  readonly destination?: DestinationStream;
  /**
   * `json` (the default here; processes pass SECURECHAT_LOG_FORMAT, whose default is `auto`):
   * one JSON object per line; `pretty`: readable lines; `auto`: pretty when stdout is a
   * terminal, JSON otherwise (a pipe, a file, a container's log driver).
   */
  readonly format?: LogFormat;
}

export type LogFormat = 'auto' | 'json' | 'pretty';

/** What `auto` means for this process: a person reads a terminal, a program reads the rest. */
export function resolveLogFormat(
  format: LogFormat,
  isTTY: boolean = process.stdout.isTTY === true,
): 'json' | 'pretty' {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

/** The process's root pino logger, with redaction and ISO timestamps. */
export function createPinoLogger(options: PinoLoggerOptions): Logger {
  const settings = {
    level: options.level,
    base: { service: options.service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const pretty = resolveLogFormat(options.format ?? 'json') === 'pretty';
  const sink: DestinationStream = options.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(settings, pretty ? new PrettyDestination(sink as LogSink) : sink);
}

/**
 * Nest's own start-up chatter (a line per module, route and listener) at info buries the lines
 * an operator needs; at debug it is there when asked for.
 */
const NEST_STARTUP_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
  'NestMicroservice',
]);

type Bindings = Record<string, unknown>;

/**
 * Nest's LoggerService on pino. `child()` gives a logger whose every line carries the given
 * bindings (the gateway's connection id and address), which Nest's own Logger cannot do.
 */
export class PinoLoggerService implements LoggerService {
  constructor(readonly pino: Logger) {}

  /** A logger that adds `bindings` to every line. */
  child(bindings: Bindings): PinoLoggerService {
    return new PinoLoggerService(this.pino.child(bindings));
  }

  /** Writes what is buffered now: for the last line, in an `exit` listener, with no event loop left. */
  flushSync(): void {
    const stream = (this.pino as unknown as Record<symbol, Partial<LogSink> | undefined>)[
      pino.symbols.streamSym
    ];
    try {
      stream?.flushSync?.();
    } catch {
      // A stream not open yet, or a closed pipe: nothing more can be written anyway.
    }
  }

  log(message: unknown, ...params: unknown[]): void {
    const context = params.at(-1);
    const nest = typeof context === 'string' && NEST_STARTUP_CONTEXTS.has(context);
    this.#write(nest ? 'debug' : 'info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.#write('error', message, params, true);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.#write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.#write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.#write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.#write('fatal', message, params, true);
  }

  /**
   * Nest passes the context (a Logger's name) last and, for errors, a stack before it; an
   * object message becomes the line's fields, so redaction sees its members.
   */
  #write(
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace',
    message: unknown,
    params: unknown[],
    mayHaveStack = false,
  ): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const rest = [...params];
    const fields: Bindings = {};
    if (rest.length > 0 && typeof rest.at(-1) === 'string' && (rest.length > 1 || !mayHaveStack)) {
      fields.context = rest.pop();
    }
    if (mayHaveStack && typeof rest[0] === 'string') fields.stack = rest.shift();
    while (rest.length > 0 && rest[0] === undefined) rest.shift();
    if (rest.length > 0) fields.extra = rest;
    if (message instanceof Error) {
      this.pino[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      const { msg, ...members } = message as Bindings;
      this.pino[level]({ ...fields, ...members }, typeof msg === 'string' ? msg : undefined);
    } else {
      this.pino[level](fields, String(message));
    }
  }
}
