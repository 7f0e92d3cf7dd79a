import { Logger } from '@nestjs/common';
import { BaseRpcContext } from '@nestjs/microservices';
import {
  ACCOUNT_STATES_MAX_USERNAMES,
  ClockRepository,
  EphemeralLoginSealKeys,
  type GetKeyResult,
  type LoginCommand,
  type LoginResult,
  LoginSealer,
  LoginSealOpener,
  MemoryLoginSealReplayRepository,
  RedisStreamsContext,
} from '@securechat/core';
import { toBase64 } from '@securechat/protocol';

import { ed25519Key, loginCommand, registerCommand } from '../test/auth-fixtures';
import { AuthController } from './auth.controller';
import { type AuthService } from './auth.service';

const OK: LoginResult = { ok: true, username: 'alice', publicKey: 'AAAA', credentialsVersion: 3 };
const KEY: GetKeyResult = { ok: true, user: 'alice', publicKey: 'AAAA', fingerprint: 'sha256:00' };

/** The login seal as a deployment has it: the gateway's sealer and auth's opener, one key pair. */
const keys = new EphemeralLoginSealKeys();
const sealer = new LoginSealer(keys, new ClockRepository());
/** What the gateway sends for `command` (a JSON round trip, as any transport does). */
const sealed = (command: unknown) =>
  JSON.parse(JSON.stringify(sealer.seal(command as LoginCommand).envelope)) as unknown;
const opener = () =>
  new LoginSealOpener(keys, new MemoryLoginSealReplayRepository(), new ClockRepository());

function controller() {
  const service = {
    login: jest.fn((_command: LoginCommand) => Promise.resolve(OK)),
    getKey: jest.fn(() => Promise.resolve(KEY)),
    accountStates: jest.fn((usernames: readonly string[]) =>
      Promise.resolve(
        usernames.map((username) => ({ username, state: 'active', credentialsVersion: 0 })),
      ),
    ),
  };
  return { service, controller: new AuthController(service as unknown as AuthService, opener()) };
}

beforeEach(() => {
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

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
    const pending = sealer.seal(payload);
    const answer = await c.login(JSON.parse(JSON.stringify(pending.envelope)));
    expect(service.login).toHaveBeenCalledWith(payload);
    // A success carries auth's tag, which the sealing gateway accepts.
    expect(answer).toEqual({ ...OK, tag: expect.any(String) as string });
    expect(pending.accept(answer)).toEqual(OK);
  });

  it('passes a refusal through untagged', async () => {
    const { service, controller: c } = controller();
    service.login.mockResolvedValueOnce({ ok: false, code: 'auth_failed' });
    await expect(c.login(sealed(login))).resolves.toEqual({ ok: false, code: 'auth_failed' });
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

  // An extra member cannot be sealed (the seal carries a fixed set); the envelope's own strict
  // shape refuses one, as the unsealed cases below show.
  it.each(malformed.filter(([name]) => name !== 'an extra member'))(
    'answers bad_request for %s sealed, without calling the service',
    async (_case, payload) => {
      const { service, controller: c } = controller();
      // Members the envelope carries in clear cannot even be sealed wrong: those cases stay
      // malformed as long as the sealed part or the command as a whole is.
      let envelope: unknown;
      try {
        envelope = sealed(payload);
      } catch {
        envelope = payload;
      }
      await expect(c.login(envelope)).resolves.toEqual({ ok: false, code: 'bad_request' });
      expect(service.login).not.toHaveBeenCalled();
    },
  );

  it.each(malformed.filter(([, payload]) => typeof payload === 'object' && payload !== null))(
    'answers bad_request for %s unsealed, without calling the service',
    async (_case, payload) => {
      const { service, controller: c } = controller();
      await expect(c.login(payload)).resolves.toEqual({ ok: false, code: 'bad_request' });
      expect(service.login).not.toHaveBeenCalled();
    },
  );
});

