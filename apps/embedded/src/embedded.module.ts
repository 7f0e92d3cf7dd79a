import { type DynamicModule, Module } from '@nestjs/common';
import { AdminModule } from '@securechat/admin';
import { AuthModule } from '@securechat/auth';
import { GatewayModule } from '@securechat/gateway-tcp';
import { RelayModule } from '@securechat/relay';

import { type EmbeddedInfrastructure, EmbeddedInfrastructureModule } from './infrastructure.module';

/** Gateway, auth and relay in one process, with the admin API: the no-setup default. */
@Module({})
export class EmbeddedModule {
  static forRoot(infrastructure: EmbeddedInfrastructure): DynamicModule {
    return {
      module: EmbeddedModule,
      imports: [
        EmbeddedInfrastructureModule.forRoot(infrastructure),
        AuthModule,
        RelayModule,
        GatewayModule,
        AdminModule,
      ],
    };
  }
}
