import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { CONFIG, publishPublicPem, type SecureChatConfig } from '@securechat/core';
import { exportSpki, fingerprint } from '@securechat/protocol';

export interface ServerIdentityKey {
  readonly privateKey: KeyObject;
  /** `sha256:…` of the SPKI (docs/PROTOCOL.md §2.2): what clients pin. */
  readonly fingerprint: string;
}

/**
 * The deployment's Ed25519 identity (PROTOCOL.md §1): read from a PEM file, or generated there with
 * mode 0600 on first start. Every gateway of a deployment shares the file. With
 * `identityPublicKeyPath` the public key (SPKI PEM) is also written there, for processes that
 * must name the key but should not hold it (auth's transcript export reads it as its
 * SECURECHAT_IDENTITY_KEY).
 */
@Injectable()
export class IdentityKeyRepository {
  readonly #logger = new Logger('IdentityKey');
  #key: ServerIdentityKey | undefined;

  constructor(
    @Inject(CONFIG)
    private readonly config: Pick<SecureChatConfig, 'identityKeyPath' | 'identityPublicKeyPath'>,
  ) {}

  load(): ServerIdentityKey {
    if (this.#key) return this.#key;
    const path = this.config.identityKeyPath;
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        this.#logger.warn(`${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      pem = this.#generate(path);
    }
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new Error(`${path} does not hold an Ed25519 private key`);
    }
    const publicPath = this.config.identityPublicKeyPath;
    if (publicPath !== undefined) {
      const publicPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' });
      if (publishPublicPem(publicPath, publicPem.toString())) {
        this.#logger.log(`wrote the server identity's public key to ${publicPath}`);
      }
    }
    this.#key = { privateKey, fingerprint: fingerprint(exportSpki(privateKey)) };
    return this.#key;
  }

  #generate(path: string): string {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    // Written under a temporary name, then hard-linked into place: link() fails if another
    // gateway starting at the same moment got there first, and then both use that one key
    // (a rename would silently replace it and leave two gateways with different keys).
    const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(temporary, pem, { mode: 0o600, flag: 'wx' });
    chmodSync(temporary, 0o600);
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      return readFileSync(path, 'utf8');
    } finally {
      unlinkSync(temporary); // never leave a copy of the private key behind
    }
    this.#logger.log(`generated a new server identity key at ${path}`);
    return readFileSync(path, 'utf8');
  }
}
