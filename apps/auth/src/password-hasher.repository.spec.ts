import { Logger } from '@nestjs/common';

import { testConfig } from '../test/auth-fixtures';
import { PasswordHasherRepository } from './password-hasher.repository';

// Real argon2: a handful of calls at ~40 ms each.
describe('PasswordHasherRepository', () => {
  let warn: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => warn.mockRestore());

  it('hashes with argon2id at the OWASP minimum and verifies the round trip', async () => {
    const hasher = new PasswordHasherRepository(testConfig());
    const phc = await hasher.hash('correct horse battery staple');
    expect(phc).toMatch(
      /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
    );
    expect(phc).not.toContain('correct horse');
    await expect(hasher.verify(phc, 'correct horse battery staple')).resolves.toBe(true);
    await expect(hasher.verify(phc, 'correct horse battery stapl')).resolves.toBe(false);
    expect(warn).not.toHaveBeenCalled();
  });

  it('salts every hash', async () => {
    const hasher = new PasswordHasherRepository(testConfig({ insecureFastHash: true }));
    expect(await hasher.hash('same password')).not.toBe(await hasher.hash('same password'));
  });

  it('returns false, never throws, for a malformed stored hash', async () => {
    const hasher = new PasswordHasherRepository(testConfig());
    for (const phc of [
      '',
      'not a hash',
      '$argon2id$v=19$m=19456,t=2,p=1$',
      '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$!!!',
      '$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA',
      '$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA',
    ]) {
      await expect(hasher.verify(phc, 'password1')).resolves.toBe(false);
    }
  });

  it('uses cheap parameters under insecureFastHash, and says so loudly once', async () => {
    const hasher = new PasswordHasherRepository(testConfig({ insecureFastHash: true }));
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/INSECURE_FAST_HASH.*NEVER/s);
    const phc = await hasher.hash('benchmark password');
    expect(phc).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    await expect(hasher.verify(phc, 'benchmark password')).resolves.toBe(true);
    await hasher.hash('another');
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('verifies hashes made under other parameters (they travel in the PHC string)', async () => {
    const fast = new PasswordHasherRepository(testConfig({ insecureFastHash: true }));
    const normal = new PasswordHasherRepository(testConfig());
    await expect(normal.verify(await fast.hash('portable pw'), 'portable pw')).resolves.toBe(true);
  });
});
