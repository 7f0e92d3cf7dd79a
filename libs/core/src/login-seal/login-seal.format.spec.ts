/**
 * The login seal's format: round trip, every clear member bound, freshness, wrong keys, and
 * the tag that makes auth's `ok` unforgeable for anyone else on the reply channel.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';

import { type LoginCommand, type SealedLoginCommand } from '../contracts/auth.contracts';
import {
  acceptReply,
  LOGIN_SEAL_MAX_AGE_MS,
  LoginReplyRejectedError,
  type LoginSealKeyPair,
  openLogin,
  rawX25519,
  sealLogin,
  tagResult,
  x25519FromRaw,
} from './login-seal.format';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

function keyPair(): LoginSealKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawX25519(publicKey) };
}

const auth = keyPair();

const login: LoginCommand = {
  action: 'login',
  username: 'alice',
  password: 'correct horse battery staple',
  signature: Buffer.alloc(64, 7).toString('base64'),
  h2: Buffer.alloc(32, 9).toString('base64'),
  sourceAddress: '192.0.2.1',
};

const register: LoginCommand = {
  ...login,
  action: 'register',
  publicKey: Buffer.alloc(44, 3).toString('base64'),
};

function opened(envelope: unknown, keys: LoginSealKeyPair = auth, now = NOW) {
  return openLogin(envelope, keys, now);
}

describe('sealLogin / openLogin', () => {
  it.each([
    ['a login', login],
    ['a register', register],
    ['an empty password and a unicode username', { ...login, username: 'zoë', password: '' }],
  ])('round-trips %s', (_case, command) => {
    const sealed = sealLogin(command, auth.publicKey, { now: NOW });
    const result = opened(sealed.envelope);
    expect(result).toEqual({
      ok: true,
      opened: { command, id: sealed.envelope.id, ts: NOW, replyKey: sealed.replyKey },
    });
  });

  it('puts no secret in clear: not the password, the signature, H2 or the key', () => {
    const sealed = sealLogin(register, auth.publicKey, { now: NOW });
    const text = JSON.stringify(sealed.envelope);
    for (const secret of [
      register.password,
      register.signature,
      register.h2,
      register.publicKey!,
      Buffer.from(register.password).toString('base64'),
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(sealed.envelope).toMatchObject({
      v: 1,
      ts: NOW,
      action: 'register',
      username: 'alice',
      sourceAddress: '192.0.2.1',
    });
    expect(sealed.envelope.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(sealed.envelope.epk, 'base64')).toHaveLength(32);
  });

  it('uses a fresh ephemeral key and id for every command', () => {
    const a = sealLogin(login, auth.publicKey, { now: NOW }).envelope;
    const b = sealLogin(login, auth.publicKey, { now: NOW }).envelope;
    expect(a.id).not.toBe(b.id);
    expect(a.epk).not.toBe(b.epk);
    expect(a.ct).not.toBe(b.ct);
  });

  describe('refuses a command with a member changed', () => {
    const sealed = sealLogin(register, auth.publicKey, { now: NOW });
    const other = sealLogin(login, auth.publicKey, { now: NOW }).envelope;
    const flip = (base64: string, index: number): string => {
      const bytes = Buffer.from(base64, 'base64');
      bytes[(index + bytes.length) % bytes.length]! ^= 0x01;
      return bytes.toString('base64');
    };
    const tampered: [string, Partial<SealedLoginCommand>][] = [
      ['id', { id: other.id }],
      ['ts', { ts: NOW + 1 }],
      ['action', { action: 'login' }],
      ['username', { username: 'mallory' }],
      ['username (case)', { username: 'Alice' }],
      ['sourceAddress', { sourceAddress: '192.0.2.2' }],
      ['epk (another key)', { epk: other.epk }],
      ['epk (a bit)', { epk: flip(sealed.envelope.epk, 5) }],
      ['ct (first byte)', { ct: flip(sealed.envelope.ct, 0) }],
      ['ct (tag)', { ct: flip(sealed.envelope.ct, -1) }],
      ['ct (from another command)', { ct: other.ct }],
    ];
    it.each(tampered)('%s → undecryptable', (_member, change) => {
      expect(opened({ ...sealed.envelope, ...change })).toEqual({
        ok: false,
        reason: 'undecryptable',
      });
    });

    it('ct truncated or extended → refused', () => {
      const ct = Buffer.from(sealed.envelope.ct, 'base64');
      for (const changed of [
        ct.subarray(0, ct.length - 1),
        Buffer.concat([ct, Buffer.from([0])]),
      ]) {
        expect(opened({ ...sealed.envelope, ct: changed.toString('base64') })).toMatchObject({
          ok: false,
        });
      }
    });
  });

  it('refuses a command sealed to another key', () => {
    const sealed = sealLogin(login, keyPair().publicKey, { now: NOW });
    expect(opened(sealed.envelope)).toEqual({ ok: false, reason: 'undecryptable' });
  });

  it('refuses to open with the wrong private key', () => {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    const wrong = { ...keyPair(), publicKey: auth.publicKey };
    expect(opened(sealed.envelope, wrong)).toEqual({ ok: false, reason: 'undecryptable' });
  });

  it('refuses a low-order ephemeral point (all-zero shared secret)', () => {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    for (const point of [Buffer.alloc(32), Buffer.from([1, ...Buffer.alloc(31)])]) {
      expect(opened({ ...sealed.envelope, epk: point.toString('base64') })).toEqual({
        ok: false,
        reason: 'undecryptable',
      });
    }
  });

  it.each([
    ['a minute and a millisecond old', NOW + LOGIN_SEAL_MAX_AGE_MS + 1],
    ['a minute and a millisecond early', NOW - LOGIN_SEAL_MAX_AGE_MS - 1],
    ['a day old', NOW + 86_400_000],
  ])('refuses a command %s as stale', (_case, now) => {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    expect(opened(sealed.envelope, auth, now)).toEqual({ ok: false, reason: 'stale' });
  });

  it('accepts a command at the edges of the window', () => {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    expect(opened(sealed.envelope, auth, NOW + LOGIN_SEAL_MAX_AGE_MS).ok).toBe(true);
    expect(opened(sealed.envelope, auth, NOW - LOGIN_SEAL_MAX_AGE_MS).ok).toBe(true);
  });

  it('refuses another version', () => {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    expect(opened({ ...sealed.envelope, v: 2 })).toEqual({ ok: false, reason: 'version' });
  });

  const valid = sealLogin(login, auth.publicKey, { now: NOW }).envelope;
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a plain LoginCommand', login],
    ['a missing member', (({ ct: _ct, ...rest }) => rest)(valid)],
    ['an extra member', { ...valid, password: 'x' }],
    ['an unknown action', { ...valid, action: 'reset' }],
    ['a short id', { ...valid, id: 'abc' }],
    ['a fractional ts', { ...valid, ts: NOW + 0.5 }],
    ['a string ts', { ...valid, ts: String(NOW) }],
    ['non-canonical base64 in epk', { ...valid, epk: valid.epk.replace(/=$/, '') }],
    ['an epk of 31 bytes', { ...valid, epk: Buffer.alloc(31, 1).toString('base64') }],
    ['a ct shorter than a tag', { ...valid, ct: Buffer.alloc(15).toString('base64') }],
  ])('refuses %s as malformed', (_case, payload) => {
    expect(opened(payload)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('is deterministic for a given ephemeral key and id (a known answer)', () => {
    const ephemeral = generateKeyPairSync('x25519').privateKey;
    const options = { now: NOW, ephemeral, id: 'AAAAAAAAAAAAAAAAAAAAAA' };
    const a = sealLogin(login, auth.publicKey, options);
    const b = sealLogin(login, auth.publicKey, options);
    expect(a).toEqual(b);
    expect(a.envelope.epk).toBe(rawX25519(createPublicKey(ephemeral)).toString('base64'));
  });
});

describe('x25519 raw keys', () => {
  it('round-trips a public key through its raw bytes', () => {
    const { publicKey } = generateKeyPairSync('x25519');
    const raw = rawX25519(publicKey);
    expect(raw).toHaveLength(32);
    expect(rawX25519(x25519FromRaw(raw))).toEqual(raw);
  });

  it('refuses other keys and lengths', () => {
    expect(() => rawX25519(generateKeyPairSync('ed25519').publicKey)).toThrow();
    expect(() => x25519FromRaw(Buffer.alloc(31))).toThrow();
  });
});

describe('the answer', () => {
  const user = { ok: true as const, username: 'alice', publicKey: 'AAAA' };

  function roundTrip() {
    const sealed = sealLogin(login, auth.publicKey, { now: NOW });
    const result = opened(sealed.envelope);
    if (!result.ok) throw new Error('did not open');
    return { sealed, opened: result.opened };
  }

  it('accepts auth’s tagged success, and hands on the plain result', () => {
    const { sealed, opened: o } = roundTrip();
    expect(acceptReply(sealed, tagResult(o, user))).toEqual(user);
  });

  it('covers the credential generation with the tag, and still accepts an answer without one', () => {
    const { sealed, opened: o } = roundTrip();
    const versioned = { ...user, credentialsVersion: 7 };
    const tagged = tagResult(o, versioned);
    expect(acceptReply(sealed, tagged)).toEqual(versioned);
    // An auth service that does not send it yet: tagged as before, accepted without it.
    expect(acceptReply(sealed, tagResult(o, user))).toEqual(user);
    // Whoever alters, strips or adds it on the way breaks the tag.
    for (const forged of [
      { ...tagged, credentialsVersion: 8 },
      { ...tagged, credentialsVersion: undefined },
      { ...tagResult(o, user), credentialsVersion: 7 },
    ]) {
      expect(() => acceptReply(sealed, forged)).toThrow(LoginReplyRejectedError);
    }
    for (const malformed of [-1, 1.5, '7', Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => acceptReply(sealed, { ...tagged, credentialsVersion: malformed })).toThrow(
        'malformed',
      );
    }
  });

  it('passes refusals through untagged', () => {
    const { sealed, opened: o } = roundTrip();
    const refusal = { ok: false as const, code: 'rate_limited' as const, retryAfter: 4 };
    expect(tagResult(o, refusal)).toEqual(refusal);
    expect(acceptReply(sealed, refusal)).toEqual(refusal);
    expect(acceptReply(sealed, { ok: false, code: 'bad_request' })).toEqual({
      ok: false,
      code: 'bad_request',
    });
  });

  it.each([
    ['an untagged success', () => user],
    ['a success tagged for another command', () => tagResult(roundTrip().opened, user)],
    [
      'a success with another key than tagged',
      (o: ReturnType<typeof roundTrip>['opened']) => ({
        ...tagResult(o, user),
        publicKey: 'BBBB',
      }),
    ],
    [
      'a success for another user than tagged',
      (o: ReturnType<typeof roundTrip>['opened']) => ({
        ...tagResult(o, user),
        username: 'mallory',
      }),
    ],
    ['a non-base64 tag', () => ({ ...user, tag: '!!!' })],
    ['junk', () => 'ok'],
    ['null', () => null],
    ['an unknown refusal code', () => ({ ok: false, code: 'welcome' })],
  ])('refuses %s', (_case, make) => {
    const { sealed, opened: o } = roundTrip();
    expect(() => acceptReply(sealed, make(o))).toThrow(LoginReplyRejectedError);
  });
});
