import { type LoggerService } from '@nestjs/common';
import { type PinoLoggerService } from '@securechat/core';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A connection's logger: every line carries the connection's id and remote address. The pino
 * child logger that adds them is made for each line written, not kept per connection: a
 * connection writes a handful of lines in its life (most below the production level, and then
 * no child is made at all), while a child kept per connection costs ~0.5 KiB for as long as
 * the connection lasts, idle sessions included.
 */
export class ConnectionLogger implements LoggerService {
  constructor(
    private readonly logs: PinoLoggerService,
    private readonly conn: string,
    private readonly remote: string,
  ) {}

  log(message: unknown, ...params: unknown[]): void {
    this.#child('info')?.log(message, ...params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.#child('error')?.error(message, ...params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.#child('warn')?.warn(message, ...params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.#child('debug')?.debug(message, ...params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.#child('trace')?.verbose(message, ...params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.#child('fatal')?.fatal(message, ...params);
  }

  /** The child for one line at `level` (PinoLoggerService's mapping), if it is enabled. */
  #child(level: Level): PinoLoggerService | undefined {
    if (!this.logs.pino.isLevelEnabled(level)) return undefined;
    return this.logs.child({ context: 'Connection', conn: this.conn, remote: this.remote });
  }
}
