/**
 * `npm run start:auth`: the auth service on its own, on PostgreSQL and Redis. Any number can
 * run side by side: each request is handled by exactly one of them (Redis Streams consumer
 * group), and throttling counters live in Redis. Each also serves the admin HTTP API
 * (apps/admin, composed here) on SECURECHAT_ADMIN_HOST:PORT, and will not start without
 * ADMIN_TOKEN.
 */
import {
  ADMIN_HTTP_APP_OPTIONS,
  AdminModule,
  adminConfigProblems,
  serveAdminHttp,
} from '@securechat/admin';
import {
  FileLoginSealKeyRepository,
  LoginSealReplayRepository,
  PresenceRepository,
  RedisLoginSealReplayRepository,
  RedisPresenceRepository,
  RedisSessionCommands,
  runMain,
  SessionCommandPort,
  SessionControl,
  SessionControlService,
  startServiceProcess,
} from '@securechat/core';

import { AuthModule } from './auth.module';
import { LoginThrottleRepository } from './login-throttle.repository';
import { RedisLoginThrottleRepository } from './redis-login-throttle.repository';

runMain(() =>
  startServiceProcess({
    service: 'auth',
    module: AuthModule,
    providers: (config, redis) => [
      RedisLoginThrottleRepository.provider(redis),
      // The login seal: our key pair (made on first start, its public half written for the
      // gateways) and the ids of sealed logins already used, shared by every auth instance.
      FileLoginSealKeyRepository.provider(config),
      RedisLoginSealReplayRepository.provider(redis),
      // SessionControl for the admin API: presence to list, the command channel to close.
      RedisPresenceRepository.provider(redis),
      RedisSessionCommands.provider(redis),
      { provide: SessionControl, useClass: SessionControlService },
    ],
    closeOnShutdown: [
      LoginThrottleRepository,
      LoginSealReplayRepository,
      PresenceRepository,
      SessionCommandPort,
    ],
    // The admin HTTP API on config.admin (ADMIN_TOKEN required); `admin_port` in the ready line.
    http: {
      module: AdminModule,
      appOptions: ADMIN_HTTP_APP_OPTIONS,
      configProblems: adminConfigProblems,
      serve: async (app, config) => ({ admin_port: await serveAdminHttp(app, config) }),
    },
  }),
);
