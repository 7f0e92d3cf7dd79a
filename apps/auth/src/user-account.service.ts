import { Injectable, Logger } from '@nestjs/common';

import { ClockRepository } from '@securechat/core';
import { fingerprint, USERNAME_PATTERN } from '@securechat/protocol';

import { checkNewUser, checkPassword, checkPublicKey, insertUser } from './account-rules';
import { UserExistsError } from './errors/user-exists.error';
import { UserNotFoundError } from './errors/user-not-found.error';
import { LoginThrottleRepository } from './login-throttle.repository';
import { PasswordHasherRepository } from './password-hasher.repository';
import { usernameThrottleKey } from './throttle-keys';
import { type UserRecord, UserRepository, type UserSearch } from './user.repository';

/** An account to create (operators, tests; self-registration goes through AuthService.login). */
export interface NewUser {
  readonly username: string;
  readonly password: string;
  /** SPKI DER of an RSA (≥ 2048 bits) or Ed25519 public key. */
  readonly publicKey: Buffer;
}

/** An account as operators see it: no hash, no key bytes. */
export interface UserSummary {
  readonly username: string;
  readonly fingerprint: string;
  readonly disabled: boolean;
  readonly deletedAt: Date | null;
  readonly createdAt: Date;
}

function summary(user: UserRecord): UserSummary {
  return {
    username: user.username,
    fingerprint: user.fingerprint,
    disabled: user.disabled,
    deletedAt: user.deletedAt,
    createdAt: user.createdAt,
  };
}

/**
 * Account management for operators (the admin API, apps/admin): create, look up, disable,
 * delete, reset a password, replace a key, clear a username's throttle. Login decisions are
 * AuthService's; both apply the rules of account-rules.ts. Every side effect is a repository,
 * so this class is pure logic under unit test.
 */
@Injectable()
export class UserAccountService {
  readonly #logger = new Logger(UserAccountService.name);

  constructor(
    private readonly users: UserRepository,
    private readonly hasher: PasswordHasherRepository,
    private readonly throttle: LoginThrottleRepository,
    private readonly clock: ClockRepository,
  ) {}

  /**
   * Creates an account under the same rules as self-registration (docs/PROTOCOL.md §4.4), whatever
   * config.allowRegistration says. Throws InvalidUserInputError or UserExistsError.
   */
  async createUser(input: NewUser): Promise<UserSummary> {
    checkNewUser(input.username, input.password, input.publicKey);
    if ((await this.users.findByUsername(input.username)) !== undefined) {
      throw new UserExistsError(input.username);
    }
    const created = await insertUser(
      { users: this.users, hasher: this.hasher, clock: this.clock },
      input.username,
      input.password,
      input.publicKey,
    );
    this.#logger.log(`user ${created.username} created by an operator`);
    return summary(created);
  }

  /**
   * Disables or re-enables an account: a disabled account cannot log in (its logins fail like
   * any other, docs/PROTOCOL.md §4.5) but its key stays available. Throws UserNotFoundError for an
   * unknown or deleted account.
   */
  async setDisabled(username: string, disabled: boolean): Promise<void> {
    const updated =
      USERNAME_PATTERN.test(username) &&
      (await this.users.setDisabled(username, disabled, new Date(this.clock.now())));
    if (!updated) throw new UserNotFoundError(username);
    this.#logger.log(`user ${username} ${disabled ? 'disabled' : 'enabled'}`);
  }

  /**
   * Deletes an account: it can no longer log in and `get_key` no longer finds it, but the row
   * stays (its messages and transcripts keep a verifiable author) and the name is never given
   * out again. Throws UserNotFoundError for an unknown or already deleted account.
   */
  async deleteUser(username: string): Promise<void> {
    const deleted =
      USERNAME_PATTERN.test(username) &&
      (await this.users.markDeleted(username, new Date(this.clock.now())));
    if (!deleted) throw new UserNotFoundError(username);
    this.#logger.log(`user ${username} deleted`);
  }

  /** A page of accounts by name, deleted ones included (see UserRepository.search). */
  async searchUsers(search: UserSearch): Promise<UserSummary[]> {
    return (await this.users.search(search)).map(summary);
  }

  /** One account, deleted or not. Throws UserNotFoundError when the name was never taken. */
  async getUser(username: string): Promise<UserSummary> {
    const user = USERNAME_PATTERN.test(username)
      ? await this.users.findByUsername(username)
      : undefined;
    if (user === undefined) throw new UserNotFoundError(username);
    return summary(user);
  }

  /**
   * Sets a new password (operator reset) under the docs/PROTOCOL.md §4.4 length rule, raising the
   * account's credential generation (gateways end the sessions opened before it). Throws
   * InvalidUserInputError, or UserNotFoundError for an unknown or deleted account.
   */
  async resetPassword(username: string, password: string): Promise<void> {
    if (!USERNAME_PATTERN.test(username)) throw new UserNotFoundError(username);
    checkPassword(password);
    const hash = await this.hasher.hash(password);
    if (!(await this.users.setPasswordHash(username, hash, new Date(this.clock.now())))) {
      throw new UserNotFoundError(username);
    }
    this.#logger.log(`password of user ${username} reset by an operator`);
  }

  /**
   * Replaces an account's public key under the same policy as a new account's. Logins are
   * decided against the stored key, so the next login needs the new one; the change raises the
   * account's credential generation, so gateways end the sessions opened before it (the admin
   * API also orders them closed at once). Throws InvalidUserInputError, or UserNotFoundError
   * for an unknown or deleted account.
   */
  async setPublicKey(username: string, spki: Uint8Array): Promise<UserSummary> {
    if (!USERNAME_PATTERN.test(username)) throw new UserNotFoundError(username);
    checkPublicKey(spki);
    const publicKey = Buffer.from(spki);
    const updated = await this.users.setPublicKey(
      username,
      publicKey,
      fingerprint(publicKey),
      new Date(this.clock.now()),
    );
    if (updated === undefined) throw new UserNotFoundError(username);
    this.#logger.log(`public key of user ${username} replaced by an operator`);
    return summary(updated);
  }

  /**
   * Forgets the failed logins counted against a username (not against any address), so an
   * account locked out by someone else's guessing can log in again at once.
   */
  async clearThrottle(username: string): Promise<void> {
    await this.throttle.clear(usernameThrottleKey(username));
  }
}
