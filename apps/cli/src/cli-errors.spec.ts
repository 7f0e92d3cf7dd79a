import {
  ClientClosedError,
  ClientRequestError,
  ConnectionClosedError,
  HandshakeTimeoutError,
  NotSecureChatServerError,
  RequestTimeoutError,
  TrustConfigurationError,
} from '@securechat/client';
import {
  ERROR_CODES,
  type ErrorCode,
  PeerError,
  ProtocolError,
  RecordAuthenticationError,
  ServerIdentityError,
} from '@securechat/protocol';

import { CliError } from './cli.error';
import { exitCodeForPeerCode, toCliError, toConnectError, toSessionEndError } from './cli-errors';
import { EXIT, type ExitCode } from './exit-codes';
import { UsageError } from './usage.error';

const ADDRESS = 'chat.example.org:7777';
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const PASSWORD = 'hunter2-correct-horse';

/** The intended table: a Record over ErrorCode, so a new protocol code fails to compile here. */
const EXPECTED: Record<ErrorCode, ExitCode> = {
  auth_failed: EXIT.authFailed,
  rate_limited: EXIT.authFailed,
  forbidden: EXIT.authFailed,
  conflict: EXIT.authFailed,
  bad_request: EXIT.requestRefused,
  not_found: EXIT.requestRefused,
  too_large: EXIT.requestRefused,
  shutting_down: EXIT.unreachable,
  handshake_timeout: EXIT.unreachable,
  bad_frame: EXIT.failure,
  frame_too_large: EXIT.failure,
  unsupported_protocol: EXIT.failure,
  unexpected_message: EXIT.failure,
  internal: EXIT.failure,
};

/** After login every refusal is the request's (exit 7), not the login's (exit 4). */
const IN_SESSION: Record<ErrorCode, ExitCode> = {
  ...EXPECTED,
  auth_failed: EXIT.requestRefused,
  rate_limited: EXIT.requestRefused,
  forbidden: EXIT.requestRefused,
  conflict: EXIT.requestRefused,
};

describe('exitCodeForPeerCode', () => {
  it('has an intended exit code for every protocol error code', () => {
    for (const code of ERROR_CODES) expect(Object.keys(EXPECTED)).toContain(code);
    expect(Object.keys(EXPECTED)).toHaveLength(ERROR_CODES.length);
  });

  it.each([...ERROR_CODES])('maps %s to its exit code', (code) => {
    expect(exitCodeForPeerCode(code)).toBe(EXPECTED[code]);
  });
});

