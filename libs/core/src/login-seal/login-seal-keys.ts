/**
 * Where the login-seal keys come from. The auth service holds the X25519 private key; gateways
 * need only its public half. Distributed, both are files: auth makes the key pair on first
 * start and publishes the public key as a separate file, which is all a gateway ever reads.
 * Embedded, gateway and auth share one process, and one key pair made at start and never
 * written anywhere serves both.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

import { x25519KeyPair } from '@securechat/protocol';
import { readFileSync, statSync } from 'node:fs';

import { Logger, type Provider } from '@nestjs/common';

import { type SecureChatConfig } from '../config/config.schema';
import { publishPublicPem, readOrCreateSecretPem } from '../keys/key-files';
import { type LoginSealKeyPair, rawX25519 } from './login-seal.format';

/** Auth's side: the key pair commands are sealed to. An abstract class doubling as the token. */
export abstract class LoginSealKeyRepository {
  abstract load(): LoginSealKeyPair;
}

/** The gateway's side: the public key to seal to (raw 32 bytes). */
export abstract class LoginSealPublicKeyRepository {
  abstract current(): Buffer;
}

/** The public key cannot be read (yet): logins fail with `internal` until it can. */
export class LoginSealKeyUnavailableError extends Error {
  override readonly name = 'LoginSealKeyUnavailableError';

  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(
      `the login-seal public key is not available (${path}: ${reason}); the auth service ` +
        'writes it at start: point SECURECHAT_LOGIN_SEAL_PUBLIC_KEY at the file it writes',
    );
  }
}

/** A fresh key as PKCS#8 PEM (x25519KeyPair: no key-generation job, see there). */
function x25519Pem(): string {
  return x25519KeyPair().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

function publicPem(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
}

/**
 * Auth's key pair in files: the PKCS#8 private key at `keyPath`, made with mode 0600 when
 * absent (race-free: auth instances starting together end up with one key), and its SPKI PEM
 * written to `publicKeyPath` at every load, so that gateways — which must never read the
 * private key — find the public key in a file of its own. Every auth instance of a deployment
 * must use the same private key: any of them may open any command.
 */
export class FileLoginSealKeyRepository extends LoginSealKeyRepository {
  readonly #logger = new Logger('LoginSealKey');
  #keys: LoginSealKeyPair | undefined;

  constructor(private readonly paths: { keyPath: string; publicKeyPath: string }) {
    super();
  }

  /** `{ provide: LoginSealKeyRepository }` for the auth process, loaded (and published) at once. */
  static provider(config: Pick<SecureChatConfig, 'loginSeal'>): Provider {
    return {
      provide: LoginSealKeyRepository,
      useFactory: () => {
        const keys = new FileLoginSealKeyRepository(config.loginSeal);
        keys.load();
        return keys;
      },
    };
  }

  override load(): LoginSealKeyPair {
    if (this.#keys) return this.#keys;
    const { keyPath, publicKeyPath } = this.paths;
    const secret = readOrCreateSecretPem(keyPath, x25519Pem);
    if (secret.created) this.#logger.log(`generated a new login-seal key at ${keyPath}`);
    if (secret.looseMode !== undefined) {
      this.#logger.warn(
        `${keyPath} is readable by others (mode ${secret.looseMode.toString(8)}); chmod 600 it`,
      );
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(secret.pem);
    } catch {
      throw new Error(`${keyPath} does not hold a PEM private key`);
    }
    if (privateKey.asymmetricKeyType !== 'x25519') {
      throw new Error(`${keyPath} does not hold an X25519 private key`);
    }
    if (publishPublicPem(publicKeyPath, publicPem(privateKey))) {
      this.#logger.log(`wrote the login-seal public key to ${publicKeyPath}`);
    }
    this.#keys = { privateKey, publicKey: rawX25519(createPublicKey(privateKey)) };
    return this.#keys;
  }
}

/**
 * The public key from the file auth publishes, read when first needed and again whenever the
 * file changes (a gateway may start before auth made it, and a rotated key is picked up
 * without a restart). One stat per login, which argon2id on the other side dwarfs.
 */
export class FileLoginSealPublicKeyRepository extends LoginSealPublicKeyRepository {
  #cached: { readonly stamp: string; readonly key: Buffer } | undefined;

  constructor(private readonly path: string) {
    super();
  }

  static provider(config: Pick<SecureChatConfig, 'loginSeal'>): Provider {
    return {
      provide: LoginSealPublicKeyRepository,
      useFactory: () => new FileLoginSealPublicKeyRepository(config.loginSeal.publicKeyPath),
    };
  }

  override current(): Buffer {
    let stamp: string;
    let pem: string;
    try {
      const stat = statSync(this.path);
      stamp = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
      if (this.#cached?.stamp === stamp) return this.#cached.key;
      pem = readFileSync(this.path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new LoginSealKeyUnavailableError(
        this.path,
        code === 'ENOENT' ? 'no such file' : 'not readable',
      );
    }
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      throw new LoginSealKeyUnavailableError(this.path, 'not a PEM public key');
    }
    if (key.asymmetricKeyType !== 'x25519') {
      throw new LoginSealKeyUnavailableError(this.path, 'not an X25519 key');
    }
    // A private key in this place would still parse (createPublicKey derives the public half):
    // refuse it, so that a wiring mistake cannot put auth's secret on a gateway unnoticed.
    if (/PRIVATE KEY/.test(pem)) {
      throw new LoginSealKeyUnavailableError(this.path, 'holds a private key; give the public one');
    }
    this.#cached = { stamp, key: rawX25519(key) };
    return this.#cached.key;
  }
}

/**
 * The embedded process's key pair: made at start, kept in memory only, serving both the
 * gateway (public half) and auth (private half). Bind it to both tokens with useExisting.
 */
export class EphemeralLoginSealKeys
  extends LoginSealKeyRepository
  implements LoginSealPublicKeyRepository
{
  readonly #keys: LoginSealKeyPair;

  constructor() {
    super();
    const { privateKey, publicRaw } = x25519KeyPair();
    this.#keys = { privateKey, publicKey: publicRaw };
  }

  override load(): LoginSealKeyPair {
    return this.#keys;
  }

  current(): Buffer {
    return this.#keys.publicKey;
  }
}
