import { Module } from '@nestjs/common';
import { LoginSealer } from '@securechat/core';

import { ConnectionLimiter } from './connection-limiter';
import { GatewayServer } from './gateway.server';
import { IdentityKeyRepository } from './identity-key.repository';
import { AuthClient, RelayClient } from './service-clients';
import { SessionCloser } from './session-closer';
import { SessionRecheck } from './session-recheck';
import { SessionRegistry } from './session-registry';
import { TranscriptShipper } from './transcript-shipper';

/**
 * The TCP gateway. Expects from the process wiring (a global module): `CONFIG`,
 * `ClockRepository`, `FanoutPort`, `PresenceRepository`, `SessionCommandPort` (operators'
 * orders to close sessions, handled by SessionCloser), `LoginSealPublicKeyRepository` (auth's
 * login-seal public key, which AuthClient seals login secrets to), and Nest client proxies
 * under `AUTH_CLIENT` and `RELAY_CLIENT`. Call `GatewayServer.start()` once the services answer.
 * SessionRecheck asks auth (`auth.account_states`) every SECURECHAT_SESSION_RECHECK_SECONDS
 * about the accounts of the sessions held here and ends those an order to close missed.
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
    SessionRecheck,
    ConnectionLimiter,
    TranscriptShipper,
  ],
  exports: [GatewayServer, SessionRegistry],
})
export class GatewayModule {}
