import { Module } from '@nestjs/common';
import { LoginSealOpener } from '@securechat/core';

import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { PasswordHasherRepository } from './password-hasher.repository';
import { UserAccountService } from './user-account.service';
import { UserRepository } from './user.repository';

/**
 * The auth service: users, login decisions (docs/PROTOCOL.md §4.4, §4.5), `get_key`
 * (docs/PROTOCOL.md §7.1, §7.2), and the accounts' state and credential generation gateways recheck
 * their sessions against (`auth.account_states`, apps/gateway-tcp session-recheck.ts).
 *
 * It creates no infrastructure. The process that imports it must make these providers
 * visible to it, normally from one `@Global()` infrastructure module shared with the gateway
 * and relay modules:
 *
 * - `DATABASE` (from @securechat/core): a `Database` (Drizzle over pg or PGlite, migrated);
 * - `CONFIG` (from @securechat/core): the `SecureChatConfig` (allowRegistration, throttle,
 *   insecureFastHash are read here);
 * - `ClockRepository` (from @securechat/core);
 * - `LoginThrottleRepository` (from this app): `MemoryLoginThrottleRepository` in the embedded
 *   process, `RedisLoginThrottleRepository` (counters shared by every instance) in the
 *   distributed one (apps/auth/src/main.ts);
 * - `LoginSealKeyRepository` and `LoginSealReplayRepository` (from @securechat/core): the key
 *   pair gateways seal login secrets to, and the ids already used — `EphemeralLoginSealKeys`
 *   and `MemoryLoginSealReplayRepository` embedded, `FileLoginSealKeyRepository` and
 *   `RedisLoginSealReplayRepository` distributed. LoginSealOpener opens every `auth.login`
 *   in AuthController before AuthService sees it.
 *
 * Exports AuthService (login decisions) and UserAccountService (account management: the
 * admin API in apps/admin, tests) for in-process callers.
 */
@Module({
  controllers: [AuthController],
  providers: [
    AuthService,
    UserAccountService,
    UserRepository,
    PasswordHasherRepository,
    LoginSealOpener,
  ],
  exports: [AuthService, UserAccountService],
})
export class AuthModule {}
