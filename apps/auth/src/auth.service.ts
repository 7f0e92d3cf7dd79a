import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';

import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';

import {
  type AccountState,
  ClockRepository,
  CONFIG,
  type GetKeyQuery,
  type GetKeyResult,
  type LoginCommand,
  type LoginResult,
  type SecureChatConfig,
} from '@securechat/core';
import {
  clientAuthInput,
  decodeCanonicalBase64,
  exportSpki,
  fingerprint,
  HASH_BYTES,
  importUserPublicKey,
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  toBase64,
  USERNAME_PATTERN,
  userVerify,
} from '@securechat/protocol';

import { InvalidUserInputError } from './errors/invalid-user-input.error';
import { UserExistsError } from './errors/user-exists.error';
import { UserNotFoundError } from './errors/user-not-found.error';
import { LoginThrottleRepository } from './login-throttle.repository';
import { PasswordHasherRepository } from './password-hasher.repository';
import { addressThrottleKey, usernameThrottleKey } from './throttle-keys';
import { type UserRecord, UserRepository, type UserSearch } from './user.repository';

/** An account to create (operators and tests; self-registration goes through `login`). */
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

// The answers, one object each: every failed login returns literally the same value (§4.5).
const AUTH_FAILED: LoginResult = Object.freeze({ ok: false, code: 'auth_failed' });
const BAD_REQUEST: LoginResult = Object.freeze({ ok: false, code: 'bad_request' });
const FORBIDDEN: LoginResult = Object.freeze({ ok: false, code: 'forbidden' });
const CONFLICT: LoginResult = Object.freeze({ ok: false, code: 'conflict' });
const NOT_FOUND: GetKeyResult = Object.freeze({ ok: false, code: 'not_found' });

/**
 * Verified in place of a password that breaks the length rule, so the argon2 work is the same
 * without feeding argon2 an unbounded input. Its result is ignored.
 */
const PLACEHOLDER_PASSWORD = 'placeholder-for-a-password-out-of-range';

function rateLimited(seconds: number): LoginResult {
  return { ok: false, code: 'rate_limited', retryAfter: Math.max(1, Math.ceil(seconds)) };
}

