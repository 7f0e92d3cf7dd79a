/** The server identity key file: generated once with mode 0600, then loaded; in a temp dir. */
import * as crypto from 'node:crypto';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Logger } from '@nestjs/common';

import { IdentityKeyRepository } from './identity-key.repository';

// Pass-through crypto whose key generation a test can hook: the moment between finding no key
// and publishing one, where a second gateway starting at the same time can publish its own.
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof crypto>('node:crypto');
  return { ...actual, generateKeyPairSync: jest.fn(actual.generateKeyPairSync) };
});
const realCrypto = jest.requireActual<typeof crypto>('node:crypto');
const generateKeyPairSyncMock = crypto.generateKeyPairSync as unknown as jest.Mock;

function repositoryFor(identityKeyPath: string): IdentityKeyRepository {
  return new IdentityKeyRepository({ identityKeyPath });
}

/** The fingerprint computed here, independently of the protocol library: sha256 of the SPKI. */
function fingerprintOfPem(pem: string): string {
  const spki = createPublicKey(createPrivateKey(pem)).export({ format: 'der', type: 'spki' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

function ed25519Pem(): string {
  return generateKeyPairSync('ed25519')
    .privateKey.export({ format: 'pem', type: 'pkcs8' })
    .toString();
}

const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;

describe('IdentityKeyRepository', () => {
  let dir: string;
  let warn: jest.SpyInstance;

  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'securechat-identity-'));
    generateKeyPairSyncMock.mockClear();
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    generateKeyPairSyncMock.mockImplementation(realCrypto.generateKeyPairSync);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('when the file is absent', () => {
    it('generates an Ed25519 PKCS#8 PEM with mode 0600 and returns its fingerprint', () => {
      const path = join(dir, 'server-identity.pem');
      const key = repositoryFor(path).load();

      expect(fs.statSync(path).mode & 0o777).toBe(0o600);
      const pem = fs.readFileSync(path, 'utf8');
      expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(createPrivateKey(pem).asymmetricKeyType).toBe('ed25519');
      expect(key.privateKey.type).toBe('private');
      expect(key.privateKey.asymmetricKeyType).toBe('ed25519');
      expect(key.fingerprint).toMatch(FINGERPRINT);
      expect(key.fingerprint).toBe(fingerprintOfPem(pem));
      // The temporary file was renamed into place, not left behind.
      expect(fs.readdirSync(dir)).toEqual(['server-identity.pem']);
    });

    it('creates missing parent directories, private to the owner', () => {
      const path = join(dir, 'a', 'b', 'c', 'id.pem');
      const key = repositoryFor(path).load();
      expect(fs.existsSync(path)).toBe(true);
      expect(fs.statSync(path).mode & 0o777).toBe(0o600);
      expect(fs.statSync(join(dir, 'a', 'b', 'c')).mode & 0o777).toBe(0o700);
      expect(key.fingerprint).toBe(fingerprintOfPem(fs.readFileSync(path, 'utf8')));
    });

    it('generates a different key in a different place', () => {
      const first = repositoryFor(join(dir, 'one.pem')).load();
      const second = repositoryFor(join(dir, 'two.pem')).load();
      expect(first.fingerprint).not.toBe(second.fingerprint);
    });

    it('adopts a key another gateway published meanwhile instead of replacing it', () => {
      // Two gateways of one deployment start together on an empty data dir: both find no key,
      // the other one publishes first. One deployment must end up with one key.
      const path = join(dir, 'server-identity.pem');
      const otherPem = ed25519Pem();
      generateKeyPairSyncMock.mockImplementationOnce((...args: unknown[]) => {
        fs.writeFileSync(path, otherPem, { mode: 0o600 });
        return (realCrypto.generateKeyPairSync as (...a: unknown[]) => unknown)(...args);
      });
      const key = repositoryFor(path).load();
      expect(key.fingerprint).toBe(fingerprintOfPem(otherPem));
      expect(fs.readFileSync(path, 'utf8')).toBe(otherPem);
      expect(fs.readdirSync(dir)).toEqual(['server-identity.pem']); // no temporary file left
    });
  });

  describe('when the file exists', () => {
    it('loads the same key again on a later start, without rewriting the file', () => {
      const path = join(dir, 'server-identity.pem');
      const first = repositoryFor(path).load();
      const pem = fs.readFileSync(path, 'utf8');
      const mtime = fs.statSync(path).mtimeMs;

      const second = repositoryFor(path).load();
      expect(second.fingerprint).toBe(first.fingerprint);
      expect(second.fingerprint).toMatch(FINGERPRINT);
      expect(second.privateKey).not.toBe(first.privateKey); // a fresh load, not a shared object
      expect(second.privateKey.equals(first.privateKey)).toBe(true);
      expect(fs.readFileSync(path, 'utf8')).toBe(pem);
      expect(fs.statSync(path).mtimeMs).toBe(mtime);
    });

    it('loads a key written by someone else', () => {
      const path = join(dir, 'provisioned.pem');
      const pem = ed25519Pem();
      fs.writeFileSync(path, pem, { mode: 0o600 });
      const key = repositoryFor(path).load();
      expect(key.fingerprint).toBe(fingerprintOfPem(pem));
      expect(fs.readFileSync(path, 'utf8')).toBe(pem);
      expect(warn).not.toHaveBeenCalled();
    });

    it('warns, and still loads, when the file is readable by group or others', () => {
      const path = join(dir, 'loose.pem');
      const pem = ed25519Pem();
      fs.writeFileSync(path, pem);
      fs.chmodSync(path, 0o640);
      const key = repositoryFor(path).load();
      expect(key.fingerprint).toBe(fingerprintOfPem(pem));
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('640'));
    });

    it.each([
      ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey],
      ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['X25519', () => generateKeyPairSync('x25519').privateKey],
      ['Ed448', () => generateKeyPairSync('ed448').privateKey],
    ])('refuses a PEM holding a %s key, and leaves the file alone', (_, make) => {
      const path = join(dir, 'server-identity.pem');
      const pem = make().export({ format: 'pem', type: 'pkcs8' }).toString();
      fs.writeFileSync(path, pem, { mode: 0o600 });
      expect(() => repositoryFor(path).load()).toThrow(/does not hold an Ed25519 private key/);
      expect(fs.readFileSync(path, 'utf8')).toBe(pem);
    });

    it('refuses a file that is not a PEM key, without quoting it', () => {
      const path = join(dir, 'server-identity.pem');
      fs.writeFileSync(path, 'not-a-key-but-a-secret-string', { mode: 0o600 });
      let thrown: unknown;
      try {
        repositoryFor(path).load();
      } catch (error) {
        thrown = error;
      }
      // node:crypto's errors come from another realm than the test's Error: check the shape.
      expect(thrown).toEqual(expect.objectContaining({ message: expect.any(String) }));
      expect((thrown as Error).message).not.toContain('secret-string');
      expect(fs.readFileSync(path, 'utf8')).toBe('not-a-key-but-a-secret-string');
    });

    it('passes on read errors other than a missing file instead of generating a key', () => {
      const path = join(dir, 'is-a-directory');
      fs.mkdirSync(path);
      expect(() => repositoryFor(path).load()).toThrow(expect.objectContaining({ code: 'EISDIR' }));
      expect(fs.statSync(path).isDirectory()).toBe(true);
    });
  });

  describe('the public key file', () => {
    it('is written where identityPublicKeyPath says, public key only, and kept up to date', () => {
      const path = join(dir, 'server-identity.pem');
      const publicPath = join(dir, 'public', 'server-identity.pub.pem');
      const repository = new IdentityKeyRepository({
        identityKeyPath: path,
        identityPublicKeyPath: publicPath,
      });
      const key = repository.load();
      const pem = fs.readFileSync(publicPath, 'utf8');
      expect(pem).toContain('BEGIN PUBLIC KEY');
      expect(pem).not.toContain('PRIVATE');
      const spki = createPublicKey(pem).export({ format: 'der', type: 'spki' });
      expect(`sha256:${createHash('sha256').update(spki).digest('hex')}`).toBe(key.fingerprint);
      fs.writeFileSync(publicPath, 'stale');
      repositoryFor(path); // another gateway, without the setting, writes nothing
      expect(fs.readFileSync(publicPath, 'utf8')).toBe('stale');
      new IdentityKeyRepository({
        identityKeyPath: path,
        identityPublicKeyPath: publicPath,
      }).load();
      expect(fs.readFileSync(publicPath, 'utf8')).toBe(pem);
    });

    it('is not written without identityPublicKeyPath', () => {
      repositoryFor(join(dir, 'server-identity.pem')).load();
      expect(fs.readdirSync(dir)).toEqual(['server-identity.pem']);
    });
  });

  describe('caching', () => {
    it('reads the file once and answers later loads from memory', () => {
      const path = join(dir, 'server-identity.pem');
      const repository = repositoryFor(path);
      const first = repository.load();
      fs.rmSync(path);
      const second = repository.load();
      expect(second).toBe(first);
      expect(fs.existsSync(path)).toBe(false); // not regenerated
    });
  });
});
