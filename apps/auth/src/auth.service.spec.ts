import { createPublicKey, type KeyObject } from 'node:crypto';

import { Logger } from '@nestjs/common';

import { type LoginCommand, type LoginResult } from '@securechat/core';
import * as protocol from '@securechat/protocol';
import { fingerprint, toBase64 } from '@securechat/protocol';

import {
  ed25519Key,
  loginCommand,
  newH2,
  registerCommand,
  rsaKey,
  signH2,
  type ConfigOverrides,
  type UserKey,
} from '../test/auth-fixtures';
import { fakeHash } from '../test/fake-repositories';
import { type Harness, PASSWORD, serviceHarness, T0 } from '../test/service-harness';
import { type LoginThrottleRepository } from './login-throttle.repository';

// The real userVerify, wrapped so that the tests can count signature verifications.
jest.mock('@securechat/protocol', () => {
  const actual = jest.requireActual<typeof protocol>('@securechat/protocol');
  return { ...actual, userVerify: jest.fn(actual.userVerify) };
});
const userVerify = protocol.userVerify as jest.MockedFunction<typeof protocol.userVerify>;

const ADDRESS = '192.0.2.1';
const AUTH_FAILED = { ok: false, code: 'auth_failed' };

let rsa: UserKey;
let ed: UserKey;
let stranger: UserKey;
/** Everything AuthService logged, at any level. */
let logged: jest.SpyInstance[];
beforeAll(() => {
  logged = (['log', 'warn', 'error'] as const).map((level) =>
    jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined),
  );
  rsa = rsaKey(2048);
  ed = ed25519Key();
  stranger = ed25519Key();
});

const harness = (overrides: ConfigOverrides = {}, throttleOverride?: LoginThrottleRepository) =>
  serviceHarness({ rsa, ed }, overrides, throttleOverride);

function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

