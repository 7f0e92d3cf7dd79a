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
  FileLoginSealPublicKeyRepository,
  loadConfig,
  LoginSealPublicKeyRepository,
  OpsModule,
  pingablesOf,
  ProcessOps,
  PresenceRepository,
  providedTokens,
  RedisFanout,
  RedisPresenceRepository,
  redisCheck,
  RedisSessionCommands,
  RedisStreamsClient,
  requireRedis,
  runMain,
  type SecureChatConfig,
  SessionCommandPort,
} from '@securechat/core';

import { GatewayModule } from './gateway.module';
import { GatewayServer } from './gateway.server';
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
      // Auth's login-seal public key, from the file auth writes: the one secret-free thing a
      // gateway needs from auth. No database, no admin token.
      FileLoginSealPublicKeyRepository.provider(config),
      {
        provide: SessionCommandPort,
        // Subscribed before the gateway accepts anyone, like fan-out: an operator's order to
        // close must not miss a session that logged in a moment earlier.
        useFactory: async () => {
          const commands = new RedisSessionCommands(redis);
          await commands.connect();
          return commands;
        },
      },
      { provide: AUTH_CLIENT, ...client },
      { provide: RELAY_CLIENT, useExisting: AUTH_CLIENT },
    ];
    return {
      module: GatewayInfrastructureModule,
      providers: [
        ...providers,
        closeOnShutdown([AUTH_CLIENT, FanoutPort, PresenceRepository, SessionCommandPort]),
      ],
      exports: providedTokens(providers) as Provider[],
    };
  }
}

@Module({})
class GatewayProcessModule {
  static forRoot(config: SecureChatConfig & { redisUrl: string }, ops: ProcessOps): DynamicModule {
    return {
      module: GatewayProcessModule,
      imports: [OpsModule.forRoot(ops), GatewayInfrastructureModule.forRoot(config), GatewayModule],
    };
  }
}

runMain(async () => {
  // Redis only: the gateway never touches PostgreSQL, and is not given its password.
  const config = requireRedis(loadConfig());
  const ops = new ProcessOps(config, { service: 'gateway', roles: ['gateway'] });
  const app = await NestFactory.createApplicationContext(
    GatewayProcessModule.forRoot(config, ops),
    { logger: ops.logger },
  );
  // SIGTERM: GatewayServer.stop() (on module destroy) stops accepting, sends every client
  // `shutting_down` and ships the last transcripts; the process exits within the deadline.
  ops.enableShutdown(app);
  const { host, port, fingerprint } = await app.get(GatewayServer).start();
  try {
    app.get(LoginSealPublicKeyRepository).current();
  } catch (error) {
    // Not fatal: auth may start later; logins answer `internal` until the key is there.
    ops.logger.warn((error as Error).message, 'LoginSeal');
  }
  const redisUsers = [AUTH_CLIENT, FanoutPort, PresenceRepository, SessionCommandPort];
  const opsPort = await ops.start([redisCheck(pingablesOf(app, redisUsers))]);
  announceReady({
    service: 'gateway',
    host,
    port,
    fingerprint,
    gateway: config.gatewayId,
    ops_port: opsPort,
  });
});
