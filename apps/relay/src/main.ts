/**
 * `npm run start:relay`: the relay service on its own, on PostgreSQL and Redis. Any number can
 * run side by side; a request held by an instance that dies is reclaimed by another one.
 */
import { FanoutPort, RedisFanout, runMain, startServiceProcess } from '@securechat/core';

import { RedisSendQuotaRepository } from './redis-send-quota.repository';
import { RelayModule } from './relay.module';
import { SendQuotaRepository } from './send-quota.repository';

runMain(() =>
  startServiceProcess({
    service: 'relay',
    module: RelayModule,
    providers: (_config, redis) => [
      // Publishes only: no subscriber connection (the gateways subscribe).
      RedisFanout.provider(redis),
      RedisSendQuotaRepository.provider(redis),
    ],
    closeOnShutdown: [FanoutPort, SendQuotaRepository],
  }),
);
