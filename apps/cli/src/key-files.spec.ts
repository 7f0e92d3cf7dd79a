import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { exportSpki, fingerprint } from '@securechat/protocol';

import { CliError } from './cli.error';
import { EXIT } from './exit-codes';
import {
  generateUserKey,
  isEncryptedPem,
  keyFingerprint,
  loadPrivateKey,
  writeUserKey,
} from './key-files';
import { UsageError } from './usage.error';

const PASSPHRASE = 'correct horse battery';

describe('key files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'key-files-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> =>
    promise.then(
      () => undefined,
      (error: unknown) => error,
    );

  it('round-trips an Ed25519 key through an encrypted file', async () => {
    const key = await generateUserKey('ed25519', 0, PASSPHRASE);
    expect(isEncryptedPem(key.privateKeyPem)).toBe(true);
    expect(key.privateKeyPem).not.toContain('-----BEGIN PRIVATE KEY-----');
    const path = join(dir, 'id_securechat');
    await writeUserKey(path, key, false);

    const passphrase = jest.fn(() => Promise.resolve(PASSPHRASE));
    const loaded = await loadPrivateKey(path, passphrase);
    expect(passphrase).toHaveBeenCalledTimes(1);
    expect(loaded.asymmetricKeyType).toBe('ed25519');
    expect(keyFingerprint(loaded)).toBe(key.fingerprint);
    expect(key.fingerprint).toBe(fingerprint(exportSpki(createPublicKey(loaded))));

    expect(statSync(path).mode & 0o777).toBe(0o600);
    const pub = readFileSync(`${path}.pub`, 'utf8');
    expect(pub).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const publicKey = createPublicKey(pub);
    expect(fingerprint(publicKey.export({ type: 'spki', format: 'der' }))).toBe(key.fingerprint);
    expect(keyFingerprint(publicKey)).toBe(key.fingerprint);
  });

  it('round-trips a 2048-bit RSA key', async () => {
    const key = await generateUserKey('rsa', 2048, PASSPHRASE);
    const path = join(dir, 'rsa.key');
    await writeUserKey(path, key, false);
    const loaded = await loadPrivateKey(path, () => Promise.resolve(PASSPHRASE));
    expect(loaded.asymmetricKeyType).toBe('rsa');
    expect(loaded.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(keyFingerprint(loaded)).toBe(key.fingerprint);
    expect(createPublicKey(readFileSync(`${path}.pub`, 'utf8')).asymmetricKeyType).toBe('rsa');
  });

  it('refuses to overwrite an existing key unless asked', async () => {
    const first = await generateUserKey('ed25519', 0, PASSPHRASE);
    const second = await generateUserKey('ed25519', 0, PASSPHRASE);
    const path = join(dir, 'id');
    await writeUserKey(path, first, false);

    const error = await rejectionOf(writeUserKey(path, second, false));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('--force');
    expect(readFileSync(path, 'utf8')).toBe(first.privateKeyPem);

    await writeUserKey(path, second, true);
    expect(readFileSync(path, 'utf8')).toBe(second.privateKeyPem);
    expect(readFileSync(`${path}.pub`, 'utf8')).toBe(second.publicKeyPem);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('turns a wrong passphrase into a usage error', async () => {
    const path = join(dir, 'id');
    await writeUserKey(path, await generateUserKey('ed25519', 0, PASSPHRASE), false);
    const error = await rejectionOf(loadPrivateKey(path, () => Promise.resolve('not the one')));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`cannot decrypt ${path}: wrong passphrase?`);
  });

  it('lets a failure to ask for the passphrase through (Ctrl-C)', async () => {
    const path = join(dir, 'id');
    await writeUserKey(path, await generateUserKey('ed25519', 0, PASSPHRASE), false);
    const interrupted = new CliError('interrupted', EXIT.interrupted);
    await expect(loadPrivateKey(path, () => Promise.reject(interrupted))).rejects.toBe(interrupted);
  });

  it('points to keygen when the key file is missing', async () => {
    const path = join(dir, 'missing');
    const error = await rejectionOf(loadPrivateKey(path, () => Promise.resolve(PASSPHRASE)));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('securechat keygen');
    expect((error as Error).message).toContain(path);
  });

  it('loads an unencrypted PEM without asking for a passphrase', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const path = join(dir, 'plain.pem');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const passphrase = jest.fn(() => Promise.resolve(PASSPHRASE));
    const loaded = await loadPrivateKey(path, passphrase);
    expect(passphrase).not.toHaveBeenCalled();
    expect(keyFingerprint(loaded)).toBe(fingerprint(exportSpki(privateKey)));
  });

  it('refuses a file that is not a PEM private key', async () => {
    const path = join(dir, 'junk');
    writeFileSync(path, 'hello');
    await expect(loadPrivateKey(path, () => Promise.resolve(''))).rejects.toThrow(
      `${path} is not a PEM private key`,
    );
  });

  it('refuses an RSA key smaller than 2048 bits', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const path = join(dir, 'small.pem');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const error = await rejectionOf(loadPrivateKey(path, () => Promise.resolve('')));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(/RSA modulus must be 2048/);
  });

  it('refuses a passphrase shorter than 8 characters', async () => {
    await expect(generateUserKey('ed25519', 0, 'short')).rejects.toBeInstanceOf(UsageError);
    await expect(generateUserKey('ed25519', 0, '1234567')).rejects.toThrow(/at least 8/);
    await expect(generateUserKey('ed25519', 0, '12345678')).resolves.toBeDefined();
  });
});
