/**
 * `npm run start:auth`: the auth service on its own, on PostgreSQL and Redis. Any number can
 * run side by side: each request is handled by exactly one of them (Redis Streams consumer
 * group), and throttling counters live in Redis.
 */
import { runMain, startServiceProcess } from '@securechat/core';

import { AuthModule } from './auth.module';
import { LoginThrottleRepository } from './login-throttle.repository';
import { RedisLoginThrottleRepository } from './redis-login-throttle.repository';

runMain(() =>
  startServiceProcess({
    service: 'auth',
    module: AuthModule,
    providers: (config) => [
      RedisLoginThrottleRepository.provider(config.redisUrl, config.redisPrefix),
    ],
    closeOnShutdown: [LoginThrottleRepository],
  }),
);