describe('AuthService.login', () => {
  it.each([
    ['RSA-2048', 'alice', () => rsa],
    ['Ed25519', 'erin', () => ed],
  ])('accepts the right password and a %s signature over H2', async (_kind, username, key) => {
    const h = await harness();
    const attempt = jest.spyOn(h.throttle, 'attempt');
    const refund = jest.spyOn(h.throttle, 'refund');
    const success = jest.spyOn(h.throttle, 'recordSuccess');
    const result = await h.service.login(
      loginCommand({ username, password: PASSWORD, key: key() }),
    );
    // The account's credential generation as the login saw it: the gateway keeps it.
    expect(result).toEqual({
      ok: true,
      username,
      publicKey: toBase64(key().spki),
      credentialsVersion: 0,
    });
    // The attempt was counted up front and given back: a success costs no budget.
    expect(attempt).toHaveBeenCalledWith(username, ADDRESS, T0);
    expect(refund).toHaveBeenCalledWith(ADDRESS, T0);
    expect(success).toHaveBeenCalledWith(username);
  });

  const longPassword = 'é'.repeat(513); // 1026 bytes, 513 characters
  const failures: [string, (h: Harness) => Promise<LoginCommand>][] = [
    [
      'an unknown user',
      () => Promise.resolve(loginCommand({ username: 'nobody', password: PASSWORD, key: rsa })),
    ],
    [
      'a wrong password',
      () =>
        Promise.resolve(loginCommand({ username: 'alice', password: 'wrong password', key: rsa })),
    ],
    [
      'a signature by another key',
      () => Promise.resolve(loginCommand({ username: 'alice', password: PASSWORD, key: ed })),
    ],
    [
      'a signature over another H2',
      () =>
        Promise.resolve(
          loginCommand({ username: 'alice', password: PASSWORD, key: rsa, signedH2: newH2() }),
        ),
    ],
    [
      'a disabled account',
      async (h) => {
        await h.accounts.setDisabled('alice', true);
        return loginCommand({ username: 'alice', password: PASSWORD, key: rsa });
      },
    ],
    [
      'a deleted account',
      async (h) => {
        await h.accounts.deleteUser('alice');
        return loginCommand({ username: 'alice', password: PASSWORD, key: rsa });
      },
    ],
    [
      'an invalid username (upper case)',
      () => Promise.resolve(loginCommand({ username: 'Alice', password: PASSWORD, key: rsa })),
    ],
    [
      'an invalid username (too short)',
      () => Promise.resolve(loginCommand({ username: 'al', password: PASSWORD, key: rsa })),
    ],
    // The next three have a stored hash that matches: only the length rule can refuse them.
    [
      'a password under 8 bytes',
      (h) => {
        h.users.seed({
          username: 'shorty',
          passwordHash: fakeHash('1234567'),
          publicKey: ed.spki,
          fingerprint: fingerprint(ed.spki),
        });
        return Promise.resolve(loginCommand({ username: 'shorty', password: '1234567', key: ed }));
      },
    ],
    [
      'a password over 1024 bytes',
      (h) => {
        h.users.seed({
          username: 'longy',
          passwordHash: fakeHash(longPassword),
          publicKey: ed.spki,
          fingerprint: fingerprint(ed.spki),
        });
        return Promise.resolve(
          loginCommand({ username: 'longy', password: longPassword, key: ed }),
        );
      },
    ],
    [
      'a password with a lone surrogate',
      (h) => {
        h.users.seed({
          username: 'surrogate',
          passwordHash: fakeHash('password\ud800'),
          publicKey: ed.spki,
          fingerprint: fingerprint(ed.spki),
        });
        return Promise.resolve(
          loginCommand({ username: 'surrogate', password: 'password\ud800', key: ed }),
        );
      },
    ],
    [
      'a stored key that no longer imports',
      (h) => {
        h.users.seed({
          username: 'broken',
          passwordHash: fakeHash(PASSWORD),
          publicKey: Buffer.from('not a key'),
          fingerprint: 'sha256:00',
        });
        return Promise.resolve(loginCommand({ username: 'broken', password: PASSWORD, key: ed }));
      },
    ],
  ];

  it.each(failures)(
    'answers %s with the one auth_failed, after one argon2 verify and one signature verify',
    async (_case, makeCommand) => {
      const h = await harness();
      const command = await makeCommand(h);
      jest.clearAllMocks();
      const attempt = jest.spyOn(h.throttle, 'attempt');
      const refund = jest.spyOn(h.throttle, 'refund');

      const result: LoginResult = await h.service.login(command);

      expect(result).toStrictEqual(AUTH_FAILED);
      expect(h.hasher.verify).toHaveBeenCalledTimes(1);
      expect(userVerify).toHaveBeenCalledTimes(1);
      // Counted once against the address (and the username when the key signed), kept.
      expect(attempt).toHaveBeenCalledTimes(1);
      expect(attempt.mock.calls[0]?.slice(1)).toEqual([ADDRESS, T0]);
      expect(refund).not.toHaveBeenCalled();
      // argon2 never sees more than the length rule allows.
      const verified = h.hasher.verify.mock.calls[0]?.[1] ?? '';
      expect(Buffer.byteLength(verified)).toBeLessThanOrEqual(1024);
    },
  );

  it('uses the startup dummy hash and a key nobody holds when there is no live account', async () => {
    const h = await harness();
    await h.accounts.deleteUser('alice');
    for (const username of ['nobody', 'alice', 'Not Valid']) {
      jest.clearAllMocks();
      await h.service.login(loginCommand({ username, password: PASSWORD, key: rsa }));
      expect(h.hasher.verify).toHaveBeenCalledWith(h.dummyHash, PASSWORD);
      const key = userVerify.mock.calls[0]?.[0];
      expect(key?.asymmetricKeyType).toBe('ed25519');
      expect(spki(key!)).not.toEqual(rsa.spki);
    }
    // Computed once, at startup: no login hashed anything.
    expect(h.hasher.hash).not.toHaveBeenCalled();
  });

  it('does not look up names that cannot exist', async () => {
    const h = await harness();
    await h.service.login(loginCommand({ username: 'DROP TABLE', password: PASSWORD, key: rsa }));
    expect(h.users.findByUsername).not.toHaveBeenCalled();
  });

  it('answers bad_request for an H2 or signature that is not canonical base64', async () => {
    const h = await harness();
    const good = loginCommand({ username: 'alice', password: PASSWORD, key: rsa });
    expect(await h.service.login({ ...good, h2: good.h2.slice(0, -4) })).toEqual({
      ok: false,
      code: 'bad_request',
    });
    expect(await h.service.login({ ...good, signature: `${good.signature} ` })).toEqual({
      ok: false,
      code: 'bad_request',
    });
    expect(h.hasher.verify).not.toHaveBeenCalled();
  });
});