/** §4.4: 8 to 1024 bytes once UTF-8 encoded; a lone surrogate has no UTF-8 form at all. */
function passwordLengthOk(password: string): boolean {
  if (!password.isWellFormed()) return false;
  const bytes = Buffer.byteLength(password, 'utf8');
  return bytes >= PASSWORD_MIN_BYTES && bytes <= PASSWORD_MAX_BYTES;
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
 * Login decisions, self-registration, key lookup and account administration
 * (docs/PROTOCOL.md §4.4, §4.5, `get_key` §7.1–7.2). Every side effect is a repository, so
 * this class is pure logic under unit test.
 */
@Injectable()
export class AuthService implements OnModuleInit {
  readonly #logger = new Logger(AuthService.name);
  /**
   * Stands in for the key of an account that does not exist or is deleted, so a signature is
   * verified whatever the case. Its private half is discarded: nothing verifies under it.
   */
  readonly #dummyKey: KeyObject = generateKeyPairSync('ed25519').publicKey;
  #dummyHash: Promise<string> | undefined;

  constructor(
    private readonly users: UserRepository,
    private readonly hasher: PasswordHasherRepository,
    private readonly throttle: LoginThrottleRepository,
    private readonly clock: ClockRepository,
    @Inject(CONFIG) private readonly config: SecureChatConfig,
  ) {}

  /** Computes the dummy password hash at startup, so that the first failed login is not slower. */
  async onModuleInit(): Promise<void> {
    await this.#dummyPasswordHash();
  }

  /**
   * Decides a login or a self-registration (§4.4, §4.5), as the gateway asks after decrypting
   * the login record. Never says why a login failed: unknown or deleted account, wrong
   * password, wrong signature, disabled account and invalid username or password all return
   * the same `auth_failed`, after the same work (one argon2 verify, one signature verify).
   * A throttled attempt (§4.5) is refused before the argon2 work. Rejects only when a
   * repository fails (storage down): the gateway answers that with `internal`.
   */
  login(command: LoginCommand): Promise<LoginResult> {
    return command.action === 'register' ? this.#register(command) : this.#login(command);
  }

  /**
   * The public key of an account for `get_key` (§7.1; answered as `key`, §7.2): any account
   * that is not deleted, disabled ones included (their stored messages still need verifying).
   */
  async getKey(query: GetKeyQuery): Promise<GetKeyResult> {
    if (!USERNAME_PATTERN.test(query.user)) return NOT_FOUND;
    const user = await this.users.findByUsername(query.user);
    if (user === undefined || user.deletedAt !== null) return NOT_FOUND;
    return {
      ok: true,
      user: user.username,
      publicKey: toBase64(user.publicKey),
      fingerprint: user.fingerprint,
    };
  }

  /**
   * The state and credential generation of each named account, for a gateway rechecking the
   * sessions it holds (`auth.account_states`): one query for the whole list. Names that were
   * never taken, or that cannot be (the pattern), are left out. The caller bounds the list
   * (AuthController's schema: at most `ACCOUNT_STATES_MAX_USERNAMES` names per request).
   */
  async accountStates(usernames: readonly string[]): Promise<AccountState[]> {
    const valid = [...new Set(usernames)].filter((name) => USERNAME_PATTERN.test(name));
    const rows = await this.users.states(valid);
    return rows.map((row) => ({
      username: row.username,
      state: row.deletedAt !== null ? 'deleted' : row.disabled ? 'disabled' : 'active',
      credentialsVersion: row.credentialsVersion,
    }));
  }

  /**
   * Creates an account (operators, tests) under the same rules as self-registration (§4.4),
   * whatever config.allowRegistration says. Throws InvalidUserInputError or UserExistsError.
   */
  async createUser(input: NewUser): Promise<UserSummary> {
    this.#checkNewUser(input.username, input.password, input.publicKey);
    if ((await this.users.findByUsername(input.username)) !== undefined) {
      throw new UserExistsError(input.username);
    }
    const created = await this.#insertUser(input.username, input.password, input.publicKey);
    this.#logger.log(`user ${created.username} created by an operator`);
    return summary(created);
  }

  /**
   * Disables or re-enables an account: a disabled account cannot log in (its logins fail like
   * any other, §4.5) but its key stays available. Throws UserNotFoundError for an unknown or
   * deleted account.
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

  /** Every account, deleted ones included, by name. */
  async listUsers(): Promise<UserSummary[]> {
    return (await this.users.list()).map(summary);
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
   * Sets a new password (operator reset) under the §4.4 length rule, raising the account's
   * credential generation (gateways end the sessions opened before it). Throws
   * InvalidUserInputError, or UserNotFoundError for an unknown or deleted account.
   */
  async resetPassword(username: string, password: string): Promise<void> {
    if (!USERNAME_PATTERN.test(username)) throw new UserNotFoundError(username);
    this.#checkPassword(password);
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
    this.#checkPublicKey(spki);
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

  /**
   * Throttling (§4.5) without lockouts by strangers: every attempt counts against its source
   * address, but against the username only when the account's own key signed this session's
   * H2 — only then is someone holding the key guessing the password. A stranger's failures,
   * however many, never block the user; the answers stay `auth_failed` / `rate_limited` either
   * way, and the username's block is only ever consulted for the key holder, so it tells a
   * stranger nothing. The signature is checked first (it is cheap) so that the check and the
   * count are one atomic `attempt`; a success gives the address's unit back.
   */
  async #login(command: LoginCommand): Promise<LoginResult> {
    const h2 = decodeCanonicalBase64(command.h2);
    const signature = decodeCanonicalBase64(command.signature);
    if (h2?.length !== HASH_BYTES || signature === undefined) return BAD_REQUEST;

    // An invalid name cannot exist, so it skips the lookup; that saves a query and reveals
    // nothing, the pattern being public.
    const user = USERNAME_PATTERN.test(command.username)
      ? await this.users.findByUsername(command.username)
      : undefined;
    const account = user !== undefined && user.deletedAt === null ? user : undefined;
    const storedKey = account === undefined ? undefined : this.#importStoredKey(account);
    // Verified whatever the case (a key nobody holds stands in), so that the work is the same.
    const signatureValid = userVerify(storedKey ?? this.#dummyKey, clientAuthInput(h2), signature);
    const keyHolder = account !== undefined && storedKey !== undefined && signatureValid;

    const userKey = usernameThrottleKey(command.username);
    const addressKey = addressThrottleKey(command.sourceAddress);
    const blocked = await this.throttle.attempt(
      keyHolder ? userKey : null,
      addressKey,
      this.clock.now(),
    );
    if (blocked > 0) return rateLimited(blocked);

    const passwordHash = account?.passwordHash ?? (await this.#dummyPasswordHash());
    const passwordInRange = passwordLengthOk(command.password);
    // Run whatever is already known to have failed (§4.5: same work).
    const passwordMatches = await this.hasher.verify(
      passwordHash,
      passwordInRange ? command.password : PLACEHOLDER_PASSWORD,
    );
    if (!keyHolder || account.disabled || !passwordInRange || !passwordMatches) {
      return AUTH_FAILED; // the attempt's units stay counted
    }
    await this.throttle.recordSuccess(userKey);
    await this.throttle.refund(addressKey, this.clock.now());
    return {
      ok: true,
      username: account.username,
      publicKey: toBase64(account.publicKey),
      credentialsVersion: account.credentialsVersion,
    };
  }

  /**
   * Every registration that passes the first checks spends one unit of the address's failure
   * budget, taken or not: a `conflict` tells that a name exists, and each new account is one
   * more identity, so neither may be had in bulk from one address (THROTTLE_ADDRESS_FAILURES).
   * The unit is taken atomically with the check (`attempt`) and given back when the request is
   * refused before any work (registration off, malformed input).
   */
  async #register(command: LoginCommand): Promise<LoginResult> {
    const addressKey = addressThrottleKey(command.sourceAddress);
    const blocked = await this.throttle.attempt(null, addressKey, this.clock.now());
    if (blocked > 0) return rateLimited(blocked);
    const request = this.#registration(command);
    if ('refused' in request) {
      await this.throttle.refund(addressKey, this.clock.now());
      return request.refused;
    }
    const { key, spki, h2, signature } = request;
    // Proof of possession (§4.4): the client signed this session's H2 with the key it
    // registers. A failure counts against the address only: the name is nobody's yet.
    if (!userVerify(key, clientAuthInput(h2), signature)) return AUTH_FAILED;
    // Checked before hashing so that a taken name costs no argon2; the insert checks again.
    if ((await this.users.findByUsername(command.username)) !== undefined) return CONFLICT;
    let created: UserRecord;
    try {
      created = await this.#insertUser(command.username, command.password, spki);
    } catch (error) {
      if (error instanceof UserExistsError) return CONFLICT;
      throw error;
    }
    this.#logger.log(`user ${created.username} registered`);
    return {
      ok: true,
      username: created.username,
      publicKey: toBase64(created.publicKey),
      credentialsVersion: created.credentialsVersion,
    };
  }

  /** A registration's decoded fields, or the answer refusing it before any work. */
  #registration(command: LoginCommand):
    | { readonly refused: LoginResult }
    | {
        readonly key: KeyObject;
        readonly spki: Buffer;
        readonly h2: Buffer;
        readonly signature: Buffer;
      } {
    if (!this.config.allowRegistration) return { refused: FORBIDDEN };
    const h2 = decodeCanonicalBase64(command.h2);
    const signature = decodeCanonicalBase64(command.signature);
    const spki =
      command.publicKey === undefined ? undefined : decodeCanonicalBase64(command.publicKey);
    if (h2?.length !== HASH_BYTES || signature === undefined || spki === undefined) {
      return { refused: BAD_REQUEST };
    }
    try {
      return {
        key: this.#checkNewUser(command.username, command.password, spki),
        spki,
        h2,
        signature,
      };
    } catch (error) {
      if (error instanceof InvalidUserInputError) return { refused: BAD_REQUEST };
      throw error;
    }
  }

  /**
   * The value rules of §4.4 for a new account; returns the imported key. The key must also be
   * in canonical DER (OpenSSL tolerates trailing bytes), so that one key has one fingerprint.
   */
  #checkNewUser(username: string, password: string, spki: Uint8Array): KeyObject {
    if (!USERNAME_PATTERN.test(username)) {
      throw new InvalidUserInputError('username', 'must match ^[a-z0-9_]{3,32}$');
    }
    this.#checkPassword(password);
    return this.#checkPublicKey(spki);
  }

  #checkPassword(password: string): void {
    if (!passwordLengthOk(password)) {
      throw new InvalidUserInputError(
        'password',
        `must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8`,
      );
    }
  }

  #checkPublicKey(spki: Uint8Array): KeyObject {
    let key: KeyObject;
    try {
      key = importUserPublicKey(spki);
    } catch {
      throw new InvalidUserInputError(
        'public_key',
        'must be the SPKI of an RSA key of at least 2048 bits or of an Ed25519 key',
      );
    }
    if (!exportSpki(key).equals(spki)) {
      throw new InvalidUserInputError('public_key', 'must be canonical DER');
    }
    return key;
  }

  async #insertUser(username: string, password: string, spki: Uint8Array): Promise<UserRecord> {
    const publicKey = Buffer.from(spki);
    return this.users.create({
      username,
      passwordHash: await this.hasher.hash(password),
      publicKey,
      fingerprint: fingerprint(publicKey),
      createdAt: new Date(this.clock.now()),
    });
  }

  /** A stored key that no longer imports (it was checked when stored) fails the login. */
  #importStoredKey(user: UserRecord): KeyObject | undefined {
    try {
      return importUserPublicKey(user.publicKey);
    } catch {
      this.#logger.error(`stored public key of user ${user.username} does not import`);
      return undefined;
    }
  }

  /** Hash of a random password nobody knows, made once with the current parameters. */
  #dummyPasswordHash(): Promise<string> {
    this.#dummyHash ??= this.hasher.hash(randomBytes(32).toString('base64')).catch((error) => {
      // Not cached when it failed: the next login tries again.
      this.#dummyHash = undefined;
      throw error;
    });
    return this.#dummyHash;
  }
}
