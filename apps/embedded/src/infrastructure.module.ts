import {
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Module,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  ClockRepository,
  CONFIG,
  DATABASE,
  type DatabaseHandle,
  FanoutPort,
  InProcessBus,
  InProcessClient,
  InProcessFanout,
  type SecureChatConfig,
} from '@securechat/core';

import { LoginThrottleRepository, MemoryLoginThrottleRepository } from '@securechat/auth';
import { AUTH_CLIENT, RELAY_CLIENT } from '@securechat/gateway-tcp';

const DATABASE_HANDLE = Symbol('DatabaseHandle');

/** Closes the database last, after every module has flushed what it owed it. */
@Injectable()
class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE_HANDLE) private readonly handle: DatabaseHandle) {}

  async onApplicationShutdown(): Promise<void> {
    await this.handle.close();
  }
}

export interface EmbeddedInfrastructure {
  readonly config: SecureChatConfig;
  readonly database: DatabaseHandle;
  readonly bus: InProcessBus;
}

/**
 * The side effects of the embedded mode, provided globally: PGlite, the in-process bus and
 * fan-out, in-memory login throttling. The distributed mode swaps these for Postgres and Redis;
 * the service modules do not change.
 */
@Global()
@Module({})
export class EmbeddedInfrastructureModule {
  static forRoot(infrastructure: EmbeddedInfrastructure): DynamicModule {
    const providers = [
      { provide: CONFIG, useValue: infrastructure.config },
      { provide: DATABASE_HANDLE, useValue: infrastructure.database },
      { provide: DATABASE, useValue: infrastructure.database.db },
      { provide: InProcessBus, useValue: infrastructure.bus },
      ClockRepository,
      { provide: FanoutPort, useClass: InProcessFanout },
      { provide: LoginThrottleRepository, useClass: MemoryLoginThrottleRepository },
      {
        provide: AUTH_CLIENT,
        useFactory: (bus: InProcessBus) => new InProcessClient(bus),
        inject: [InProcessBus],
      },
      {
        provide: RELAY_CLIENT,
        useFactory: (bus: InProcessBus) => new InProcessClient(bus),
        inject: [InProcessBus],
      },
      DatabaseCloser,
    ];
    return {
      module: EmbeddedInfrastructureModule,
      providers,
      exports: providers
        .filter((p) => p !== DatabaseCloser)
        .map((p) => ('provide' in p ? p.provide : p)),
    };
  }
}
