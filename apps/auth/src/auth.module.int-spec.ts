/**
 * AuthModule wired as the embedded process wires it: one @Global() infrastructure module
 * (database, config, clock, throttle) and the in-process transport, called through a client
 * proxy exactly as the gateway will call it. PGlite and real argon2 (fast parameters).
 */
import { Global, type INestMicroservice, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import {
  type AccountStatesResult,
  AUTH_PATTERNS,
  ClockRepository,
  CONFIG,
  DATABASE,
  EphemeralLoginSealKeys,
  type GetKeyResult,
  InProcessBus,
  InProcessClient,
  InProcessServer,
  type LoginCommand,
  type LoginResult,
  LoginSealer,
  LoginSealKeyRepository,
  LoginSealReplayRepository,
  MemoryLoginSealReplayRepository,
  request,
} from '@securechat/core';
import { fingerprint, toBase64 } from '@securechat/protocol';

import { pgliteTestDatabase, type TestDatabase } from '../../../libs/core/test/test-database';
import { ed25519Key, loginCommand, registerCommand, testConfig } from '../test/auth-fixtures';
import { AuthModule } from './auth.module';
import { LoginThrottleRepository } from './login-throttle.repository';
import { MemoryLoginThrottleRepository } from './memory-login-throttle.repository';
import { UserAccountService } from './user-account.service';

describe('AuthModule over the in-process transport', () => {
  let database: TestDatabase;
  let app: INestMicroservice;
  let client: InProcessClient;
  const key = ed25519Key();
  const sealKeys = new EphemeralLoginSealKeys();
  const sealer = new LoginSealer(sealKeys, new ClockRepository());

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    database = await pgliteTestDatabase();
    const config = testConfig({ allowRegistration: true, insecureFastHash: true });

    @Global()
    @Module({
      providers: [
        { provide: DATABASE, useValue: database.db },
        { provide: CONFIG, useValue: config },
        ClockRepository,
        { provide: LoginThrottleRepository, useClass: MemoryLoginThrottleRepository },
        { provide: LoginSealKeyRepository, useValue: sealKeys },
        { provide: LoginSealReplayRepository, useClass: MemoryLoginSealReplayRepository },
      ],
      exports: [
        DATABASE,
        CONFIG,
        ClockRepository,
        LoginThrottleRepository,
        LoginSealKeyRepository,
        LoginSealReplayRepository,
      ],
    })
    class TestInfrastructureModule {}

    @Module({ imports: [TestInfrastructureModule, AuthModule] })
    class TestProcessModule {}

    const bus = new InProcessBus();
    app = await NestFactory.createMicroservice(TestProcessModule, {
      strategy: new InProcessServer(bus),
      logger: false,
    });
    await app.listen();
    client = new InProcessClient(bus);
  }, 30_000); // PGlite's start-up alone takes seconds when the whole suite runs in parallel

  afterAll(async () => {
    await app?.close();
    await database?.close();
  });

  const call = <T>(pattern: string, payload: unknown) => request<T>(client, pattern, payload, 5000);
  /** A login as the gateway makes it: sealed, and the answer checked. */
  const login = async (command: LoginCommand): Promise<LoginResult> => {
    const pending = sealer.seal(command);
    return pending.accept(await call(AUTH_PATTERNS.login, pending.envelope));
  };

  it('registers, logs in and serves the key through the message patterns', async () => {
    const registered = await login(
      registerCommand({ username: 'alice', password: 'a long password', key }),
    );
    expect(registered).toEqual({
      ok: true,
      username: 'alice',
      publicKey: toBase64(key.spki),
      credentialsVersion: 0,
    });

    const loggedIn = await login(
      loginCommand({ username: 'alice', password: 'a long password', key }),
    );
    expect(loggedIn).toEqual({
      ok: true,
      username: 'alice',
      publicKey: toBase64(key.spki),
      credentialsVersion: 0,
    });

    const wrong = await login(
      loginCommand({ username: 'alice', password: 'not the password', key }),
    );
    expect(wrong).toEqual({ ok: false, code: 'auth_failed' });

    expect(await call<GetKeyResult>(AUTH_PATTERNS.getKey, { user: 'alice' })).toEqual({
      ok: true,
      user: 'alice',
      publicKey: toBase64(key.spki),
      fingerprint: fingerprint(key.spki),
    });
    expect(await call<GetKeyResult>(AUTH_PATTERNS.getKey, { user: 'bob' })).toEqual({
      ok: false,
      code: 'not_found',
    });
  });

  it('answers a gateway’s recheck of its accounts through the message pattern', async () => {
    expect(
      await call<AccountStatesResult>(AUTH_PATTERNS.accountStates, {
        usernames: ['alice', 'nobody'],
      }),
    ).toEqual({
      ok: true,
      accounts: [{ username: 'alice', state: 'active', credentialsVersion: 0 }],
    });
    await expect(call(AUTH_PATTERNS.accountStates, { usernames: 'alice' })).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
  });

  it('answers a malformed payload with bad_request, not a transport error', async () => {
    await expect(call(AUTH_PATTERNS.login, { action: 'login' })).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
  });

  it('answers bad_request to an unsealed command, and to a sealed one sent twice', async () => {
    const command = loginCommand({ username: 'alice', password: 'a long password', key });
    await expect(call(AUTH_PATTERNS.login, command)).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
    const { envelope } = sealer.seal(command);
    await expect(call(AUTH_PATTERNS.login, envelope)).resolves.toMatchObject({ ok: true });
    await expect(call(AUTH_PATTERNS.login, envelope)).resolves.toEqual({
      ok: false,
      code: 'bad_request',
    });
  });

  it('exports UserAccountService, whose changes the transport sees', async () => {
    const service = app.get(UserAccountService);
    await service.createUser({ username: 'opuser', password: 'operator pw', publicKey: key.spki });
    await service.setDisabled('opuser', true);
    expect(await login(loginCommand({ username: 'opuser', password: 'operator pw', key }))).toEqual(
      { ok: false, code: 'auth_failed' },
    );
    expect((await service.searchUsers({ limit: 10 })).map((u) => u.username)).toEqual([
      'alice',
      'opuser',
    ]);
  });
});
