import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { LoginThrottleRepository, MemoryLoginThrottleRepository } from '@securechat/auth';
import { MemorySendQuotaRepository, SendQuotaRepository } from '@securechat/relay';
import {
  baseProviders,
  type DatabaseHandle,
  EphemeralLoginSealKeys,
  FanoutPort,
  InProcessBus,
  InProcessClient,
  InProcessFanout,
  InProcessSessionCommands,
  LoginSealKeyRepository,
  LoginSealPublicKeyRepository,
  LoginSealReplayRepository,
  MemoryLoginSealReplayRepository,
  MemoryPresenceRepository,
  PresenceRepository,
  providedTokens,
  type SecureChatConfig,
  SessionCommandPort,
  SessionControl,
  SessionControlService,
} from '@securechat/core';
import { AUTH_CLIENT, RELAY_CLIENT } from '@securechat/gateway-tcp';

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
    const providers: Provider[] = [
      ...baseProviders(infrastructure.config, infrastructure.database),
      { provide: InProcessBus, useValue: infrastructure.bus },
      { provide: FanoutPort, useClass: InProcessFanout },
      { provide: LoginThrottleRepository, useClass: MemoryLoginThrottleRepository },
      { provide: SendQuotaRepository, useClass: MemorySendQuotaRepository },
      // The login seal runs here too, so that there is one login path, not a sealed one and a
      // plain one to get wrong. Its key pair is made at start and lives in memory only: gateway
      // and auth are one process, and nothing is written anywhere.
      { provide: EphemeralLoginSealKeys, useValue: new EphemeralLoginSealKeys() },
      { provide: LoginSealKeyRepository, useExisting: EphemeralLoginSealKeys },
      { provide: LoginSealPublicKeyRepository, useExisting: EphemeralLoginSealKeys },
      { provide: LoginSealReplayRepository, useClass: MemoryLoginSealReplayRepository },
      { provide: PresenceRepository, useClass: MemoryPresenceRepository },
      { provide: SessionCommandPort, useClass: InProcessSessionCommands },
      { provide: SessionControl, useClass: SessionControlService },
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
    ];
    return {
      module: EmbeddedInfrastructureModule,
      providers,
      exports: providedTokens(providers) as Provider[],
    };
  }
}
