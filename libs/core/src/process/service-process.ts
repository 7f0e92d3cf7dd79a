import 'reflect-metadata';

import {
  type DynamicModule,
  Global,
  type INestApplication,
  type INestApplicationContext,
  Module,
  type NestApplicationOptions,
  type Provider,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';

import {
  loadConfig,
  requireDistributed,
  requireRedis,
  type SecureChatConfig,
} from '../config/config.schema';
import { openDatabase } from '../database/database';
import { OpsModule } from '../ops/ops.module';
import { pingablesOf, ProcessOps } from '../ops/process-ops';
import {
  postgresCheck,
  type ReadinessCheck,
  redisCheck,
  type RedisPingable,
} from '../ops/readiness';
import { type RedisEndpoint, redisEndpoint } from '../redis/redis-provider';
import { RedisStreamsServer } from '../transport/redis-streams.server';
import { checkPorts, type ListenerRole, plannedListeners } from './port-check';
import { baseProviders, closeOnShutdown, providedTokens } from './process-infrastructure';

/** What every process run on its own has: Redis (DATABASE_URL only where `database` is on). */
export type ServiceConfig = SecureChatConfig & { redisUrl: string };

interface CommonServiceProcessOptions {
  /** The process's name in its logs, metrics and ready line (and the stream auth/relay consume). */
  readonly service: 'auth' | 'relay' | 'gateway';
  /** The service's Nest module (AuthModule, RelayModule, GatewayModule). */
  readonly module: Type<unknown>;
  /**
   * The service's own adapters on top of config, clock and database: its Redis-backed ports,
   * each registered with its `provider(redis)`.
   */
  readonly providers: (config: ServiceConfig, redis: RedisEndpoint) => Provider[];
  /** Tokens of those adapters to close at shutdown (their Redis connections); also pinged by /readyz. */
  readonly closeOnShutdown: unknown[];
  /**
   * false: the process never touches PostgreSQL (the gateway). DATABASE_URL is then not
   * required, no connection is opened (so the process needs no database password) and /readyz
   * asks Redis only. Default true: the database is opened and migrated before anything else.
   */
  readonly database?: boolean;
}

/** A service consuming its request stream (auth, relay), with an HTTP API beside it or not. */
interface StreamServiceProcessOptions extends CommonServiceProcessOptions {
  readonly service: 'auth' | 'relay';
  /** An HTTP API the process serves besides the transport (the auth service's admin API). */
  readonly http?: ServiceHttpOptions;
  readonly listener?: undefined;
}

/** A process serving its own listener instead of a request stream (the TCP gateway). */
interface ListenerServiceProcessOptions extends CommonServiceProcessOptions {
  readonly listener: ServiceListenerOptions;
  readonly http?: undefined;
}

export type ServiceProcessOptions = StreamServiceProcessOptions | ListenerServiceProcessOptions;

/**
 * With `listener` the process is a Nest application context whose own server `start` starts,
 * once shutdown is enabled (so a signal during start-up waits for it).
 */
/** /readyz's checks once the application exists: the database if any, and every Redis user. */
type ReadinessChecks = (
  app: INestApplicationContext,
  transport: readonly RedisPingable[],
) => ReadinessCheck[];

export interface ServiceListenerOptions {
  /** Where it listens in the configuration: checked with the ops port before anything starts. */
  readonly role: ListenerRole;
  /** Starts the listener; resolves with the ready-line fields and the banner. */
  readonly start: (app: INestApplicationContext, config: ServiceConfig) => Promise<ServiceStarted>;
}

export interface ServiceStarted {
  /** Fields of the ready line, between `service` and `ops_port`. */
  readonly ready: Record<string, unknown>;
  /** The human summary printed after the ready line, given the bound ops port. */
  readonly banner: (opsPort: number) => string;
}

/**
 * With `http` the process is a Nest HTTP application running the transport beside it (a
 * hybrid), so the API's controllers share the service's providers and its shutdown.
 */
export interface ServiceHttpOptions {
  /** The API's module, imported next to the service module. */
  readonly module: Type<unknown>;
  readonly appOptions?: NestApplicationOptions;
  /** What the API needs in the configuration, as ConfigError lines (empty when all is there). */
  readonly configProblems: (config: SecureChatConfig) => string[];
  /** Configures the application and listens; resolves with fields for the ready line. */
  readonly serve: (
    app: INestApplication,
    config: SecureChatConfig,
  ) => Promise<Record<string, unknown>>;
}

@Global()
@Module({})
class ServiceInfrastructureModule {
  static forRoot(providers: Provider[], closables: unknown[]): DynamicModule {
    return {
      module: ServiceInfrastructureModule,
      providers: [...providers, closeOnShutdown(closables)],
      exports: providedTokens(providers) as Provider[],
    };
  }
}

@Module({})
class ServiceProcessModule {
  static forRoot(
    infrastructure: DynamicModule,
    service: Type<unknown>,
    ops: ProcessOps,
    extra: Type<unknown>[] = [],
  ): DynamicModule {
    return {
      module: ServiceProcessModule,
      imports: [OpsModule.forRoot(ops), infrastructure, service, ...extra],
    };
  }
}

/**
 * The entry point of a process run on its own (distributed mode): configuration and ports
 * checked, the database (if it uses one) migrated under its advisory lock, the module served
 * over Redis Streams — or, for the gateway, its own listener started — and the ready line
 * printed. The same modules run in the embedded process; only the adapters differ.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<void> {
  const loaded = loadConfig();
  const distributed =
    options.database !== false
      ? requireDistributed(loaded, options.http?.configProblems)
      : undefined;
  const config: ServiceConfig = distributed ?? requireRedis(loaded);
  // Before the database is touched or a key made (auth's login-seal key is, on first start;
  // the gateway's identity key too).
  await checkPorts(plannedListeners(config, listenerRoles(options)));
  const ops = new ProcessOps(config, { service: options.service, roles: [options.service] });
  const database = distributed
    ? await openDatabase({
        kind: 'postgres',
        url: distributed.databaseUrl,
        poolSize: distributed.databasePoolSize,
        onCreated: (name) =>
          ops.logger.warn(
            `database "${name}" did not exist and was created (empty, then migrated): ` +
              'if DATABASE_URL names the wrong database, stop now — this is not the one with your data',
            'Database',
          ),
      })
    : undefined;
  const redis = redisEndpoint(config);
  const infrastructure = ServiceInfrastructureModule.forRoot(
    [...baseProviders(config, database), ...options.providers(config, redis)],
    options.closeOnShutdown,
  );
  const module = ServiceProcessModule.forRoot(
    infrastructure,
    options.module,
    ops,
    options.http ? [options.http.module] : [],
  );
  const checks: ReadinessChecks = (app, transport) => [
    ...(database ? [postgresCheck(database.db)] : []),
    redisCheck([...transport, ...pingablesOf(app, options.closeOnShutdown)]),
  ];
  if (options.listener !== undefined) {
    await startListenerProcess(options, config, ops, module, checks);
    return;
  }
  const strategy = new RedisStreamsServer({
    url: config.redisUrl,
    service: options.service,
    prefix: config.redisPrefix,
  });
  let app: INestApplicationContext;
  let httpReady: Record<string, unknown> = {};
  if (options.http === undefined) {
    const service = await NestFactory.createMicroservice<MicroserviceOptions>(module, {
      strategy,
      logger: ops.logger,
    });
    // SIGTERM: stop reading requests, finish the ones in flight (RedisStreamsServer.close),
    // close connections, exit 0 — within config.shutdownTimeoutMs whatever happens.
    ops.enableShutdown(service);
    await service.listen();
    app = service;
  } else {
    const hybrid = await NestFactory.create(module, {
      logger: ops.logger,
      ...options.http.appOptions,
    });
    hybrid.connectMicroservice<MicroserviceOptions>({ strategy });
    ops.enableShutdown(hybrid); // closes the HTTP server and the transport alike
    httpReady = await options.http.serve(hybrid, config);
    await hybrid.startAllMicroservices();
    app = hybrid;
  }
  const opsPort = await ops.start(checks(app, [strategy]));
  const ready = { service: options.service, pid: process.pid, ops_port: opsPort, ...httpReady };
  ops.announce(ready, banner(options.service, config, opsPort, httpReady));
}

/** The ports to check first: the process's own listener or admin API, and the ops endpoints. */
function listenerRoles(options: ServiceProcessOptions): ListenerRole[] {
  if (options.listener !== undefined) {
    // A gateway's WebSocket port is planned only when SECURECHAT_WS_PORT sets one.
    const extra: ListenerRole[] = options.listener.role === 'gateway' ? ['websocket'] : [];
    return [options.listener.role, ...extra, 'ops'];
  }
  return options.http ? ['admin', 'ops'] : ['ops'];
}

/**
 * A process with its own listener (the gateway): an application context, shutdown enabled
 * before the listener starts (its module's onModuleDestroy stops it), then the ops endpoints
 * and the ready line `{ service, …ready, ops_port }`.
 */
async function startListenerProcess(
  options: ListenerServiceProcessOptions,
  config: ServiceConfig,
  ops: ProcessOps,
  module: DynamicModule,
  checks: ReadinessChecks,
): Promise<void> {
  const app = await NestFactory.createApplicationContext(module, { logger: ops.logger });
  ops.enableShutdown(app);
  const started = await options.listener.start(app, config);
  const opsPort = await ops.start(checks(app, []));
  ops.announce(
    { service: options.service, ...started.ready, ops_port: opsPort },
    started.banner(opsPort),
  );
}

/** The service's human summary, printed last. */
function banner(
  service: string,
  config: SecureChatConfig,
  opsPort: number,
  httpReady: Record<string, unknown>,
): string {
  const lines = [`SecureChat ${service} is running (pid ${process.pid})`];
  if (typeof httpReady.admin_port === 'number') {
    lines.push(`  admin API:          http://${config.admin.host}:${httpReady.admin_port}/admin`);
  }
  lines.push(`  ops endpoints:      http://${config.ops.host}:${opsPort}/healthz`);
  return lines.join('\n');
}
