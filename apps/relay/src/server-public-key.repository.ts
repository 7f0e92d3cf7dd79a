import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { Inject, Injectable } from '@nestjs/common';
import { CONFIG, type SecureChatConfig } from '@securechat/core';
import { exportSpki, fingerprint } from '@securechat/protocol';

import { ServerKeyUnavailableError } from './errors/server-key-unavailable.error';

export interface ServerPublicKey {
  readonly key: KeyObject;
  /** SPKI DER, as `server_hello.server_key` carries it (docs/PROTOCOL.md §4.3). */
  readonly spki: Buffer;
  /** `sha256:…` of the SPKI: what clients pin. */
  readonly fingerprint: string;
}

/**
 * The public half of the deployment's identity, for processes that export transcripts but do
 * not serve clients (auth, for the admin API). Reads `config.identityKeyPath` — the gateways'
 * PKCS#8 file, or a PEM public key in its place, so that an admin host need not hold the
 * private key — and never creates one: a missing key here is a wiring error, not a first start.
 */
@Injectable()
export class ServerPublicKeyRepository {
  #key: ServerPublicKey | undefined;

  constructor(@Inject(CONFIG) private readonly config: Pick<SecureChatConfig, 'identityKeyPath'>) {}

  /** Throws ServerKeyUnavailableError when the file is missing, unreadable or not Ed25519. */
  load(): ServerPublicKey {
    if (this.#key) return this.#key;
    const path = this.config.identityKeyPath;
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(path, 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ServerKeyUnavailableError(
        path,
        code === 'ENOENT' ? 'no such file' : 'not a readable PEM key',
      );
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new ServerKeyUnavailableError(path, 'not an Ed25519 key');
    }
    const spki = exportSpki(key);
    this.#key = { key, spki, fingerprint: fingerprint(spki) };
    return this.#key;
  }
}
