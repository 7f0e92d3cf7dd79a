import 'reflect-metadata';

import { type DynamicModule, Global, Module, type Provider, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';

import { loadConfig, requireDistributed, type SecureChatConfig } from '../config/config.schema';
import { openDatabase } from '../database/database';
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
  static forRoot(infrastructure: DynamicModule, service: Type<unknown>): DynamicModule {
    return { module: ServiceProcessModule, imports: [infrastructure, service] };
  }
}

/**
 * The entry point of a service run on its own (distributed mode): configuration checked, the
 * database migrated under its advisory lock, the module served over Redis Streams, and the
 * ready line printed. The same modules run in the embedded process; only the adapters differ.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<void> {
  const config = requireDistributed(loadConfig());
  const database = await openDatabase({
    kind: 'postgres',
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
  });
  const infrastructure = ServiceInfrastructureModule.forRoot(
    [...baseProviders(config, database), ...options.providers(config)],
    options.closeOnShutdown,
  );
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(
    ServiceProcessModule.forRoot(infrastructure, options.module),
    {
      strategy: new RedisStreamsServer({
        url: config.redisUrl,
        service: options.service,
        prefix: config.redisPrefix,
      }),
      logger: ['error', 'warn', 'log'],
    },
  );
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  await app.listen();
  announceReady({ service: options.service, pid: process.pid });
}
