import { Controller, Optional } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';

import {
  AUTH_PATTERNS,
  type GetKeyResult,
  type LoginResult,
  MetricsRepository,
  NoopMetricsRepository,
} from '@securechat/core';

import { getKeyQuerySchema, loginCommandSchema } from './auth.schemas';
import { AuthService } from './auth.service';

const BAD_REQUEST: LoginResult = Object.freeze({ ok: false, code: 'bad_request' });
const NOT_FOUND: GetKeyResult = Object.freeze({ ok: false, code: 'not_found' });

/**
 * The auth service's end of the gateway ↔ auth transport (libs/core patterns.ts). Payloads
 * are checked against auth.schemas.ts before anything else; a malformed one is answered with
 * a refusal, not an exception, so the transport never sees a handler error for bad input.
 */
@Controller()
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    @Optional() private readonly metrics: MetricsRepository = new NoopMetricsRepository(),
  ) {}

  /** A decrypted login record (§4.4) → LoginResult; malformed payload → `bad_request`. */
  @MessagePattern(AUTH_PATTERNS.login)
  async login(@Payload() payload: unknown): Promise<LoginResult> {
    const command = loginCommandSchema.safeParse(payload);
    const result = command.success ? await this.auth.login(command.data) : BAD_REQUEST;
    const registered = command.success && command.data.action === 'register';
    this.metrics.login(result.ok ? (registered ? 'registered' : 'ok') : result.code);
    return result;
  }

  /**
   * `get_key` (§7.1) → GetKeyResult. The contract has no `bad_request` for it, and a malformed
   * query names no account, so it is answered `not_found`.
   */
  @MessagePattern(AUTH_PATTERNS.getKey)
  getKey(@Payload() payload: unknown): Promise<GetKeyResult> {
    const query = getKeyQuerySchema.safeParse(payload);
    return query.success ? this.auth.getKey(query.data) : Promise.resolve(NOT_FOUND);
  }
}
