import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage } from 'node:http';

import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

import { AdminUnauthorizedError } from './errors/admin-unauthorized.error';

/** Where the guard leaves who acted, for the audit log (see AdminRequestContext). */
export const ADMIN_ACTOR = Symbol('AdminActor');

/** A request that passed the guard. */
export interface AdminRequest extends IncomingMessage {
  [ADMIN_ACTOR]?: string;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The audit log's name for a token: a short prefix of its SHA-256, enough to tell tokens
 * apart after a rotation, far too short to help anyone guess one.
 */
export function tokenActor(token: string): string {
  return `token:${sha256(token).subarray(0, 6).toString('hex')}`;
}

/**
 * Admits a request only with `Authorization: Bearer <config.admin.token>`. Both sides are
 * hashed before `timingSafeEqual`, so the comparison takes the same time whatever the length
 * or content of the guess and reveals neither. Every refusal is the same AdminUnauthorizedError.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  readonly #expected: Buffer | undefined;
  readonly #actor: string | undefined;

  constructor(@Inject(CONFIG) config: SecureChatConfig) {
    const token = config.admin.token;
    // Without a configured token nothing is admitted; the processes refuse to start that way.
    this.#expected = token === undefined ? undefined : sha256(token);
    this.#actor = token === undefined ? undefined : tokenActor(token);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const presented = bearerToken(request.headers.authorization);
    // Hashed even when there is nothing to compare, so a missing header costs the same.
    const matches = timingSafeEqual(sha256(presented ?? ''), this.#expected ?? sha256(''));
    if (!matches || presented === undefined || this.#expected === undefined) {
      throw new AdminUnauthorizedError();
    }
    request[ADMIN_ACTOR] = this.#actor;
    return true;
  }
}

/** The token of a `Bearer` authorization header (scheme case-insensitive, RFC 7235). */
function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}
