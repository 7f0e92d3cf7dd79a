/**
 * LoginGate with a fake auth service and limiter: what auth is asked, the session slot taken
 * before login_ok and given back once, refusals passed through with their metric, and an
 * unreachable auth or a peer gone meanwhile answered `internal`.
 */
import { type LoggerService } from '@nestjs/common';
import { type LoginCommand, type LoginResult, NoopMetricsRepository } from '@securechat/core';
import { type LoginRequest, toBase64 } from '@securechat/protocol';

import { LoginGate } from './login-gate';

type SlotAnswer = 'ok' | 'server_full' | 'user_limit';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const USER_SPKI = Buffer.from('302a300506032b6570032100' + 'ab'.repeat(32), 'hex');

const okResult: LoginResult = { ok: true, username: 'alice', publicKey: toBase64(USER_SPKI) };

const loginRequest: LoginRequest = {
  action: 'login',
  username: 'alice',
  password: 'correct horse battery staple',
  signature: Buffer.from([1, 2, 3, 4, 5]),
  h2: Buffer.alloc(32, 7),
};

function setup(result: LoginResult | Promise<LoginResult> = okResult, slot: SlotAnswer = 'ok') {
  const auth = {
    login: jest.fn<Promise<LoginResult>, [LoginCommand]>(() => Promise.resolve(result)),
  };
  const limiter = {
    tryStartSession: jest.fn<SlotAnswer, [string]>(() => slot),
    endSession: jest.fn<void, [string]>(),
  };
  const metrics = new NoopMetricsRepository();
  const authFailure = jest.spyOn(metrics, 'authFailure');
  const handshake = jest.spyOn(metrics, 'handshake');
  const logger: LoggerService = { log: jest.fn(), error: jest.fn(), warn: jest.fn() };
  const state = { closed: false, now: 1_000 };
  const now = jest.fn(() => state.now);
  const gate = new LoginGate({
    auth,
    limiter,
    metrics,
    logger,
    now,
    remoteAddress: '198.51.100.4',
    closed: () => state.closed,
  });
  return { gate, auth, limiter, authFailure, handshake, logger, state, now };
}

