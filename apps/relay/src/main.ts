/**
 * `npm run start:relay`: the relay service on its own, on PostgreSQL and Redis. Any number can
 * run side by side; a request held by an instance that dies is reclaimed by another one.
 */
import 'reflect-metadata';

import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';
import {
  announceReady,
  baseProviders,
  closeOnShutdown,
  type DatabaseHandle,
  FanoutPort,
  loadConfig,
  openDatabase,
  providedTokens,
  RedisFanout,
  RedisStreamsServer,
  requireDistributed,
  runMain,
  type SecureChatConfig,
} from '@securechat/core';

import { RelayModule } from './relay.module';

@Global()
@Module({})
class RelayInfrastructureModule {
  static forRoot(
    config: SecureChatConfig & { redisUrl: string },
    database: DatabaseHandle,
  ): DynamicModule {
    const providers: Provider[] = [
      ...baseProviders(config, database),
      {
        provide: FanoutPort,
        useFactory: () => new RedisFanout({ url: config.redisUrl, prefix: config.redisPrefix }),
      },
    ];
    return {
      module: RelayInfrastructureModule,
      providers: [...providers, closeOnShutdown([FanoutPort])],
      exports: providedTokens(providers) as Provider[],
    };
  }
}

@Module({})
class RelayProcessModule {
  static forRoot(
    config: SecureChatConfig & { redisUrl: string },
    database: DatabaseHandle,
  ): DynamicModule {
    return {
      module: RelayProcessModule,
      imports: [RelayInfrastructureModule.forRoot(config, database), RelayModule],
    };
  }
}

runMain(async () => {
  const config = requireDistributed(loadConfig());
  const database = await openDatabase({
    kind: 'postgres',
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
  });
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(
    RelayProcessModule.forRoot(config, database),
    {
      strategy: new RedisStreamsServer({
        url: config.redisUrl,
        service: 'relay',
        prefix: config.redisPrefix,
      }),
      logger: ['error', 'warn', 'log'],
    },
  );
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  await app.listen();
  announceReady({ service: 'relay', pid: process.pid });
});