describe('AuthService login throttling', () => {
  it('refuses the 6th attempt after 5 failures signed with the key, from any address, before any argon2 work, even with the right password', async () => {
    const h = await harness();
    for (let i = 0; i < 5; i++) {
      expect(
        await h.service.login(
          loginCommand({ username: 'alice', password: `wrong ${i}`, key: rsa }),
        ),
      ).toStrictEqual(AUTH_FAILED);
    }
    jest.clearAllMocks();
    const result = await h.service.login(
      loginCommand({
        username: 'alice',
        password: PASSWORD,
        key: rsa,
        sourceAddress: '198.51.100.7',
      }),
    );
    expect(result).toEqual({ ok: false, code: 'rate_limited', retryAfter: expect.any(Number) });
    const retryAfter = (result as { retryAfter: number }).retryAfter;
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    expect(h.hasher.verify).not.toHaveBeenCalled();
    expect(h.hasher.hash).not.toHaveBeenCalled();

    // Once the delay has passed, the right credentials work again.
    h.clock.advance(retryAfter * 1000);
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toMatchObject({ ok: true });
  });

  it('never lets a stranger lock an account out: failures without the account’s signature count against the address only', async () => {
    const h = await harness();
    // 12 attempts with a key that is not alice's, from one address and from many.
    for (let i = 0; i < 12; i++) {
      for (const sourceAddress of [ADDRESS, `203.0.113.${i}`]) {
        expect(
          await h.service.login(
            loginCommand({
              username: 'alice',
              password: `guess ${i}`,
              key: stranger,
              sourceAddress,
            }),
          ),
        ).toStrictEqual(AUTH_FAILED);
      }
    }
    // alice, holding her key, is not throttled, from her usual address or another one.
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toMatchObject({ ok: true });
    // The stranger's address did pay: 12 failures are on its count, not on alice's.
    expect(await h.throttle.blockedFor(null, ADDRESS, T0)).toBe(0);
    await h.throttle.recordFailure(null, ADDRESS, T0);
    expect(h.throttle.size.usernames).toBe(0);
  });

  it('answers a stranger the same whether or not the key holder is throttled', async () => {
    const h = await harness();
    const strangerAttempt = () =>
      h.service.login(
        loginCommand({
          username: 'alice',
          password: 'guess',
          key: stranger,
          sourceAddress: '198.51.100.1',
        }),
      );
    const before = await strangerAttempt();
    for (let i = 0; i < 5; i++) {
      await h.service.login(loginCommand({ username: 'alice', password: `wrong ${i}`, key: rsa }));
    }
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: 'wrong', key: rsa })),
    ).toMatchObject({ code: 'rate_limited' });
    expect(await strangerAttempt()).toStrictEqual(before);
    expect(before).toStrictEqual(AUTH_FAILED);
  });

  it('counts unknown usernames against the address only, like any failure without a valid signature', async () => {
    const h = await harness({ throttle: { addressFailures: 8 } });
    const attempt = (username: string) =>
      h.service.login(loginCommand({ username, password: 'wrong pw', key: rsa }));
    for (let i = 0; i < 7; i++) expect(await attempt('nobody_here')).toStrictEqual(AUTH_FAILED);
    expect(h.throttle.size.usernames).toBe(0);
    expect(await attempt('nobody_here')).toStrictEqual(AUTH_FAILED);
    expect(await attempt('anyone_else')).toEqual({
      ok: false,
      code: 'rate_limited',
      retryAfter: 1,
    });
  });

  it('resets the username count on success', async () => {
    const h = await harness();
    const wrong = () =>
      h.service.login(
        loginCommand({
          username: 'alice',
          password: 'wrong pw',
          key: rsa,
          sourceAddress: '203.0.113.1',
        }),
      );
    for (let i = 0; i < 4; i++) await wrong();
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toMatchObject({ ok: true });
    for (let i = 0; i < 4; i++) expect(await wrong()).toStrictEqual(AUTH_FAILED);
    // Without the reset this would have been the 9th failure in a row.
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toMatchObject({ ok: true });
  });

  it('blocks an address after addressFailures across usernames, and only that address (IPv6 by /64)', async () => {
    const h = await harness({ throttle: { addressFailures: 3 } });
    for (const [i, address] of [
      '2001:db8:7:7::1',
      '2001:db8:7:7::2',
      '2001:db8:7:7:ffff::3',
    ].entries()) {
      expect(
        await h.service.login(
          loginCommand({
            username: `guess${i}`,
            password: 'wrong pw',
            key: rsa,
            sourceAddress: address,
          }),
        ),
      ).toStrictEqual(AUTH_FAILED);
    }
    expect(
      await h.service.login(
        loginCommand({
          username: 'alice',
          password: PASSWORD,
          key: rsa,
          sourceAddress: '2001:db8:7:7::99',
        }),
      ),
    ).toEqual({ ok: false, code: 'rate_limited', retryAfter: 1 });
    expect(
      await h.service.login(
        loginCommand({
          username: 'alice',
          password: PASSWORD,
          key: rsa,
          sourceAddress: '2001:db8:7:8::1',
        }),
      ),
    ).toMatchObject({ ok: true });
  });

  it('checks and counts concurrent attempts on one username atomically, so a burst cannot outrun the count', async () => {
    const h = await harness({ throttle: { userFailures: 2 } });
    const burst = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        h.service.login(
          loginCommand({
            username: 'alice',
            password: `wrong ${i}`,
            key: rsa,
            sourceAddress: `203.0.113.${i}`,
          }),
        ),
      ),
    );
    expect(burst.map((r) => r.ok === false && r.code)).toEqual([
      'auth_failed',
      'auth_failed',
      'rate_limited',
      'rate_limited',
      'rate_limited',
      'rate_limited',
    ]);
    expect(h.hasher.verify).toHaveBeenCalledTimes(2);
  });

  it('checks and counts concurrent attempts from one address atomically, across usernames', async () => {
    const h = await harness({ throttle: { addressFailures: 10 } });
    const burst = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        h.service.login(loginCommand({ username: `guess${i}`, password: 'wrong pw', key: rsa })),
      ),
    );
    const codes = burst.map((r) => (r.ok ? 'ok' : r.code));
    expect(codes.filter((c) => c === 'auth_failed')).toHaveLength(10);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(20);
    expect(h.hasher.verify).toHaveBeenCalledTimes(10);
  });

  it('passes on the throttle repository’s delay without the argon2 work or any write', async () => {
    const stub: LoginThrottleRepository = {
      blockedFor: jest.fn(() => Promise.resolve(42)),
      recordFailure: jest.fn(() => Promise.resolve()),
      attempt: jest.fn(() => Promise.resolve(42)),
      refund: jest.fn(() => Promise.resolve()),
      recordSuccess: jest.fn(() => Promise.resolve()),
      clear: jest.fn(() => Promise.resolve()),
    };
    const h = await harness({}, stub);
    jest.clearAllMocks();
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toEqual({ ok: false, code: 'rate_limited', retryAfter: 42 });
    expect(
      await h.service.login(registerCommand({ username: 'newbie', password: PASSWORD, key: ed })),
    ).toEqual({ ok: false, code: 'rate_limited', retryAfter: 42 });
    expect(stub.attempt).toHaveBeenNthCalledWith(1, 'alice', ADDRESS, T0);
    expect(stub.attempt).toHaveBeenNthCalledWith(2, null, ADDRESS, T0);
    expect(stub.refund).not.toHaveBeenCalled();
    expect(stub.recordSuccess).not.toHaveBeenCalled();
    expect(h.users.create).not.toHaveBeenCalled();
    expect(h.hasher.verify).not.toHaveBeenCalled();
    expect(h.hasher.hash).not.toHaveBeenCalled();
  });
});

