import { randomBytes } from 'node:crypto';

import { Injectable, Logger } from '@nestjs/common';

import { ClockRepository } from '../clock/clock.repository';
import {
  type LoginCommand,
  type LoginResult,
  type SealedLoginCommand,
  type SealedLoginResult,
} from '../contracts/auth.contracts';
import { LoginSealKeyRepository, LoginSealPublicKeyRepository } from './login-seal-keys';
import { LoginSealReplayRepository } from './login-seal-replay.repository';
import {
  acceptReply,
  LOGIN_SEAL_REPLAY_TTL_MS,
  type LoginSealRefusal,
  type OpenedLogin,
  openLogin,
  sealLogin,
  tagResult,
} from './login-seal.format';

/** A sealed command on its way, and the check of its answer. */
export interface PendingSealedLogin {
  readonly envelope: SealedLoginCommand;
  /** auth's answer → the LoginResult; throws LoginReplyRejectedError for a forged success. */
  accept(reply: unknown): LoginResult;
}

/**
 * The gateway's half: seals each LoginCommand to auth's login-seal public key before it
 * leaves the process (login-seal.format.ts), and checks that a successful answer is auth's.
 * Throws LoginSealKeyUnavailableError when the public key cannot be read.
 */
@Injectable()
export class LoginSealer {
  constructor(
    private readonly keys: LoginSealPublicKeyRepository,
    private readonly clock: ClockRepository,
  ) {}

  seal(command: LoginCommand): PendingSealedLogin {
    const sealed = sealLogin(command, this.keys.current(), { now: this.clock.now() });
    return { envelope: sealed.envelope, accept: (reply) => acceptReply(sealed, reply) };
  }
}

/**
 * Auth's half, at the edge of the service: opens a sealed login before anything else sees it,
 * and refuses one that is malformed, of another version, stale, not sealed to our key or
 * altered, or whose id was used before (across instances, LoginSealReplayRepository). A
 * refusal is logged by reason only: never a field of the command.
 */
@Injectable()
export class LoginSealOpener {
  readonly #logger = new Logger('LoginSeal');

  constructor(
    private readonly keys: LoginSealKeyRepository,
    private readonly replays: LoginSealReplayRepository,
    private readonly clock: ClockRepository,
  ) {}

  /**
   * The opened command, or undefined when it must be refused (`bad_request`). `delivery`
   * identifies this delivery of the request (the stream entry id) so that a redelivery of the
   * same entry is not mistaken for a replay; without one every call counts as new.
   */
  async open(payload: unknown, delivery?: string): Promise<OpenedLogin | undefined> {
    const now = this.clock.now();
    const result = openLogin(payload, this.keys.load(), now);
    if (!result.ok) return this.#refuse(result.reason);
    const fresh = await this.replays.claim({
      id: result.opened.id,
      delivery: delivery ?? `once:${randomBytes(12).toString('base64url')}`,
      ttlMs: LOGIN_SEAL_REPLAY_TTL_MS,
      now,
    });
    if (!fresh) return this.#refuse('replayed');
    return result.opened;
  }

  /** The answer to send back: a success tagged for the gateway that sealed the command. */
  answer(opened: OpenedLogin, result: LoginResult): SealedLoginResult {
    return tagResult(opened, result);
  }

  #refuse(reason: LoginSealRefusal): undefined {
    this.#logger.warn(`refused a sealed login (${reason})`);
    return undefined;
  }
}
