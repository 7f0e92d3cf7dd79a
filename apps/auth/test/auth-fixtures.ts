/** Shared test material for apps/auth: configuration, user keys, signed login commands. */
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';

import { type LoginCommand, loadConfig, type SecureChatConfig } from '@securechat/core';
import { clientAuthInput, exportSpki, toBase64, userSign } from '@securechat/protocol';

export interface ConfigOverrides {
  readonly allowRegistration?: boolean;
  readonly insecureFastHash?: boolean;
  readonly throttle?: Partial<SecureChatConfig['throttle']>;
}

/** The defaults of libs/core (ignoring this process's environment), with overrides. */
export function testConfig(overrides: ConfigOverrides = {}): SecureChatConfig {
  const base = loadConfig({});
  return {
    ...base,
    allowRegistration: overrides.allowRegistration ?? base.allowRegistration,
    insecureFastHash: overrides.insecureFastHash ?? base.insecureFastHash,
    throttle: { ...base.throttle, ...overrides.throttle },
  };
}

export interface UserKey {
  readonly privateKey: KeyObject;
  /** SPKI DER. */
  readonly spki: Buffer;
}

export function ed25519Key(): UserKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, spki: exportSpki(publicKey) };
}

export function rsaKey(modulusLength = 2048): UserKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength });
  return { privateKey, spki: exportSpki(publicKey) };
}

/** A fresh H2, as a handshake would produce it. */
export function newH2(): Buffer {
  return randomBytes(32);
}

/**
 * The client's login signature S over `label("SecureChat v1 client auth") || H2` (docs/PROTOCOL.md
 * §4.4).
 */
export function signH2(key: UserKey, h2: Buffer): string {
  return toBase64(userSign(key.privateKey, clientAuthInput(h2)));
}

export interface CommandOptions {
  readonly username: string;
  readonly password: string;
  /** The key that signs; also the registered key for `register` unless `publicKey` is given. */
  readonly key: UserKey;
  readonly h2?: Buffer;
  /** H2 the signature is made over, when it should differ from `h2`. */
  readonly signedH2?: Buffer;
  readonly publicKey?: Buffer;
  readonly sourceAddress?: string;
}

export function loginCommand(options: CommandOptions): LoginCommand {
  const h2 = options.h2 ?? newH2();
  return {
    action: 'login',
    username: options.username,
    password: options.password,
    signature: signH2(options.key, options.signedH2 ?? h2),
    h2: toBase64(h2),
    sourceAddress: options.sourceAddress ?? '192.0.2.1',
  };
}

export function registerCommand(options: CommandOptions): LoginCommand {
  return {
    ...loginCommand(options),
    action: 'register',
    publicKey: toBase64(options.publicKey ?? options.key.spki),
  };
}