describe('AuthService registration', () => {
  it('is forbidden when self-registration is off, before anything else', async () => {
    const h = await harness({ allowRegistration: false });
    expect(
      await h.service.login(registerCommand({ username: 'newbie', password: PASSWORD, key: ed })),
    ).toEqual({ ok: false, code: 'forbidden' });
    expect(h.users.findByUsername).not.toHaveBeenCalled();
    expect(h.users.create).not.toHaveBeenCalled();
    expect(h.hasher.hash).not.toHaveBeenCalled();
  });

  it.each([
    ['Ed25519', () => ed25519Key()],
    ['RSA-2048', () => rsa],
  ])('creates a %s account that can then log in and be looked up', async (_kind, makeKey) => {
    const h = await harness();
    const key = makeKey();
    const result = await h.service.login(
      registerCommand({ username: 'newbie', password: 'a new password', key }),
    );
    expect(result).toEqual({
      ok: true,
      username: 'newbie',
      publicKey: toBase64(key.spki),
      credentialsVersion: 0,
    });
    expect(h.users.create).toHaveBeenCalledWith({
      username: 'newbie',
      passwordHash: fakeHash('a new password'),
      publicKey: key.spki,
      fingerprint: fingerprint(key.spki),
      createdAt: new Date(T0),
    });
    expect(
      await h.service.login(loginCommand({ username: 'newbie', password: 'a new password', key })),
    ).toMatchObject({ ok: true });
    expect(await h.service.getKey({ user: 'newbie' })).toEqual({
      ok: true,
      user: 'newbie',
      publicKey: toBase64(key.spki),
      fingerprint: fingerprint(key.spki),
    });
  });

  it.each([
    ['active', (_h: Harness) => Promise.resolve()],
    ['disabled', (h: Harness) => h.accounts.setDisabled('alice', true)],
    ['deleted', (h: Harness) => h.accounts.deleteUser('alice')],
  ])('answers conflict for a name held by an %s account', async (_state, prepare) => {
    const h = await harness();
    await prepare(h);
    jest.clearAllMocks();
    expect(
      await h.service.login(
        registerCommand({ username: 'alice', password: 'takeover attempt', key: ed }),
      ),
    ).toEqual({ ok: false, code: 'conflict' });
    expect(h.users.create).not.toHaveBeenCalled();
    expect(h.hasher.hash).not.toHaveBeenCalled();
    expect(h.users.rows.get('alice')?.publicKey).toEqual(rsa.spki);
  });

  it('spends the address budget on every registration, so names cannot be probed or taken in bulk', async () => {
    const h = await harness({
      throttle: { userFailures: 5, addressFailures: 3, maxDelaySeconds: 900 },
    });
    const attempt = (username: string) =>
      h.service.login(registerCommand({ username, password: PASSWORD, key: ed }));
    expect(await attempt('alice')).toEqual({ ok: false, code: 'conflict' });
    expect(await attempt('new_one')).toMatchObject({ ok: true });
    expect(await attempt('new_two')).toMatchObject({ ok: true });
    expect(await attempt('new_three')).toMatchObject({ ok: false, code: 'rate_limited' });
    expect(await attempt('erin')).toMatchObject({ ok: false, code: 'rate_limited' });
  });

  it('answers conflict when the name is taken between the check and the insert', async () => {
    const h = await harness();
    h.users.findByUsername.mockResolvedValueOnce(undefined);
    expect(
      await h.service.login(registerCommand({ username: 'alice', password: PASSWORD, key: ed })),
    ).toEqual({ ok: false, code: 'conflict' });
    expect(h.users.create).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['an RSA-1024 key', () => rsaKey(1024).spki],
    ['bytes that are no key', () => Buffer.from('not a SubjectPublicKeyInfo')],
    [
      'an X25519 key',
      () =>
        spki(
          createPublicKey({
            key: Buffer.concat([
              Buffer.from('302a300506032b656e032100', 'hex'),
              Buffer.alloc(32, 9),
            ]),
            format: 'der',
            type: 'spki',
          }),
        ),
    ],
    ['a key with trailing bytes', () => Buffer.concat([ed.spki, Buffer.of(0)])],
  ])('answers bad_request for %s', async (_case, makeSpki) => {
    const h = await harness();
    const command = registerCommand({
      username: 'newbie',
      password: PASSWORD,
      key: ed,
      publicKey: makeSpki(),
    });
    expect(await h.service.login(command)).toEqual({ ok: false, code: 'bad_request' });
    expect(h.users.create).not.toHaveBeenCalled();
  });

  it.each([
    ['a password under 8 bytes', 'newbie', '1234567'],
    ['a password over 1024 bytes', 'newbie', 'x'.repeat(1025)],
    ['an invalid username', 'New-Bie', PASSWORD],
  ])('answers bad_request for %s', async (_case, username, password) => {
    const h = await harness();
    expect(await h.service.login(registerCommand({ username, password, key: ed }))).toEqual({
      ok: false,
      code: 'bad_request',
    });
    expect(h.users.create).not.toHaveBeenCalled();
  });

  it('accepts passwords of exactly 8 and 1024 UTF-8 bytes', async () => {
    const h = await harness();
    const ok8 = await h.service.login(
      registerCommand({ username: 'eight', password: '12345678', key: ed }),
    );
    const ok1024 = await h.service.login(
      registerCommand({ username: 'max_len', password: 'é'.repeat(512), key: ed }),
    );
    expect([ok8.ok, ok1024.ok]).toEqual([true, true]);
  });

  it('answers auth_failed without a proof of possession, counting a failure for the address only', async () => {
    const h = await harness({ throttle: { addressFailures: 2 } });
    const attempt = jest.spyOn(h.throttle, 'attempt');
    const refund = jest.spyOn(h.throttle, 'refund');
    // Claims ed's public key but signs with another one.
    const command = {
      ...registerCommand({ username: 'newbie', password: PASSWORD, key: stranger }),
      publicKey: toBase64(ed.spki),
    };
    expect(await h.service.login(command)).toStrictEqual(AUTH_FAILED);
    expect(attempt).toHaveBeenCalledWith(null, ADDRESS, T0);
    expect(refund).not.toHaveBeenCalled();
    expect(h.users.create).not.toHaveBeenCalled();
    // A signature over another session's H2 is no proof either.
    const h2 = newH2();
    const replay = {
      ...registerCommand({ username: 'newbie', password: PASSWORD, key: ed, h2 }),
      signature: signH2(ed, newH2()),
    };
    expect(await h.service.login(replay)).toStrictEqual(AUTH_FAILED);
    // Two failures: the address is now blocked, for logins too.
    expect(
      await h.service.login(loginCommand({ username: 'alice', password: PASSWORD, key: rsa })),
    ).toEqual({ ok: false, code: 'rate_limited', retryAfter: 1 });
    expect(h.users.rows.has('newbie')).toBe(false);
  });
});

