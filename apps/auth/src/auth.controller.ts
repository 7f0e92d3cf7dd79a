import { Controller, Optional } from '@nestjs/common';
import { type BaseRpcContext, Ctx, MessagePattern, Payload } from '@nestjs/microservices';

import {
  type AccountStatesResult,
  AUTH_PATTERNS,
  type GetKeyResult,
  type LoginResult,
  LoginSealOpener,
  MetricsRepository,
  NoopMetricsRepository,
  RedisStreamsContext,
  type SealedLoginResult,
} from '@securechat/core';

import { accountStatesQuerySchema, getKeyQuerySchema, loginCommandSchema } from './auth.schemas';
import { AuthService } from './auth.service';

const BAD_REQUEST = Object.freeze({ ok: false, code: 'bad_request' }) satisfies LoginResult;
const NOT_FOUND: GetKeyResult = Object.freeze({ ok: false, code: 'not_found' });
const STATES_BAD_REQUEST: AccountStatesResult = Object.freeze({ ok: false, code: 'bad_request' });

/**
 * The auth service's end of the gateway ↔ auth transport (libs/core patterns.ts). Payloads
 * are checked against auth.schemas.ts before anything else; a malformed one is answered with
 * a refusal, not an exception, so the transport never sees a handler error for bad input.
 */
@Controller()
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly seal: LoginSealOpener,
    @Optional() private readonly metrics: MetricsRepository = new NoopMetricsRepository(),
  ) {}

  /**
   * A decrypted login record (docs/PROTOCOL.md §4.4), sealed by the gateway to our login-seal key
   * (SealedLoginCommand) → LoginResult, a success tagged for that gateway. Opened here, at the
   * edge: one that cannot be opened — malformed, stale, replayed, altered, for another key —
   * is `bad_request`, and so is a malformed command inside.
   */
  @MessagePattern(AUTH_PATTERNS.login)
  async login(
    @Payload() payload: unknown,
    @Ctx() context?: BaseRpcContext,
  ): Promise<SealedLoginResult> {
    // A stream entry handed to us after another instance died is the same request, not a replay.
    const delivery = context instanceof RedisStreamsContext ? context.getEntryId() : undefined;
    const opened = await this.seal.open(payload, delivery);
    const command = opened && loginCommandSchema.safeParse(opened.command);
    if (!opened || !command?.success) {
      this.metrics.login(BAD_REQUEST.code);
      return BAD_REQUEST;
    }
    const result = await this.auth.login(command.data);
    const registered = command.data.action === 'register';
    this.metrics.login(result.ok ? (registered ? 'registered' : 'ok') : result.code);
    return this.seal.answer(opened, result);
  }

  /**
   * `get_key` (docs/PROTOCOL.md §7.1) → GetKeyResult. The contract has no `bad_request` for it, and
   * a malformed query names no account, so it is answered `not_found`.
   */
  @MessagePattern(AUTH_PATTERNS.getKey)
  getKey(@Payload() payload: unknown): Promise<GetKeyResult> {
    const query = getKeyQuerySchema.safeParse(payload);
    return query.success ? this.auth.getKey(query.data) : Promise.resolve(NOT_FOUND);
  }

  /**
   * A gateway's periodic recheck of the accounts of the sessions it holds (AccountStatesQuery,
   * at most ACCOUNT_STATES_MAX_USERNAMES names) → AccountStatesResult; a malformed or
   * oversized batch is `bad_request`.
   */
  @MessagePattern(AUTH_PATTERNS.accountStates)
  async accountStates(@Payload() payload: unknown): Promise<AccountStatesResult> {
    const query = accountStatesQuerySchema.safeParse(payload);
    if (!query.success) return STATES_BAD_REQUEST;
    return { ok: true, accounts: await this.auth.accountStates(query.data.usernames) };
  }
}
