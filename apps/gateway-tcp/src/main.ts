/**
 * `npm run start:gateway`: one TCP gateway on its own. Any number can run side by side: they
 * share the identity key file, reach auth and relay over Redis Streams, and hear fan-out over
 * Redis pub/sub.
 */
import 'reflect-metadata';

import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  announceReady,
  baseProviders,
  closeOnShutdown,
  FanoutPort,
  loadConfig,
  providedTokens,
  RedisFanout,
  RedisStreamsClient,
  requireDistributed,
  runMain,
  type SecureChatConfig,
} from '@securechat/core';

import { GatewayModule } from './gateway.module';
import { GatewayServer } from './gateway.server';
import { PresenceRepository, RedisPresenceRepository } from './presence.repository';
import { AUTH_CLIENT, RELAY_CLIENT } from './service-clients';

@Global()
@Module({})
class GatewayInfrastructureModule {
  static forRoot(config: SecureChatConfig & { redisUrl: string }): DynamicModule {
    const redis = { url: config.redisUrl, prefix: config.redisPrefix };
    const client = {
      useFactory: async () => {
        const proxy = new RedisStreamsClient(redis);
        await proxy.connect();
        return proxy;
      },
    };
    const providers: Provider[] = [
      ...baseProviders(config),
      {
        provide: FanoutPort,
        // Subscribed before the gateway accepts anyone: a delivery published earlier than the
        // first SUBSCRIBE would otherwise wait for the recipient's next login.
        useFactory: async () => {
          const fanout = new RedisFanout(redis);
          await fanout.connect();
          return fanout;
        },
      },
      { provide: PresenceRepository, useFactory: () => new RedisPresenceRepository(redis) },
      { provide: AUTH_CLIENT, ...client },
      { provide: RELAY_CLIENT, useExisting: AUTH_CLIENT },
    ];
    return {
      module: GatewayInfrastructureModule,
      providers: [...providers, closeOnShutdown([AUTH_CLIENT, FanoutPort, PresenceRepository])],
      exports: providedTokens(providers) as Provider[],
    };
  }
}

@Module({})
class GatewayProcessModule {
  static forRoot(config: SecureChatConfig & { redisUrl: string }): DynamicModule {
    return {
      module: GatewayProcessModule,
      imports: [GatewayInfrastructureModule.forRoot(config), GatewayModule],
    };
  }
}

runMain(async () => {
  const config = requireDistributed(loadConfig());
  const app = await NestFactory.createApplicationContext(GatewayProcessModule.forRoot(config), {
    logger: ['error', 'warn', 'log'],
  });
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  const { host, port, fingerprint } = await app.get(GatewayServer).start();
  announceReady({ service: 'gateway', host, port, fingerprint, gateway: config.gatewayId });
});