describe('toCliError', () => {
  it.each([...ERROR_CODES])('maps a PeerError and a ClientRequestError with %s', (code) => {
    const peer = toCliError(new PeerError(code, 'peer says no', 3), ADDRESS);
    expect(peer.exitCode).toBe(EXPECTED[code]);
    expect(peer.message.length).toBeGreaterThan(0);

    const request = toCliError(new ClientRequestError(code, 'peer says no', 'send'), ADDRESS);
    expect(request.exitCode).toBe(IN_SESSION[code]);
    // The CLI prints "securechat send: …": the request is not named twice.
    expect(request.message).not.toMatch(/^send: /);
  });

  it('refuses a request to a room one is not in with exit 7, not as a login refusal', () => {
    const failure = toCliError(
      new ClientRequestError('forbidden', 'not a member of #nosuchroom', 'send'),
      ADDRESS,
    );
    expect(failure.exitCode).toBe(EXIT.requestRefused);
    expect(failure.message).toBe('refused by the server: not a member of #nosuchroom');
  });

  it('explains the login and rate-limit refusals', () => {
    expect(toCliError(new PeerError('auth_failed', 'x'), ADDRESS).message).toBe(
      'login refused: wrong username, password or key',
    );
    expect(toCliError(new PeerError('rate_limited', 'slow down', 42), ADDRESS).message).toContain(
      '42 seconds',
    );
    expect(
      toCliError(new ClientRequestError('not_found', 'no such user', 'send'), ADDRESS).message,
    ).toBe('server error not_found: no such user');
  });

  it("quotes the server's message as one line, its hidden characters visible", () => {
    const message = 'no\u202E\u200B\nsecurechat: all fine\u{E0041}';
    expect(toCliError(new PeerError('forbidden', message), ADDRESS).message).toBe(
      'refused by the server: no<U+202E><U+200B> securechat: all fine<U+E0041>',
    );
    expect(toCliError(new ClientRequestError('not_found', message, 'send'), ADDRESS).message).toBe(
      'server error not_found: no<U+202E><U+200B> securechat: all fine<U+E0041>',
    );
  });

  it('says the server closed the session, with its reason', () => {
    const failure = toCliError(
      new PeerError('shutting_down', 'account disabled by an operator'),
      ADDRESS,
    );
    expect(failure.message).toBe('the server closed the session: account disabled by an operator');
    expect(failure.exitCode).toBe(EXIT.unreachable);
  });

  it('keeps the original error as the cause', () => {
    const original = new PeerError('internal', 'boom');
    expect(toCliError(original, ADDRESS).cause).toBe(original);
  });

  it('returns a CliError unchanged', () => {
    const usage = new UsageError('bad');
    expect(toCliError(usage, ADDRESS)).toBe(usage);
  });

  it('refuses a changed server key with exit 5, showing both fingerprints', () => {
    const failure = toCliError(new ServerIdentityError('server_key_mismatch', B, A), ADDRESS);
    expect(failure.exitCode).toBe(EXIT.serverRefused);
    expect(failure.message).toContain(A);
    expect(failure.message).toContain(B);
    expect(failure.message).toContain(ADDRESS);
  });

  it('explains how to trust an untrusted server key', () => {
    const failure = toCliError(new ServerIdentityError('server_key_untrusted', B), ADDRESS);
    expect(failure.exitCode).toBe(EXIT.serverRefused);
    expect(failure.message).toContain('--fingerprint');
    expect(failure.message).toContain('--trust-on-first-use');
  });

  it('refuses a bad server signature with exit 5, as a handshake that failed verification', () => {
    const failure = toCliError(new ServerIdentityError('bad_server_signature', B), ADDRESS);
    expect(failure.exitCode).toBe(EXIT.serverRefused);
    expect(failure.message).not.toContain('--trust-on-first-use');
    expect(failure.message).toContain('handshake failed verification (possible tampering');
  });

  it('treats a pin that disagrees with --fingerprint as a usage error', () => {
    const failure = toCliError(new TrustConfigurationError(ADDRESS, A, B), ADDRESS);
    expect(failure.exitCode).toBe(EXIT.usage);
    expect(failure.message).toContain(A);
  });

  it.each([
    ['handshake timeout', new HandshakeTimeoutError(10_000)],
    ['request timeout', new RequestTimeoutError('send', 30_000)],
    ['connection closed', new ConnectionClosedError('the server closed the connection')],
    ['client closed', new ClientClosedError()],
  ])('maps a %s to exit 3, naming the server', (_name, error) => {
    const failure = toCliError(error, ADDRESS);
    expect(failure.exitCode).toBe(EXIT.unreachable);
    expect(failure.message).toContain(ADDRESS);
  });

  it.each(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT'])(
    'maps a socket error %s to exit 3',
    (code) => {
      const error = Object.assign(new Error(`connect ${code} 127.0.0.1:7777`), { code });
      const failure = toCliError(error, ADDRESS);
      expect(failure.exitCode).toBe(EXIT.unreachable);
      expect(failure.message).toBe(`cannot reach ${ADDRESS}: ${code}`);
    },
  );

  it('maps anything else to exit 1', () => {
    expect(toCliError(new Error('disk full'), ADDRESS)).toMatchObject({
      exitCode: EXIT.failure,
      message: 'disk full',
    });
    expect(toCliError(Object.assign(new Error('x'), { code: 'EACCES' }), ADDRESS).exitCode).toBe(
      EXIT.failure,
    );
    const odd = toCliError('a string was thrown', ADDRESS);
    expect(odd).toBeInstanceOf(CliError);
    expect(odd.exitCode).toBe(EXIT.failure);
  });

  it('never puts a password carried by the failure into the message', () => {
    const carrying = <T extends Error>(error: T): T =>
      Object.assign(error, {
        password: PASSWORD,
        options: { password: PASSWORD },
        cause: new Error(`login with ${PASSWORD}`),
      });
    const failures = [
      ...ERROR_CODES.map((code) => carrying(new PeerError(code, 'refused'))),
      ...ERROR_CODES.map((code) => carrying(new ClientRequestError(code, 'refused', 'login'))),
      carrying(new ServerIdentityError('server_key_mismatch', A, B)),
      carrying(new ServerIdentityError('server_key_untrusted', A)),
      carrying(new TrustConfigurationError(ADDRESS, A, B)),
      carrying(new HandshakeTimeoutError(1)),
      carrying(new RequestTimeoutError('login', 1)),
      carrying(new ConnectionClosedError('closed')),
      carrying(new ClientClosedError()),
      carrying(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ];
    for (const error of failures) {
      const failure = toCliError(error, ADDRESS);
      expect(failure.message).not.toContain(PASSWORD);
      expect(String(failure)).not.toContain(PASSWORD);
    }
  });
});

describe('toConnectError', () => {
  it.each([
    ['frame_too_large', 'an HTTP answer read as a 1.2 GB frame'],
    ['bad_frame', 'not a frame'],
    ['unexpected_message', 'a first frame that is not a server_hello'],
  ] as const)(
    'calls an address whose first answer is not a server_hello (%s) not a securechat/1 server, exit 3',
    (code, why) => {
      const failure = toConnectError(
        new NotSecureChatServerError(new ProtocolError(code, why)),
        ADDRESS,
      );
      expect(failure.exitCode).toBe(EXIT.unreachable);
      expect(failure.message).toBe(
        `${ADDRESS} is not a securechat/1 server (its answer is not the protocol: ${code})`,
      );
    },
  );

  it('refuses a handshake record that fails to authenticate with exit 5 (possible tampering)', () => {
    const failure = toConnectError(new RecordAuthenticationError('s2c'), ADDRESS);
    expect(failure.exitCode).toBe(EXIT.serverRefused);
    expect(failure.message).toContain('the handshake failed verification');
    expect(failure.message).toContain('possible tampering');
    expect(failure.message).not.toContain('not a securechat/1 server');
  });

  it.each([
    [
      'login_ok names another user',
      new ProtocolError('unexpected_message', 'login_ok names another user'),
    ],
    ['an internal error', new ProtocolError('internal', 'internal error')],
    ['a bad frame', new ProtocolError('bad_frame', 'frame too short')],
  ])('maps %s after a valid server_hello as the protocol error it is, exit 1', (_name, error) => {
    const failure = toConnectError(error, ADDRESS);
    expect(failure.exitCode).toBe(EXIT.failure);
    expect(failure.message).toBe(`${ADDRESS} broke the protocol (${error.code}): ${error.message}`);
    expect(failure.message).not.toContain('not a securechat/1 server');
  });

  it('refuses a bad server signature with exit 5, and is toCliError for the rest', () => {
    const signature = toConnectError(new ServerIdentityError('bad_server_signature', B), ADDRESS);
    expect(signature.exitCode).toBe(EXIT.serverRefused);
    expect(signature.message).toContain('handshake failed verification');
    expect(toConnectError(new PeerError('auth_failed', 'no'), ADDRESS).exitCode).toBe(
      EXIT.authFailed,
    );
    expect(toConnectError(new HandshakeTimeoutError(1), ADDRESS).exitCode).toBe(EXIT.unreachable);
  });
});

describe('toSessionEndError', () => {
  const refused = new PeerError('auth_failed', 'login failed');

  it('explains a login refused after the server closed the session', () => {
    const lost = new PeerError('shutting_down', 'account disabled by an operator');
    const failure = toSessionEndError(refused, ADDRESS, lost);
    expect(failure.exitCode).toBe(EXIT.authFailed);
    expect(failure.message).toBe(
      'the server closed the session: account disabled by an operator; logging in again was ' +
        'refused (auth_failed): the account may have been disabled or its credentials changed',
    );
    expect(failure.message).not.toContain('wrong username, password or key');
  });

  it('names a lost connection that was not the server closing', () => {
    const failure = toSessionEndError(refused, ADDRESS, new Error('read ECONNRESET'));
    expect(failure.message).toMatch(/^the server closed the session \(read ECONNRESET\);/);
  });

  it('is toCliError for anything else', () => {
    expect(toSessionEndError(refused, ADDRESS, undefined).message).toBe(
      'login refused: wrong username, password or key',
    );
    const other = new PeerError('internal', 'boom');
    expect(toSessionEndError(other, ADDRESS, new Error('x')).message).toBe(
      toCliError(other, ADDRESS).message,
    );
  });
});
