import { type GetKeyResult, type LoginCommand, type LoginResult } from '@securechat/core';
import { toBase64 } from '@securechat/protocol';

import { ed25519Key, loginCommand, registerCommand } from '../test/auth-fixtures';
import { AuthController } from './auth.controller';
import { type AuthService } from './auth.service';

const OK: LoginResult = { ok: true, username: 'alice', publicKey: 'AAAA' };
const KEY: GetKeyResult = { ok: true, user: 'alice', publicKey: 'AAAA', fingerprint: 'sha256:00' };

function controller() {
  const service = {
    login: jest.fn((_command: LoginCommand) => Promise.resolve(OK)),
    getKey: jest.fn(() => Promise.resolve(KEY)),
  };
  return { service, controller: new AuthController(service as unknown as AuthService) };
}

const key = ed25519Key();
const login = loginCommand({ username: 'alice', password: 'password1', key });
const register = registerCommand({ username: 'alice', password: 'password1', key });

describe('AuthController login payloads', () => {
  it.each([
    ['login', login],
    ['register', register],
    // Invalid values, not shapes: the service answers those (auth_failed for a login).
    ['an invalid username and short password', { ...login, username: 'NOT VALID', password: 'x' }],
    ['an IPv6 source address', { ...login, sourceAddress: 'fe80::1%eth0' }],
  ])('passes a well-formed %s to the service, as parsed', async (_case, payload) => {
    const { service, controller: c } = controller();
    expect(await c.login(payload)).toBe(OK);
    expect(service.login).toHaveBeenCalledWith(payload);
  });

  const malformed: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['a string', 'login'],
    ['an array', [login]],
    ['an unknown action', { ...login, action: 'reset' }],
    ['a missing member', (({ h2: _h2, ...rest }) => rest)(login)],
    ['an extra member', { ...login, type: 'login' }],
    ['publicKey on a login', { ...login, publicKey: register.publicKey }],
    ['no publicKey on a register', { ...register, publicKey: undefined }],
    ['a number as password', { ...login, password: 12345678 }],
    ['non-canonical base64 in h2', { ...login, h2: login.h2.replace(/=*$/, '') }],
    ['an H2 of 31 bytes', { ...login, h2: toBase64(Buffer.alloc(31)) }],
    ['an empty signature', { ...login, signature: '' }],
    ['a 4 KiB signature', { ...login, signature: toBase64(Buffer.alloc(4096)) }],
    [
      'URL-safe base64 in publicKey',
      { ...register, publicKey: register.publicKey!.replace(/\+/g, '-').replace(/\//g, '_') + '-' },
    ],
    ['an empty source address', { ...login, sourceAddress: '' }],
    ['an overlong source address', { ...login, sourceAddress: 'x'.repeat(101) }],
  ];

  it.each(malformed)(
    'answers bad_request for %s, without calling the service',
    async (_case, payload) => {
      const { service, controller: c } = controller();
      await expect(c.login(payload)).resolves.toEqual({ ok: false, code: 'bad_request' });
      expect(service.login).not.toHaveBeenCalled();
    },
  );
});

describe('AuthController get_key payloads', () => {
  it('passes a well-formed query to the service', async () => {
    const { service, controller: c } = controller();
    expect(await c.getKey({ user: 'alice' })).toBe(KEY);
    expect(service.getKey).toHaveBeenCalledWith({ user: 'alice' });
  });

  it.each([
    ['undefined', undefined],
    ['a bare string', 'alice'],
    ['a number as user', { user: 7 }],
    ['an extra member', { user: 'alice', id: '1' }],
  ])('answers not_found for %s, without calling the service', async (_case, payload) => {
    const { service, controller: c } = controller();
    await expect(c.getKey(payload)).resolves.toEqual({ ok: false, code: 'not_found' });
    expect(service.getKey).not.toHaveBeenCalled();
  });
});

describe('AuthController metrics', () => {
  function counted(result: LoginResult) {
    const metrics = { login: jest.fn() };
    const service = { login: jest.fn(() => Promise.resolve(result)), getKey: jest.fn() };
    const c = new AuthController(service as unknown as AuthService, metrics as never);
    return { c, metrics };
  }

  const failed: LoginResult = { ok: false, code: 'auth_failed' };
  const throttled: LoginResult = { ok: false, code: 'rate_limited', retryAfter: 2 };
  it.each([
    ['a successful login', login, OK, 'ok'],
    ['a registration', register, OK, 'registered'],
    ['a failed login', login, failed, 'auth_failed'],
    ['a throttled login', login, throttled, 'rate_limited'],
  ])('counts %s by its result', async (_case, payload, result, outcome) => {
    const { c, metrics } = counted(result);
    await c.login(payload);
    expect(metrics.login).toHaveBeenCalledTimes(1);
    expect(metrics.login).toHaveBeenCalledWith(outcome);
  });

  it('counts a malformed payload as bad_request', async () => {
    const { c, metrics } = counted(OK);
    await c.login({ nonsense: true });
    expect(metrics.login).toHaveBeenCalledWith('bad_request');
  });
});
