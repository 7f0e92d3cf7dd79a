/**
 * The rules a new account and an operator's change to one must pass (docs/PROTOCOL.md §4.4),
 * and the insert that follows them: self-registration (AuthService) and account management
 * (UserAccountService) apply the same ones, so they live here once.
 */
import { type KeyObject } from 'node:crypto';

import { type ClockRepository } from '@securechat/core';
import {
  exportSpki,
  fingerprint,
  importUserPublicKey,
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  USERNAME_PATTERN,
} from '@securechat/protocol';

import { InvalidUserInputError } from './errors/invalid-user-input.error';
import { type PasswordHasherRepository } from './password-hasher.repository';
import { type UserRecord, type UserRepository } from './user.repository';

/**
 * docs/PROTOCOL.md §4.4: 8 to 1024 bytes once UTF-8 encoded; a lone surrogate has no UTF-8 form at
 * all.
 */
export function passwordLengthOk(password: string): boolean {
  if (!password.isWellFormed()) return false;
  const bytes = Buffer.byteLength(password, 'utf8');
  return bytes >= PASSWORD_MIN_BYTES && bytes <= PASSWORD_MAX_BYTES;
}

/**
 * The value rules of docs/PROTOCOL.md §4.4 for a new account; returns the imported key. Throws
 * InvalidUserInputError naming the first field that breaks them.
 */
export function checkNewUser(username: string, password: string, spki: Uint8Array): KeyObject {
  if (!USERNAME_PATTERN.test(username)) {
    throw new InvalidUserInputError('username', 'must match ^[a-z0-9_]{3,32}$');
  }
  checkPassword(password);
  return checkPublicKey(spki);
}

export function checkPassword(password: string): void {
  if (!passwordLengthOk(password)) {
    throw new InvalidUserInputError(
      'password',
      `must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8`,
    );
  }
}

/**
 * The key policy: RSA ≥ 2048 bits or Ed25519, in canonical DER (OpenSSL tolerates trailing
 * bytes), so that one key has one fingerprint. Returns the imported key.
 */
export function checkPublicKey(spki: Uint8Array): KeyObject {
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

/** What insertUser writes with. */
export interface UserStore {
  readonly users: UserRepository;
  readonly hasher: PasswordHasherRepository;
  readonly clock: ClockRepository;
}

/**
 * Stores an account whose values passed checkNewUser. Throws UserExistsError when the name is
 * taken, even if a lookup just said it was free (the insert is what decides).
 */
export async function insertUser(
  store: UserStore,
  username: string,
  password: string,
  spki: Uint8Array,
): Promise<UserRecord> {
  const publicKey = Buffer.from(spki);
  return store.users.create({
    username,
    passwordHash: await store.hasher.hash(password),
    publicKey,
    fingerprint: fingerprint(publicKey),
    createdAt: new Date(store.clock.now()),
  });
}
