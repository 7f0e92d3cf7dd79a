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
  HASH_BYTES,
  importUserPublicKey,
  toBase64,
  USERNAME_PATTERN,
  userVerify,
} from '@securechat/protocol';

import { checkNewUser, insertUser, passwordLengthOk } from './account-rules';
import { InvalidUserInputError } from './errors/invalid-user-input.error';
import { UserExistsError } from './errors/user-exists.error';
import { LoginThrottleRepository } from './login-throttle.repository';
import { PasswordHasherRepository } from './password-hasher.repository';
import { addressThrottleKey, usernameThrottleKey } from './throttle-keys';
import { type UserRecord, UserRepository } from './user.repository';

// The answers, one object each: every failed login returns literally the same value
// (docs/PROTOCOL.md §4.5).
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

/**
 * Login decisions, self-registration, key lookup and account states: what the gateway asks
 * over `auth.*` (docs/PROTOCOL.md §4.4, §4.5, `get_key` docs/PROTOCOL.md §7.1–7.2). Operators'
 * changes to accounts are UserAccountService's; both apply the rules of account-rules.ts. Every
 * side effect is a repository, so this class is pure logic under unit test.
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
   * Decides a login or a self-registration (docs/PROTOCOL.md §4.4, §4.5), as the gateway asks after
   * decrypting the login record. Never says why a login failed: unknown or deleted account, wrong
   * password, wrong signature, disabled account and invalid username or password all return
   * the same `auth_failed`, after the same work (one argon2 verify, one signature verify).
   * A throttled attempt (docs/PROTOCOL.md §4.5) is refused before the argon2 work. Rejects only
   * when a repository fails (storage down): the gateway answers that with `internal`.
   */
  login(command: LoginCommand): Promise<LoginResult> {
    return command.action === 'register' ? this.#register(command) : this.#login(command);
  }

  /**
   * The public key of an account for `get_key` (docs/PROTOCOL.md §7.1; answered as `key`,
   * docs/PROTOCOL.md §7.2): any account that is not deleted, disabled ones included (their stored
   * messages still need verifying).
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
   * Throttling (docs/PROTOCOL.md §4.5) without lockouts by strangers: every attempt counts against
   * its source address, but against the username only when the account's own key signed this
   * session's H2 — only then is someone holding the key guessing the password. A stranger's
   * failures, however many, never block the user; the answers stay `auth_failed` / `rate_limited`
   * either way, and the username's block is only ever consulted for the key holder, so it tells a
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
    // Run whatever is already known to have failed (docs/PROTOCOL.md §4.5: same work).
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
    // Proof of possession (docs/PROTOCOL.md §4.4): the client signed this session's H2 with the key
    // it registers. A failure counts against the address only: the name is nobody's yet.
    if (!userVerify(key, clientAuthInput(h2), signature)) return AUTH_FAILED;
    // Checked before hashing so that a taken name costs no argon2; the insert checks again.
    if ((await this.users.findByUsername(command.username)) !== undefined) return CONFLICT;
    let created: UserRecord;
    try {
      created = await insertUser(
        { users: this.users, hasher: this.hasher, clock: this.clock },
        command.username,
        command.password,
        spki,
      );
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
        key: checkNewUser(command.username, command.password, spki),
        spki,
        h2,
        signature,
      };
    } catch (error) {
      if (error instanceof InvalidUserInputError) return { refused: BAD_REQUEST };
      throw error;
    }
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
