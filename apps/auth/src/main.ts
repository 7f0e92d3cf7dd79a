/**
 * `npm run start:auth`: the auth service on its own, on PostgreSQL and Redis. Any number can
 * run side by side: each request is handled by exactly one of them (Redis Streams consumer
 * group), and throttling counters live in Redis.
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
  loadConfig,
  openDatabase,
  providedTokens,
  RedisStreamsServer,
  requireDistributed,
  runMain,
  type SecureChatConfig,
} from '@securechat/core';

import { AuthModule } from './auth.module';
import { LoginThrottleRepository } from './login-throttle.repository';
import { RedisLoginThrottleRepository } from './redis-login-throttle.repository';

@Global()
@Module({})
class AuthInfrastructureModule {
  static forRoot(
    config: SecureChatConfig & { redisUrl: string },
    database: DatabaseHandle,
  ): DynamicModule {
    const providers: Provider[] = [
      ...baseProviders(config, database),
      RedisLoginThrottleRepository.provider(config.redisUrl, config.redisPrefix),
    ];
    return {
      module: AuthInfrastructureModule,
      providers: [...providers, closeOnShutdown([LoginThrottleRepository])],
      exports: providedTokens(providers) as Provider[],
    };
  }
}

@Module({})
class AuthProcessModule {
  static forRoot(
    config: SecureChatConfig & { redisUrl: string },
    database: DatabaseHandle,
  ): DynamicModule {
    return {
      module: AuthProcessModule,
      imports: [AuthInfrastructureModule.forRoot(config, database), AuthModule],
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
    AuthProcessModule.forRoot(config, database),
    {
      strategy: new RedisStreamsServer({
        url: config.redisUrl,
        service: 'auth',
        prefix: config.redisPrefix,
      }),
      logger: ['error', 'warn', 'log'],
    },
  );
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  await app.listen();
  announceReady({ service: 'auth', pid: process.pid });
});
