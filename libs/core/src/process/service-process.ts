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

import { loadConfig, requireDistributed, type SecureChatConfig } from '../config/config.schema';
import { openDatabase } from '../database/database';
import { OpsModule } from '../ops/ops.module';
import { pingablesOf, ProcessOps } from '../ops/process-ops';
import { postgresCheck, redisCheck } from '../ops/readiness';
import { RedisStreamsServer } from '../transport/redis-streams.server';
import {
  announceReady,
  baseProviders,
  closeOnShutdown,
  providedTokens,
} from './process-infrastructure';

type DistributedConfig = SecureChatConfig & { databaseUrl: string; redisUrl: string };

export interface ServiceProcessOptions {
  /** Which request stream the service consumes (`auth` or `relay`). */
  readonly service: 'auth' | 'relay';
  /** The service's Nest module (AuthModule, RelayModule). */
  readonly module: Type<unknown>;
  /** The service's own adapters on top of config, clock and database (Redis-backed ports). */
  readonly providers: (config: DistributedConfig) => Provider[];
  /** Tokens of those adapters to close at shutdown (their Redis connections). */
  readonly closeOnShutdown: unknown[];
  /** An HTTP API the process serves besides the transport (the auth service's admin API). */
  readonly http?: ServiceHttpOptions;
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
 * The entry point of a service run on its own (distributed mode): configuration checked, the
 * database migrated under its advisory lock, the module served over Redis Streams, and the
 * ready line printed. The same modules run in the embedded process; only the adapters differ.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<void> {
  const config = requireDistributed(loadConfig(), options.http?.configProblems);
  const ops = new ProcessOps(config, { service: options.service, roles: [options.service] });
  const database = await openDatabase({
    kind: 'postgres',
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
  });
  const infrastructure = ServiceInfrastructureModule.forRoot(
    [...baseProviders(config, database), ...options.providers(config)],
    options.closeOnShutdown,
  );
  const strategy = new RedisStreamsServer({
    url: config.redisUrl,
    service: options.service,
    prefix: config.redisPrefix,
  });
  const module = ServiceProcessModule.forRoot(
    infrastructure,
    options.module,
    ops,
    options.http ? [options.http.module] : [],
  );
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
  const opsPort = await ops.start([
    postgresCheck(database.db),
    redisCheck([strategy, ...pingablesOf(app, options.closeOnShutdown)]),
  ]);
  announceReady({ service: options.service, pid: process.pid, ops_port: opsPort, ...httpReady });
}
