/**
 * The user's key pair on disk: the private key as passphrase-encrypted PKCS#8 PEM (mode 0600,
 * never overwritten unless asked), the public key as SPKI PEM beside it (`<file>.pub`). The key
 * types and sizes are those §2.2 of docs/PROTOCOL.md allows for users.
 */
import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

import { PRIVATE_FILE_MODE, writeFileAtomic } from '@securechat/client';
import { assertUserPrivateKey, exportSpki, fingerprint } from '@securechat/protocol';

import { EXIT } from './exit-codes';
import { CliError } from './cli.error';
import { UsageError } from './usage.error';

const generate = promisify(generateKeyPair);

export type KeyType = 'rsa' | 'ed25519';

export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;
/** Smallest passphrase accepted for a new key. */
export const MIN_PASSPHRASE_CHARS = 8;

export interface GeneratedKey {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
  readonly fingerprint: string;
}

/** A new key pair; the private PEM is encrypted with AES-256-CBC under the passphrase (PBES2). */
export async function generateUserKey(
  type: KeyType,
  bits: number,
  passphrase: string,
): Promise<GeneratedKey> {
  if (passphrase.length < MIN_PASSPHRASE_CHARS) {
    throw new UsageError(`the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`);
  }
  const { privateKey, publicKey } =
    type === 'rsa'
      ? await generate('rsa', { modulusLength: bits, publicExponent: 65537 })
      : await generate('ed25519');
  return {
    privateKeyPem: privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase,
    }) as string,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    fingerprint: fingerprint(exportSpki(publicKey)),
  };
}

/**
 * Writes both files. The private key is created exclusively (an existing key is a usage error
 * unless `overwrite`), so a typo cannot destroy the only copy of someone's identity.
 */
export async function writeUserKey(
  path: string,
  key: GeneratedKey,
  overwrite: boolean,
): Promise<void> {
  if (overwrite) {
    await writeFileAtomic(path, key.privateKeyPem);
  } else {
    try {
      await writeFile(path, key.privateKeyPem, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UsageError(`${path} exists; choose another --out, or --force to replace it`);
      }
      throw error;
    }
  }
  await writeFile(`${path}.pub`, key.publicKeyPem, { mode: 0o644 });
}

export function isEncryptedPem(text: string): boolean {
  return text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/**
 * Reads a private key; `passphrase` is called only for an encrypted file. The key must be one
 * a user may hold (docs/PROTOCOL.md §2.2: Ed25519, or RSA of at least 2048 bits).
 */
export async function loadPrivateKey(
  path: string,
  passphrase: () => Promise<string>,
): Promise<KeyObject> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`no key at ${path}; create one with "securechat keygen" or pass --key`);
    }
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, EXIT.failure);
  }
  let key: KeyObject;
  try {
    key = isEncryptedPem(text)
      ? createPrivateKey({ key: text, format: 'pem', passphrase: await passphrase() })
      : createPrivateKey({ key: text, format: 'pem' });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new UsageError(
      isEncryptedPem(text)
        ? `cannot decrypt ${path}: wrong passphrase?`
        : `${path} is not a PEM private key`,
    );
  }
  try {
    assertUserPrivateKey(key);
  } catch (error) {
    throw new UsageError(`${path}: ${(error as Error).message}`);
  }
  return key;
}

/** The `sha256:` fingerprint of a private or public key, as the server shows it. */
export function keyFingerprint(key: KeyObject): string {
  return fingerprint(exportSpki(key.type === 'private' ? createPublicKey(key) : key));
}
