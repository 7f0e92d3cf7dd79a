/** AuthClient: what a login sends and which answers it believes; the accounts' recheck. */
import { type ClientProxy } from '@nestjs/microservices';
import {
  ClockRepository,
  EphemeralLoginSealKeys,
  FileLoginSealPublicKeyRepository,
  type LoginCommand,
  LoginReplyRejectedError,
  LoginSealer,
  LoginSealKeyUnavailableError,
  openLogin,
  tagResult,
} from '@securechat/core';
import { of } from 'rxjs';

import { AuthClient } from './service-clients';

const command: LoginCommand = {
  action: 'login',
  username: 'alice',
  password: 'correct horse battery staple',
  signature: Buffer.alloc(64, 1).toString('base64'),
  h2: Buffer.alloc(32, 2).toString('base64'),
  sourceAddress: '192.0.2.1',
};

/** A transport that records what it is given and answers with `answer(payload)`. */
function proxy(answer: (payload: unknown) => unknown) {
  const sent: { pattern: string; payload: unknown }[] = [];
  const fake = {
    send: (pattern: string, payload: unknown) => {
      sent.push({ pattern, payload });
      return of(answer(JSON.parse(JSON.stringify(payload))));
    },
  };
  return { sent, proxy: fake as unknown as ClientProxy };
}

describe('AuthClient.login', () => {
  const keys = new EphemeralLoginSealKeys();
  const sealer = new LoginSealer(keys, new ClockRepository());
  /** Auth as it answers: opens the command and tags a success. */
  const auth = (payload: unknown) => {
    const opened = openLogin(payload, keys.load(), Date.now());
    if (!opened.ok) return { ok: false, code: 'bad_request' };
    return tagResult(opened.opened, {
      ok: true,
      username: 'alice',
      publicKey: 'AAAA',
      credentialsVersion: 2,
    });
  };

  it('sends the login sealed: no password, signature or H2 in what the transport gets', async () => {
    const { sent, proxy: transport } = proxy(auth);
    const client = new AuthClient(transport, sealer);
    await expect(client.login(command)).resolves.toEqual({
      ok: true,
      username: 'alice',
      publicKey: 'AAAA',
      credentialsVersion: 2,
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.pattern).toBe('auth.login');
    const wire = JSON.stringify(sent[0]!.payload);
    for (const secret of [command.password, command.signature, command.h2]) {
      expect(wire).not.toContain(secret);
    }
  });

  it('refuses a success that auth did not tag (a reply forged on the transport)', async () => {
    const { proxy: transport } = proxy(() => ({ ok: true, username: 'alice', publicKey: 'AAAA' }));
    await expect(new AuthClient(transport, sealer).login(command)).rejects.toBeInstanceOf(
      LoginReplyRejectedError,
    );
  });

  it('passes refusals on', async () => {
    const { proxy: transport } = proxy(() => ({ ok: false, code: 'rate_limited', retryAfter: 3 }));
    await expect(new AuthClient(transport, sealer).login(command)).resolves.toEqual({
      ok: false,
      code: 'rate_limited',
      retryAfter: 3,
    });
  });

  it('sends nothing while auth’s public key cannot be read', async () => {
    const { sent, proxy: transport } = proxy(auth);
    const missing = new LoginSealer(
      new FileLoginSealPublicKeyRepository('/nonexistent/login-seal.pub.pem'),
      new ClockRepository(),
    );
    await expect(new AuthClient(transport, missing).login(command)).rejects.toBeInstanceOf(
      LoginSealKeyUnavailableError,
    );
    expect(sent).toEqual([]);
  });
});

describe('AuthClient.accountStates', () => {
  it('asks for a batch of names in one request and hands the answer on', async () => {
    const answer = {
      ok: true,
      accounts: [{ username: 'alice', state: 'disabled', credentialsVersion: 3 }],
    };
    const { sent, proxy: transport } = proxy(() => answer);
    const client = new AuthClient(
      transport,
      new LoginSealer(new EphemeralLoginSealKeys(), new ClockRepository()),
    );
    await expect(client.accountStates(['alice', 'bob'])).resolves.toEqual(answer);
    expect(sent).toEqual([
      { pattern: 'auth.account_states', payload: { usernames: ['alice', 'bob'] } },
    ]);
  });
});
