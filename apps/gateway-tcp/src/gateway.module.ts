import { Module } from '@nestjs/common';
import { LoginSealer } from '@securechat/core';

import { ConnectionLimiter } from './connection-limiter';
import { GatewayServer } from './gateway.server';
import { IdentityKeyRepository } from './identity-key.repository';
import { AuthClient, RelayClient } from './service-clients';
import { SessionCloser } from './session-closer';
import { SessionRegistry } from './session-registry';
import { TranscriptShipper } from './transcript-shipper';

/**
 * The TCP gateway. Expects from the process wiring (a global module): `CONFIG`,
 * `ClockRepository`, `FanoutPort`, `PresenceRepository`, `SessionCommandPort` (operators'
 * orders to close sessions, handled by SessionCloser), `LoginSealPublicKeyRepository` (auth's
 * login-seal public key, which AuthClient seals login secrets to), and Nest client proxies
 * under `AUTH_CLIENT` and `RELAY_CLIENT`. Call `GatewayServer.start()` once the services answer.
 */
@Module({
  providers: [
    GatewayServer,
    IdentityKeyRepository,
    AuthClient,
    LoginSealer,
    RelayClient,
    SessionRegistry,
    SessionCloser,
    ConnectionLimiter,
    TranscriptShipper,
  ],
  exports: [GatewayServer, SessionRegistry],
})
export class GatewayModule {}
