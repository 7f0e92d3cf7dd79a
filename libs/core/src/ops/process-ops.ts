/**
 * The operations side every process shares: its pino logger, its metrics registry, its ops
 * HTTP server and its shutdown on SIGTERM/SIGINT. Each entry point creates one ProcessOps
 * before Nest, hands `logger` to Nest and `providers()` to its global module, and calls
 * `start()` once it serves.
 */
import {
  type INestApplicationContext,
  Injectable,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { type DestinationStream } from 'pino';

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
}

export class ProcessOps {
  readonly logger: PinoLoggerService;
  readonly metrics: PrometheusMetricsRepository;
  readonly #config: SecureChatConfig;
  readonly #exit: (code: number) => void;
  #server: OpsServer | undefined;
  #shuttingDown = false;

  constructor(config: SecureChatConfig, options: ProcessOpsOptions) {
    this.#config = config;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.logger = new PinoLoggerService(
      createPinoLogger({
        level: config.logLevel,
        service: options.service,
        ...(options.logDestination ? { destination: options.logDestination } : {}),
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
  }

  /**
   * What a shutdown signal does before Nest's hooks run: /readyz turns 503 and the hard
   * deadline is armed (a second signal changes nothing). Not unref'd: if a hook hangs on
   * something that holds no handle, the deadline is what still ends the process.
   */
  beginShutdown(signal: NodeJS.Signals): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
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
