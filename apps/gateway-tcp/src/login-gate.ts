import { type LoggerService } from '@nestjs/common';
import { type LoginResult, type MetricsRepository } from '@securechat/core';
import { type LoginDecision, type LoginRequest, toBase64 } from '@securechat/protocol';

import { type ConnectionLimiter } from './connection-limiter';
import { type AuthClient } from './service-clients';

type RefusalReason = Parameters<MetricsRepository['authFailure']>[0];

export interface LoginGateDeps {
  readonly auth: Pick<AuthClient, 'login'>;
  readonly limiter: Pick<ConnectionLimiter, 'tryStartSession' | 'endSession'>;
  readonly metrics: MetricsRepository;
  readonly logger: LoggerService;
  readonly now: () => number;
  readonly remoteAddress: string;
  /** Whether the connection is gone (the peer may leave while auth decides). */
  readonly closed: () => boolean;
}

/**
 * The login decision of one connection (PROTOCOL.md §3 step 4–5): auth decides on the credentials,
 * and a session slot (ConnectionLimiter) is taken before `login_ok` goes out, so that a full server
 * or a user at its cap says so properly. Holds the slot until `release`.
 */
export class LoginGate {
  /** When the login record arrived (auth's decision is about the account as it was then). */
  startedAt = 0;
  /** Set when the decision was a refusal (for the handshake metric). */
  refused = false;
  /**
   * The account's credential generation auth decided the login with (undefined before a
   * successful login, or when auth did not say): the session keeps it for SessionRecheck.
   */
  credentialsVersion: number | undefined;
  #slotUser: string | undefined;

  constructor(private readonly deps: LoginGateDeps) {}

  /** Whether a session slot was taken (the user logged in on this connection). */
  get holdsSlot(): boolean {
    return this.#slotUser !== undefined;
  }

  /** The ServerHandshake's verifier. Never throws: an unreachable auth is `internal`. */
  verify(request: LoginRequest): Promise<LoginDecision> {
    this.startedAt = this.deps.now();
    // Not an async function: a suspended one would keep `request` (password, signature, key)
    // for as long as auth takes to decide; only the username is needed after.
    let reply: Promise<LoginResult>;
    try {
      reply = this.deps.auth.login({
        action: request.action,
        username: request.username,
        password: request.password,
        signature: toBase64(request.signature),
        ...(request.publicKey ? { publicKey: toBase64(request.publicKey) } : {}),
        h2: toBase64(request.h2),
        sourceAddress: this.deps.remoteAddress,
      });
    } catch (error) {
      reply = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.#decide(reply, request.username);
  }

  async #decide(reply: Promise<LoginResult>, username: string): Promise<LoginDecision> {
    const { limiter } = this.deps;
    try {
      const result = await reply;
      if (!result.ok) {
        this.#refuse(result.code);
        return {
          ok: false,
          code: result.code,
          ...(result.retryAfter ? { retryAfter: result.retryAfter } : {}),
        };
      }
      if (this.deps.closed()) return { ok: false, code: 'internal' }; // peer left meanwhile
      const slot = limiter.tryStartSession(username);
      if (slot !== 'ok') {
        // Both are "come back later" (docs/PROTOCOL.md §9 rate_limited); a user at its cap frees a
        // slot by closing one of its sessions, which takes longer than a busy server.
        this.#refuse(slot);
        return { ok: false, code: 'rate_limited', retryAfter: slot === 'server_full' ? 5 : 30 };
      }
      this.#slotUser = username;
      this.credentialsVersion = result.credentialsVersion;
      return { ok: true, publicKey: Buffer.from(result.publicKey, 'base64') };
    } catch (error) {
      this.deps.logger.error(`auth service unavailable: ${(error as Error).message}`);
      this.#refuse('unavailable');
      return { ok: false, code: 'internal' };
    }
  }

  /** Gives the session slot back (once). */
  release(): void {
    if (this.#slotUser === undefined) return;
    this.deps.limiter.endSession(this.#slotUser);
    this.#slotUser = undefined;
  }

  #refuse(reason: RefusalReason): void {
    this.refused = true;
    this.deps.metrics.authFailure(reason);
  }
}
