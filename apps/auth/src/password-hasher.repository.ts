import { Algorithm, hash, type Options, verify } from '@node-rs/argon2';
import { Inject, Injectable, Logger } from '@nestjs/common';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

/**
 * argon2id with the OWASP minimum (19 MiB, 2 passes, 1 lane): docs/PROTOCOL.md §4.4 requires
 * passwords to be kept only as argon2id (or scrypt) hashes.
 */
export const ARGON2_PARAMETERS: Readonly<Options> = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
};

/** Benchmarks only (config.insecureFastHash): cheap enough that protocol costs show. */
export const INSECURE_FAST_ARGON2_PARAMETERS: Readonly<Options> = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 1024,
  timeCost: 1,
  parallelism: 1,
};

/**
 * Password hashing behind an injectable seam, so unit tests replace ~40 ms of argon2 per call
 * with a fake. Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that carry
 * their own parameters, so verify accepts hashes made under other settings.
 */
@Injectable()
export class PasswordHasherRepository {
  readonly #logger = new Logger(PasswordHasherRepository.name);
  readonly #parameters: Readonly<Options>;

  constructor(@Inject(CONFIG) config: SecureChatConfig) {
    this.#parameters = config.insecureFastHash
      ? INSECURE_FAST_ARGON2_PARAMETERS
      : ARGON2_PARAMETERS;
    if (config.insecureFastHash) {
      // Once per process (one instance): loud, because a deployment left like this stores
      // passwords that are cheap to crack offline.
      this.#logger.warn(
        '!!! SECURECHAT_INSECURE_FAST_HASH is on: passwords are hashed with argon2id m=1024,t=1. ' +
          'For benchmarks only; NEVER use this setting with real accounts. !!!',
      );
    }
  }

  /** A PHC string for `password` with a fresh random salt. */
  hash(password: string): Promise<string> {
    return hash(password, this.#parameters);
  }

  /**
   * Whether `password` matches `phc`. Never throws: a malformed or truncated stored hash is
   * simply a mismatch (and the error, which might quote the hash, is not passed on).
   */
  async verify(phc: string, password: string): Promise<boolean> {
    try {
      return await verify(phc, password);
    } catch {
      return false;
    }
  }
}