describe('LoginGate', () => {
  describe('a login auth accepts', () => {
    it('asks auth with the request in base64 and where it came from', async () => {
      const { gate, auth } = setup();
      await gate.verify(loginRequest);
      expect(auth.login).toHaveBeenCalledTimes(1);
      const command = auth.login.mock.calls[0]![0];
      expect(command).toEqual({
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        signature: toBase64(loginRequest.signature),
        h2: toBase64(loginRequest.h2),
        sourceAddress: '198.51.100.4',
      });
      expect(command).not.toHaveProperty('publicKey');
    });

    it('passes a registration key on in base64', async () => {
      const { gate, auth } = setup();
      await gate.verify({ ...loginRequest, action: 'register', publicKey: USER_SPKI });
      expect(auth.login.mock.calls[0]![0]).toMatchObject({
        action: 'register',
        publicKey: toBase64(USER_SPKI),
      });
    });

    it('takes a slot, decodes the key, holds the slot until release (once)', async () => {
      const { gate, limiter, authFailure } = setup();
      expect(gate.holdsSlot).toBe(false);
      const decision = await gate.verify(loginRequest);
      expect(decision.ok).toBe(true);
      expect(decision.ok && decision.publicKey.equals(USER_SPKI)).toBe(true);
      expect(limiter.tryStartSession).toHaveBeenCalledTimes(1);
      expect(limiter.tryStartSession).toHaveBeenCalledWith('alice');
      expect(gate.holdsSlot).toBe(true);
      expect(gate.refused).toBe(false);
      expect(authFailure).not.toHaveBeenCalled();

      expect(limiter.endSession).not.toHaveBeenCalled();
      gate.release();
      expect(limiter.endSession).toHaveBeenCalledTimes(1);
      expect(limiter.endSession).toHaveBeenCalledWith('alice');
      expect(gate.holdsSlot).toBe(false);
      gate.release();
      expect(limiter.endSession).toHaveBeenCalledTimes(1);
    });

    it('takes the slot only after auth said yes', async () => {
      const decision = deferred<LoginResult>();
      const { gate, limiter } = setup(decision.promise);
      const verdict = gate.verify(loginRequest);
      await Promise.resolve();
      expect(limiter.tryStartSession).not.toHaveBeenCalled();
      expect(gate.holdsSlot).toBe(false);
      decision.resolve(okResult);
      await verdict;
      expect(gate.holdsSlot).toBe(true);
    });

    it('keeps the credential generation auth decided with, for the session’s rechecks', async () => {
      const { gate } = setup({ ...okResult, credentialsVersion: 4 });
      expect(gate.credentialsVersion).toBeUndefined();
      await gate.verify(loginRequest);
      expect(gate.credentialsVersion).toBe(4);
      // An auth service that does not say: unknown, and the recheck looks at the state only.
      const older = setup(okResult);
      await older.gate.verify(loginRequest);
      expect(older.gate.credentialsVersion).toBeUndefined();
    });

    it('keeps no generation from a login it refused', async () => {
      const { gate } = setup({ ...okResult, credentialsVersion: 4 }, 'server_full');
      await gate.verify(loginRequest);
      expect(gate.credentialsVersion).toBeUndefined();
    });

    it('release() without a slot gives nothing back', () => {
      const { gate, limiter } = setup();
      gate.release();
      expect(limiter.endSession).not.toHaveBeenCalled();
    });
  });

  describe('a login auth refuses', () => {
    it('passes the code and retryAfter through, counts it, takes no slot', async () => {
      const { gate, limiter, authFailure } = setup({
        ok: false,
        code: 'rate_limited',
        retryAfter: 42,
      });
      const decision = await gate.verify(loginRequest);
      expect(decision).toEqual({ ok: false, code: 'rate_limited', retryAfter: 42 });
      expect(authFailure).toHaveBeenCalledTimes(1);
      expect(authFailure).toHaveBeenCalledWith('rate_limited');
      expect(gate.refused).toBe(true);
      expect(limiter.tryStartSession).not.toHaveBeenCalled();
      expect(gate.holdsSlot).toBe(false);
      gate.release();
      expect(limiter.endSession).not.toHaveBeenCalled();
    });

    it.each(['auth_failed', 'forbidden', 'conflict', 'bad_request'] as const)(
      'passes %s through without a retryAfter',
      async (code) => {
        const { gate, limiter, authFailure } = setup({ ok: false, code });
        const decision = await gate.verify(loginRequest);
        expect(decision).toEqual({ ok: false, code });
        expect(decision).not.toHaveProperty('retryAfter');
        expect(authFailure).toHaveBeenCalledWith(code);
        expect(gate.refused).toBe(true);
        expect(limiter.tryStartSession).not.toHaveBeenCalled();
      },
    );
  });

  describe('a login the limiter refuses', () => {
    it.each([
      ['server_full', 5],
      ['user_limit', 30],
    ] as const)('%s is rate_limited with retryAfter %d', async (slot, retryAfter) => {
      const { gate, limiter, authFailure } = setup(okResult, slot);
      const decision = await gate.verify(loginRequest);
      expect(decision).toEqual({ ok: false, code: 'rate_limited', retryAfter });
      expect(limiter.tryStartSession).toHaveBeenCalledWith('alice');
      expect(authFailure).toHaveBeenCalledTimes(1);
      expect(authFailure).toHaveBeenCalledWith(slot);
      expect(gate.refused).toBe(true);
      expect(gate.holdsSlot).toBe(false);
      gate.release();
      expect(limiter.endSession).not.toHaveBeenCalled();
    });
  });

  describe('a connection closed while auth decided', () => {
    it('is internal and takes no slot', async () => {
      const decision = deferred<LoginResult>();
      const { gate, limiter, state } = setup(decision.promise);
      const verdict = gate.verify(loginRequest);
      state.closed = true;
      decision.resolve(okResult);
      expect(await verdict).toEqual({ ok: false, code: 'internal' });
      expect(limiter.tryStartSession).not.toHaveBeenCalled();
      expect(gate.holdsSlot).toBe(false);
      gate.release();
      expect(limiter.endSession).not.toHaveBeenCalled();
    });
  });

  describe('an auth service that fails', () => {
    it('is internal, counted as unavailable, logged, with no slot (rejected promise)', async () => {
      const { gate, auth, limiter, authFailure, logger } = setup();
      auth.login.mockRejectedValueOnce(new Error('connection refused'));
      const decision = await gate.verify(loginRequest);
      expect(decision).toEqual({ ok: false, code: 'internal' });
      expect(authFailure).toHaveBeenCalledTimes(1);
      expect(authFailure).toHaveBeenCalledWith('unavailable');
      expect(gate.refused).toBe(true);
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('connection refused'));
      expect(limiter.tryStartSession).not.toHaveBeenCalled();
      expect(gate.holdsSlot).toBe(false);
    });

    it('is internal also when auth throws before returning a promise', async () => {
      const { gate, auth, authFailure } = setup();
      auth.login.mockImplementationOnce(() => {
        throw new Error('no transport');
      });
      await expect(gate.verify(loginRequest)).resolves.toEqual({ ok: false, code: 'internal' });
      expect(authFailure).toHaveBeenCalledWith('unavailable');
    });
  });

  describe('startedAt', () => {
    it('is 0 before a login, then the time the login arrived', async () => {
      const decision = deferred<LoginResult>();
      const { gate, state, now } = setup(decision.promise);
      expect(gate.startedAt).toBe(0);
      state.now = 5_000;
      const verdict = gate.verify(loginRequest);
      expect(gate.startedAt).toBe(5_000);
      expect(now).toHaveBeenCalledTimes(1);
      state.now = 9_000; // auth takes its time
      decision.resolve(okResult);
      await verdict;
      expect(gate.startedAt).toBe(5_000);
    });
  });

  it('never records a handshake result itself', async () => {
    const { gate, handshake } = setup({ ok: false, code: 'auth_failed' });
    await gate.verify(loginRequest);
    expect(handshake).not.toHaveBeenCalled();
  });
});
