/**
 * `npm run start:gateway`: one TCP gateway on its own. Any number can run side by side: they
 * share the identity key file, reach auth and relay over Redis Streams, and hear fan-out over
 * Redis pub/sub. Redis only: the gateway never touches PostgreSQL, and is not given its password.
 */
import {
  FanoutPort,
  FileLoginSealPublicKeyRepository,
  LoginSealPublicKeyRepository,
  PinoLoggerService,
  PresenceRepository,
  RedisFanout,
  RedisPresenceRepository,
  RedisSessionCommands,
  RedisStreamsClient,
  runMain,
  SessionCommandPort,
  startServiceProcess,
} from '@securechat/core';

import { GatewayModule } from './gateway.module';
import { GatewayServer } from './gateway.server';
import { AUTH_CLIENT, RELAY_CLIENT } from './service-clients';

runMain(() =>
  startServiceProcess({
    service: 'gateway',
    module: GatewayModule,
    database: false,
    providers: (config, redis) => [
      // Subscribed before the gateway accepts anyone: a delivery published earlier than the
      // first SUBSCRIBE would otherwise wait for the recipient's next login.
      RedisFanout.provider(redis, { subscribed: true }),
      RedisPresenceRepository.provider(redis),
      // Auth's login-seal public key, from the file auth writes: the one secret-free thing a
      // gateway needs from auth. No database, no admin token.
      FileLoginSealPublicKeyRepository.provider(config),
      // Subscribed before the gateway accepts anyone, like fan-out: an operator's order to
      // close must not miss a session that logged in a moment earlier.
      RedisSessionCommands.provider(redis, { subscribed: true }),
      // One client (its reply channel subscribed) for both services.
      RedisStreamsClient.provider(AUTH_CLIENT, redis),
      { provide: RELAY_CLIENT, useExisting: AUTH_CLIENT },
    ],
    closeOnShutdown: [AUTH_CLIENT, FanoutPort, PresenceRepository, SessionCommandPort],
    listener: {
      role: 'gateway',
      // SIGTERM: GatewayServer.stop() (on module destroy) stops accepting, sends every client
      // `shutting_down` and ships the last transcripts; the process exits within the deadline.
      start: async (app, config) => {
        const { host, port, fingerprint, wsPort } = await app.get(GatewayServer).start();
        try {
          app.get(LoginSealPublicKeyRepository).current();
        } catch (error) {
          // Not fatal: auth may start later; logins answer `internal` until the key is there.
          app.get(PinoLoggerService).warn((error as Error).message, 'LoginSeal');
        }
        return {
          ready: {
            host,
            port,
            fingerprint,
            gateway: config.gatewayId,
            ...(wsPort === undefined ? {} : { ws_port: wsPort }),
          },
          banner: (opsPort) =>
            `SecureChat gateway ${config.gatewayId} is listening on ${host}:${port}\n` +
            `  server fingerprint: ${fingerprint}\n` +
            (wsPort === undefined
              ? ''
              : `  browsers:           ws://${config.webSocket.host}:${wsPort} (WebSocket, securechat.v1)\n`) +
            `  ops endpoints:      http://${config.ops.host}:${opsPort}/healthz`,
        };
      },
    },
  }),
);
