/**
 * LoginSealer (gateway) and LoginSealOpener (auth) together, with the key files and the
 * replay table they use in the two deployments; the clock is fixed.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Logger } from '@nestjs/common';

import { type ClockRepository } from '../clock/clock.repository';
import { type LoginCommand } from '../contracts/auth.contracts';
import {
  EphemeralLoginSealKeys,
  FileLoginSealKeyRepository,
  FileLoginSealPublicKeyRepository,
  LoginSealKeyUnavailableError,
} from './login-seal-keys';
import { MemoryLoginSealReplayRepository } from './login-seal-replay.repository';
import { LOGIN_SEAL_MAX_AGE_MS, LoginReplyRejectedError } from './login-seal.format';
import { LoginSealer, LoginSealOpener } from './login-seal.service';

const login: LoginCommand = {
  action: 'login',
  username: 'alice',
  password: 'correct horse battery staple',
  signature: Buffer.alloc(64, 7).toString('base64'),
  h2: Buffer.alloc(32, 9).toString('base64'),
  sourceAddress: '192.0.2.1',
};

function clockAt(now: number): ClockRepository & { now: jest.Mock<number, []> } {
  return { now: jest.fn(() => now) };
}

describe('LoginSealer and LoginSealOpener', () => {
  const T = 1_800_000_000_000;
  let warn: jest.SpyInstance;

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  function pair(keys = new EphemeralLoginSealKeys()) {
    const gatewayClock = clockAt(T);
    const authClock = clockAt(T);
    const replays = new MemoryLoginSealReplayRepository();
    return {
      keys,
      gatewayClock,
      authClock,
      sealer: new LoginSealer(keys, gatewayClock),
      opener: new LoginSealOpener(keys, replays, authClock),
    };
  }

  it('round-trips a command, and the tagged answer back', async () => {
    const { sealer, opener } = pair();
    const pending = sealer.seal(login);
    const opened = await opener.open(JSON.parse(JSON.stringify(pending.envelope)));
    expect(opened?.command).toEqual(login);
    const answer = opener.answer(opened!, { ok: true, username: 'alice', publicKey: 'AAAA' });
    expect(pending.accept(JSON.parse(JSON.stringify(answer)))).toEqual({
      ok: true,
      username: 'alice',
      publicKey: 'AAAA',
    });
  });

  it('refuses the same command a second time (a replay), and says so without secrets', async () => {
    const { sealer, opener } = pair();
    const { envelope } = sealer.seal(login);
    expect(await opener.open(envelope)).toBeDefined();
    expect(await opener.open(envelope)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith('refused a sealed login (replayed)');
    expect(JSON.stringify(warn.mock.calls)).not.toContain(login.password);
  });

  it('lets the same delivery of a command through again (a redelivered stream entry)', async () => {
    const { sealer, opener } = pair();
    const { envelope } = sealer.seal(login);
    expect(await opener.open(envelope, '1700000000000-0')).toBeDefined();
    expect(await opener.open(envelope, '1700000000000-0')).toBeDefined();
    expect(await opener.open(envelope, '1700000000001-0')).toBeUndefined();
  });

  it('refuses a stale command, by the opener’s clock', async () => {
    const { sealer, opener, authClock } = pair();
    const { envelope } = sealer.seal(login);
    authClock.now.mockReturnValue(T + LOGIN_SEAL_MAX_AGE_MS + 1);
    expect(await opener.open(envelope)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith('refused a sealed login (stale)');
  });

  it('refuses a replay after the window too (stale before the id is forgotten)', async () => {
    const { sealer, opener, authClock } = pair();
    const { envelope } = sealer.seal(login);
    expect(await opener.open(envelope)).toBeDefined();
    for (const later of [
      LOGIN_SEAL_MAX_AGE_MS,
      2 * LOGIN_SEAL_MAX_AGE_MS,
      10 * LOGIN_SEAL_MAX_AGE_MS,
    ]) {
      authClock.now.mockReturnValue(T + later);
      expect(await opener.open(envelope)).toBeUndefined();
    }
  });

  it('refuses a command sealed to another deployment’s key', async () => {
    const { sealer } = pair();
    const { opener } = pair();
    expect(await opener.open(sealer.seal(login).envelope)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith('refused a sealed login (undecryptable)');
  });

  it('refuses a plain, unsealed LoginCommand', async () => {
    const { opener } = pair();
    expect(await opener.open(login)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith('refused a sealed login (malformed)');
  });

  it('lets a gateway refuse a success it cannot authenticate', () => {
    const { sealer } = pair();
    const pending = sealer.seal(login);
    expect(() => pending.accept({ ok: true, username: 'alice', publicKey: 'AAAA' })).toThrow(
      LoginReplyRejectedError,
    );
  });

  it('does not claim an id when the command does not open (no junk in the replay table)', async () => {
    const replays = new MemoryLoginSealReplayRepository();
    const claim = jest.spyOn(replays, 'claim');
    const keys = new EphemeralLoginSealKeys();
    const opener = new LoginSealOpener(keys, replays, clockAt(T));
    const envelope = new LoginSealer(new EphemeralLoginSealKeys(), clockAt(T)).seal(login).envelope;
    expect(await opener.open(envelope)).toBeUndefined();
    expect(claim).not.toHaveBeenCalled();
  });

  it('propagates a replay table that cannot answer (never "not replayed")', async () => {
    const keys = new EphemeralLoginSealKeys();
    const opener = new LoginSealOpener(
      keys,
      { claim: () => Promise.reject(new Error('redis down')) },
      clockAt(T),
    );
    const { envelope } = new LoginSealer(keys, clockAt(T)).seal(login);
    await expect(opener.open(envelope)).rejects.toThrow('redis down');
  });
});

describe('login-seal key files', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'securechat-login-seal-'));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const paths = () => ({
    keyPath: join(dir, 'private', 'login-seal.pem'),
    publicKeyPath: join(dir, 'public', 'login-seal.pub.pem'),
  });

  it('makes the key pair on first load (0600), and writes the public key to its own file', () => {
    const { keyPath, publicKeyPath } = paths();
    const keys = new FileLoginSealKeyRepository({ keyPath, publicKeyPath }).load();
    expect(fs.statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(keyPath, 'utf8')).toContain('BEGIN PRIVATE KEY');
    const published = fs.readFileSync(publicKeyPath, 'utf8');
    expect(published).toContain('BEGIN PUBLIC KEY');
    expect(published).not.toContain('PRIVATE');
    expect(new FileLoginSealPublicKeyRepository(publicKeyPath).current()).toEqual(keys.publicKey);
    expect(fs.readdirSync(join(dir, 'private'))).toEqual(['login-seal.pem']); // no temporary left
  });

  it('keeps the key across restarts, and every instance gets the same one', () => {
    const first = new FileLoginSealKeyRepository(paths()).load();
    const second = new FileLoginSealKeyRepository(paths()).load();
    expect(second.publicKey).toEqual(first.publicKey);
  });

  it('writes the public key again when it is missing or wrong', () => {
    const { publicKeyPath } = paths();
    const keys = new FileLoginSealKeyRepository(paths()).load();
    fs.writeFileSync(
      publicKeyPath,
      generateKeyPairSync('x25519').publicKey.export({ format: 'pem', type: 'spki' }),
    );
    new FileLoginSealKeyRepository(paths()).load();
    expect(new FileLoginSealPublicKeyRepository(publicKeyPath).current()).toEqual(keys.publicKey);
  });

  it('refuses a key file that is not X25519', () => {
    const { keyPath } = paths();
    fs.mkdirSync(join(dir, 'private'));
    fs.writeFileSync(
      keyPath,
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
      { mode: 0o600 },
    );
    expect(() => new FileLoginSealKeyRepository(paths()).load()).toThrow(
      'does not hold an X25519 private key',
    );
  });

  describe('the gateway’s public key file', () => {
    it('is unavailable until auth wrote it, then read; a new key is picked up', () => {
      const { publicKeyPath } = paths();
      const reader = new FileLoginSealPublicKeyRepository(publicKeyPath);
      expect(() => reader.current()).toThrow(LoginSealKeyUnavailableError);
      expect(() => reader.current()).toThrow('no such file');
      const first = new FileLoginSealKeyRepository(paths()).load();
      expect(reader.current()).toEqual(first.publicKey);
      fs.rmSync(join(dir, 'private'), { recursive: true });
      const second = new FileLoginSealKeyRepository(paths()).load(); // rotated
      expect(second.publicKey).not.toEqual(first.publicKey);
      expect(reader.current()).toEqual(second.publicKey);
    });

    it('refuses a private key in its place, and keys of other types', () => {
      const { keyPath, publicKeyPath } = paths();
      new FileLoginSealKeyRepository(paths()).load();
      expect(() => new FileLoginSealPublicKeyRepository(keyPath).current()).toThrow(
        'holds a private key',
      );
      fs.writeFileSync(
        publicKeyPath,
        generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }),
      );
      expect(() => new FileLoginSealPublicKeyRepository(publicKeyPath).current()).toThrow(
        'not an X25519 key',
      );
      fs.writeFileSync(publicKeyPath, 'junk');
      expect(() => new FileLoginSealPublicKeyRepository(publicKeyPath).current()).toThrow(
        'not a PEM public key',
      );
    });
  });
});

describe('MemoryLoginSealReplayRepository', () => {
  it('remembers an id for its TTL, then forgets it', async () => {
    const table = new MemoryLoginSealReplayRepository();
    const claim = (delivery: string, now: number) =>
      table.claim({ id: 'a', delivery, ttlMs: 1000, now });
    expect(await claim('d1', 0)).toBe(true);
    expect(await claim('d2', 999)).toBe(false);
    expect(await claim('d1', 999)).toBe(true);
    expect(await claim('d2', 1000)).toBe(true);
  });
});