describe('AuthController and the login seal', () => {
  it('answers bad_request for a plain, unsealed command (as every gateway sent before)', async () => {
    const { service, controller: c } = controller();
    await expect(c.login(login)).resolves.toEqual({ ok: false, code: 'bad_request' });
    expect(service.login).not.toHaveBeenCalled();
  });

  it('answers bad_request for a replayed command, calling the service once', async () => {
    const { service, controller: c } = controller();
    const envelope = sealed(login);
    await expect(c.login(envelope)).resolves.toMatchObject({ ok: true });
    await expect(c.login(envelope)).resolves.toEqual({ ok: false, code: 'bad_request' });
    expect(service.login).toHaveBeenCalledTimes(1);
  });

  it('handles a redelivered stream entry again, but not a copy in a new entry', async () => {
    const { service, controller: c } = controller();
    const envelope = sealed(login);
    const entry = (id: string) => new RedisStreamsContext(['auth.login', id, false]);
    await expect(c.login(envelope, entry('1-0'))).resolves.toMatchObject({ ok: true });
    await expect(c.login(envelope, entry('1-0'))).resolves.toMatchObject({ ok: true });
    await expect(c.login(envelope, entry('2-0'))).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
    await expect(c.login(envelope, new BaseRpcContext([]))).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
    expect(service.login).toHaveBeenCalledTimes(2);
  });

  it('answers bad_request for a command sealed to another key', async () => {
    const { service, controller: c } = controller();
    const stranger = new LoginSealer(new EphemeralLoginSealKeys(), new ClockRepository());
    await expect(c.login(stranger.seal(login).envelope)).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
    expect(service.login).not.toHaveBeenCalled();
  });
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

describe('AuthController account_states payloads', () => {
  it('passes a batch of names to the service and answers its states', async () => {
    const { service, controller: c } = controller();
    expect(await c.accountStates({ usernames: ['alice', 'bob'] })).toEqual({
      ok: true,
      accounts: [
        { username: 'alice', state: 'active', credentialsVersion: 0 },
        { username: 'bob', state: 'active', credentialsVersion: 0 },
      ],
    });
    expect(service.accountStates).toHaveBeenCalledWith(['alice', 'bob']);
    const full = Array.from({ length: ACCOUNT_STATES_MAX_USERNAMES }, (_, i) => `user${i}`);
    expect(await c.accountStates({ usernames: full })).toMatchObject({ ok: true });
  });

  it.each([
    ['undefined', undefined],
    ['a bare list', ['alice']],
    ['a number as a name', { usernames: [7] }],
    ['an overlong name', { usernames: ['x'.repeat(65)] }],
    ['an extra member', { usernames: [], gateway: 'gw-1' }],
    [
      `more than ${ACCOUNT_STATES_MAX_USERNAMES} names`,
      { usernames: Array.from({ length: ACCOUNT_STATES_MAX_USERNAMES + 1 }, (_, i) => `u${i}`) },
    ],
  ])('answers bad_request for %s, without calling the service', async (_case, payload) => {
    const { service, controller: c } = controller();
    await expect(c.accountStates(payload)).resolves.toEqual({ ok: false, code: 'bad_request' });
    expect(service.accountStates).not.toHaveBeenCalled();
  });
});

describe('AuthController metrics', () => {
  function counted(result: LoginResult) {
    const metrics = { login: jest.fn() };
    const service = { login: jest.fn(() => Promise.resolve(result)), getKey: jest.fn() };
    const c = new AuthController(service as unknown as AuthService, opener(), metrics as never);
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
    await c.login(sealed(payload));
    expect(metrics.login).toHaveBeenCalledTimes(1);
    expect(metrics.login).toHaveBeenCalledWith(outcome);
  });

  it('counts a malformed payload as bad_request', async () => {
    const { c, metrics } = counted(OK);
    await c.login({ nonsense: true });
    expect(metrics.login).toHaveBeenCalledWith('bad_request');
  });
});