describe('AuthService.getKey', () => {
  it('returns the key and fingerprint of live accounts, disabled ones included', async () => {
    const h = await harness();
    await h.accounts.setDisabled('alice', true);
    expect(await h.service.getKey({ user: 'alice' })).toEqual({
      ok: true,
      user: 'alice',
      publicKey: toBase64(rsa.spki),
      fingerprint: fingerprint(rsa.spki),
    });
  });

  it('answers not_found for unknown, deleted and impossible names', async () => {
    const h = await harness();
    await h.accounts.deleteUser('erin');
    for (const user of ['nobody', 'erin', 'ERIN', '']) {
      expect(await h.service.getKey({ user })).toEqual({ ok: false, code: 'not_found' });
    }
    expect(h.users.findByUsername).toHaveBeenCalledTimes(2);
  });
});

describe('AuthService.accountStates', () => {
  it('answers the state and generation of many accounts at once, leaving out names never taken', async () => {
    const h = await harness();
    await h.accounts.createUser({ username: 'bob', password: PASSWORD, publicKey: ed.spki });
    await h.accounts.createUser({ username: 'carol', password: PASSWORD, publicKey: ed.spki });
    await h.accounts.setDisabled('bob', true);
    await h.accounts.deleteUser('carol');
    await h.accounts.resetPassword('erin', 'a brand new password');
    const states = await h.service.accountStates([
      'alice',
      'bob',
      'carol',
      'erin',
      'erin',
      'nobody',
      'NOT VALID',
    ]);
    expect(states).toEqual([
      { username: 'alice', state: 'active', credentialsVersion: 0 },
      { username: 'bob', state: 'disabled', credentialsVersion: 1 },
      { username: 'carol', state: 'deleted', credentialsVersion: 1 },
      { username: 'erin', state: 'active', credentialsVersion: 1 },
    ]);
    // One query, for the distinct names that can exist.
    expect(h.users.states).toHaveBeenCalledTimes(1);
    expect(h.users.states).toHaveBeenCalledWith(['alice', 'bob', 'carol', 'erin', 'nobody']);
    expect(await h.service.accountStates([])).toEqual([]);
  });
});

describe('AuthService logging', () => {
  it('never logs a password, a hash or key material', async () => {
    const h = await harness();
    const secret = 'a very secret password';
    const key = ed25519Key();
    for (const spy of logged) spy.mockClear();
    await h.service.login(registerCommand({ username: 'newbie', password: secret, key }));
    await h.service.login(loginCommand({ username: 'newbie', password: secret, key }));
    await h.service.login(loginCommand({ username: 'newbie', password: 'wrong secret', key }));
    h.users.seed({
      username: 'broken',
      passwordHash: fakeHash(secret),
      publicKey: Buffer.from('garbage key bytes'),
      fingerprint: 'sha256:00',
    });
    await h.service.login(loginCommand({ username: 'broken', password: secret, key }));
    await h.accounts.deleteUser('newbie');
    const text = logged.flatMap((spy) => spy.mock.calls.flat().map(String)).join('\n');
    expect(text).toContain('newbie'); // it did log something
    for (const forbidden of [
      secret,
      'wrong secret',
      fakeHash(secret),
      toBase64(key.spki),
      'garbage key bytes',
    ]) {
      expect(text).not.toContain(forbidden);
    }
  });
});
