/**
 * The operations side every process shares: its pino logger, its metrics registry, its ops
 * HTTP server, its shutdown on SIGTERM/SIGINT and its last words (`stopped`, with why). Each
 * entry point creates one ProcessOps before Nest, hands `logger` to Nest and `providers()` to
 * its global module, calls `start()` once it serves, and `announce()` last.
 */
import { type EventEmitter } from 'node:events';

import {
  type INestApplicationContext,
  Injectable,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import pino, { type DestinationStream } from 'pino';

import { type SecureChatConfig } from '../config/config.schema';
import { MetricsRepository } from './metrics.repository';
import { OpsServer } from './ops.server';
import { createPinoLogger, PinoLoggerService } from './pino-logger';
import { type MetricsRole, PrometheusMetricsRepository } from './prometheus-metrics.repository';
import { type ReadinessCheck, type RedisPingable } from './readiness';

const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

export interface ProcessOpsOptions {
  /** The name on every log line: `embedded`, `gateway`, `auth`, `relay`. */
  readonly service: string;
  readonly roles: readonly MetricsRole[];
  /** Tests: where log lines go instead of stdout. */
  readonly logDestination?: DestinationStream;
  /** Tests: what ends the process. */
  readonly exit?: (code: number) => void;
  /** Tests: where `exit` and uncaught exceptions are heard instead of `process`. */
  readonly processEvents?: EventEmitter;
  /**
   * Shut down when the parent process goes away (checked every second). On by default when an
   * npm start script started us (`npm start`, `npm run start:*`): `exec` hands npm's SIGTERM on, but an npm killed outright
   * (SIGKILL, the OOM killer) cannot, and the server would serve on as an orphan.
   */
  readonly stopWithParent?: boolean;
  /** Tests: the parent's pid now (process.ppid), and what signals this process. */
  readonly parentPid?: () => number;
  readonly signalSelf?: (signal: NodeJS.Signals) => void;
}

const PARENT_CHECK_MS = 1_000;

/** Why the process ends, for its `stopped` line. */
type StopReason =
  | { readonly reason: NodeJS.Signals | 'parent_exited' }
  | { readonly reason: 'error'; readonly error: string };

export class ProcessOps {
  /** The one whose shutdown is enabled: runMain tells it about a failed start. */
  static #active: ProcessOps | undefined;
  readonly logger: PinoLoggerService;
  readonly metrics: PrometheusMetricsRepository;
  readonly #config: SecureChatConfig;
  readonly #exit: (code: number) => void;
  readonly #processEvents: EventEmitter;
  readonly #stopWithParent: boolean;
  readonly #parentPid: () => number;
  readonly #parentAtStart: number;
  readonly #signalSelf: (signal: NodeJS.Signals) => void;
  /** Where log lines, the ready line and the banner go, in the order they were written. */
  readonly #output: DestinationStream;
  #server: OpsServer | undefined;
  #shuttingDown = false;
  #stopReason: StopReason | undefined;

  constructor(config: SecureChatConfig, options: ProcessOpsOptions) {
    this.#config = config;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#processEvents = options.processEvents ?? process;
    // Only the start scripts: every process under any npm script inherits npm_lifecycle_event
    // (`npm test`, `npm run bench`), and their servers must not stop with their direct parent.
    const lifecycle = process.env.npm_lifecycle_event;
    this.#stopWithParent =
      options.stopWithParent ?? (lifecycle === 'start' || lifecycle?.startsWith('start:') === true);
    this.#parentPid = options.parentPid ?? (() => process.ppid);
    // Noted now, early in the start (a first PGlite start takes seconds before shutdown is
    // enabled): an npm killed in that time must still count as gone.
    this.#parentAtStart = this.#parentPid();
    this.#signalSelf = options.signalSelf ?? ((signal) => process.kill(process.pid, signal));
    // Synchronous: log lines, the ready line, the banner and the last `stopped` line reach
    // stdout in the order they were written, even while the process exits (an asynchronous
    // write still in flight at exit lands after the next one, or never). At info a process logs
    // a line or two per login: microseconds, against a login's argon2id.
    this.#output = options.logDestination ?? pino.destination({ dest: 1, sync: true });
    this.logger = new PinoLoggerService(
      createPinoLogger({
        level: config.logLevel,
        format: config.logFormat,
        service: options.service,
        destination: this.#output,
      }),
    );
    this.metrics = new PrometheusMetricsRepository(options.roles);
  }

  /** For the process's global module: MetricsRepository, the logger, and the ops server's closer. */
  providers(): Provider[] {
    return [
      { provide: MetricsRepository, useValue: this.metrics },
      { provide: PinoLoggerService, useValue: this.logger },
      { provide: OpsServerCloser, useFactory: () => new OpsServerCloser(this) },
    ];
  }

  /**
   * Shutdown on SIGTERM/SIGINT, instead of app.enableShutdownHooks alone: /readyz turns 503 at
   * once, Nest's hooks run (the gateway tells its clients `shutting_down` and ships the last
   * transcripts, services finish in-flight requests, connections close), the process exits 0
   * — and whatever hangs, it exits anyway after config.shutdownTimeoutMs, with a warning.
   * Call before `listen()`/`start()`; a signal during startup waits for it.
   */
  enableShutdown(app: Pick<INestApplicationContext, 'enableShutdownHooks'>): void {
    // Registered before Nest's listeners, so the deadline is armed before any hook runs.
    for (const signal of SHUTDOWN_SIGNALS) process.on(signal, (s) => this.beginShutdown(s));
    app.enableShutdownHooks(SHUTDOWN_SIGNALS, { useProcessExit: true });
    this.#reportStop();
    if (this.#stopWithParent) this.#watchParent();
  }

  /**
   * An orphan is re-parented (to init or a subreaper), so a changed ppid means the parent is
   * gone: shut down as on SIGTERM — the one graceful path — with that as the reason.
   */
  #watchParent(): void {
    const parent = this.#parentAtStart;
    const timer = setInterval(() => {
      if (this.#parentPid() === parent) return;
      clearInterval(timer);
      this.#stopReason ??= { reason: 'parent_exited' };
      this.logger.warn({ msg: 'parent process exited; shutting down', parent }, 'Shutdown');
      this.#signalSelf('SIGTERM');
    }, PARENT_CHECK_MS);
    // Never what keeps the process alive.
    timer.unref();
  }

  /**
   * From here on the process's last line is `stopped`, with the exit code and why: the signal,
   * or the error that ended it (a failed start, an uncaught exception). Written in the `exit`
   * listener, so nothing that exits the process — Nest's hooks, the deadline, runMain — can
   * skip it; written synchronously, as no event loop is left there.
   */
  #reportStop(): void {
    ProcessOps.#active = this;
    this.#processEvents.on('uncaughtExceptionMonitor', (error: unknown) => this.noteFailure(error));
    this.#processEvents.once('exit', (code: number) => {
      const why = this.#stopReason ?? { reason: 'exit' };
      if (code === 0) this.logger.log({ msg: 'stopped', ...why, code }, 'Shutdown');
      else this.logger.error({ msg: 'stopped', ...why, code }, undefined, 'Shutdown');
      this.logger.flushSync();
    });
  }

  /** An error ends the process (the first reason recorded is the one reported). */
  noteFailure(error: unknown): void {
    this.#stopReason ??= {
      reason: 'error',
      error: error instanceof Error ? error.message : String(error),
    };
  }

  /** The active ProcessOps, if a process has one, hears that its start failed (runMain). */
  static noteFailure(error: unknown): void {
    ProcessOps.#active?.noteFailure(error);
  }

  /**
   * What a shutdown signal does before Nest's hooks run: /readyz turns 503 and the hard
   * deadline is armed (a second signal changes nothing). Not unref'd: if a hook hangs on
   * something that holds no handle, the deadline is what still ends the process.
   */
  beginShutdown(signal: NodeJS.Signals): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#stopReason ??= { reason: signal };
    const timeoutMs = this.#config.shutdownTimeoutMs;
    this.logger.log({ msg: 'shutting down', signal, timeoutMs }, 'Shutdown');
    this.#server?.drain();
    setTimeout(() => {
      this.logger.warn(
        { msg: 'shutdown did not finish in time; exiting now', timeoutMs },
        'Shutdown',
      );
      this.#exit(1);
    }, timeoutMs);
  }

  /** Serves /healthz, /readyz (asking `checks`) and /metrics; resolves with the bound port. */
  async start(checks: readonly ReadinessCheck[]): Promise<number> {
    const server = new OpsServer({
      host: this.#config.ops.host,
      port: this.#config.ops.port,
      checks,
      metrics: this.metrics,
    });
    const port = await server.start();
    this.#server = server;
    if (this.#shuttingDown) server.drain();
    this.logger.log({ msg: 'ops endpoints listening', host: this.#config.ops.host, port }, 'Ops');
    return port;
  }

  /**
   * The process's last start-up words, once everything listens: the machine-readable ready
   * line that scripts and tests wait for, then the human `banner` (if any) — after every log
   * line written so far, so that nothing scrolls it away.
   */
  announce(details: Record<string, unknown>, banner?: string): void {
    const ready = JSON.stringify({ event: 'ready', ...details });
    this.#output.write(banner === undefined ? `${ready}\n` : `${ready}\n${banner}\n`);
  }

  /** Closes the ops server (last, once Nest has shut everything else down). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }
}

/** Runs ProcessOps.close() among Nest's shutdown hooks. */
@Injectable()
class OpsServerCloser implements OnApplicationShutdown {
  constructor(private readonly ops: ProcessOps) {}

  onApplicationShutdown(): Promise<void> {
    return this.ops.close();
  }
}

/** The instances behind `tokens` that can answer a Redis PING (for the readiness check). */
export function pingablesOf(
  app: INestApplicationContext,
  tokens: readonly unknown[],
): RedisPingable[] {
  return tokens
    .map((token) => app.get<unknown>(token as never, { strict: false }))
    .filter(
      (instance): instance is RedisPingable =>
        typeof (instance as Partial<RedisPingable> | undefined)?.ping === 'function',
    );
}
