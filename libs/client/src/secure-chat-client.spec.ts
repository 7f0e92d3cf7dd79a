import { generateKeyPairSync } from 'node:crypto';

import { BoundedLru } from './bounded-lru';
import { ClientClosedError, TrustConfigurationError } from './client-errors';
import { type SecureChatClientOptions } from './client-options';
import { MemoryKnownServersStore } from './known-servers';
import { MemoryPeerKeyStore } from './peer-keys';
import { SecureChatClient } from './secure-chat-client';

const SECRET = 'a very secret password';

function options(overrides: Partial<SecureChatClientOptions> = {}): SecureChatClientOptions {
  return {
    host: '127.0.0.1',
    port: 1,
    username: 'alice',
    password: SECRET,
    privateKey: generateKeyPairSync('ed25519').privateKey,
    trust: { store: new MemoryKnownServersStore(), policy: 'tofu' },
    peerKeys: new MemoryPeerKeyStore(),
    ...overrides,
  };
}

describe('SecureChatClient without a server', () => {
  it('validates its options without ever quoting the password', () => {
    const password = 'short!';
    const error = (() => {
      try {
        return new SecureChatClient(options({ password }));
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toContain(password);
    expect(() => new SecureChatClient(options({ username: 'Not Valid' }))).toThrow(
      /username must match/,
    );
    const badPin = { store: new MemoryKnownServersStore(), policy: { fingerprint: SECRET } };
    expect(() => new SecureChatClient(options({ trust: badPin }))).toThrow(/sha256/);
  });

  it('refuses requests before connect()', async () => {
    const client = new SecureChatClient(options());
    expect(client.state).toBe('idle');
    await expect(client.send('bob', 'hi')).rejects.toBeInstanceOf(ClientClosedError);
    await expect(client.ping()).rejects.toBeInstanceOf(ClientClosedError);
  });

  it('refuses to choose between a configured fingerprint and a different pin', async () => {
    const A = `sha256:${'a'.repeat(64)}`;
    const B = `sha256:${'b'.repeat(64)}`;
    const client = new SecureChatClient(
      options({
        trust: {
          store: new MemoryKnownServersStore({ '127.0.0.1:1': A }),
          policy: { fingerprint: B },
        },
      }),
    );
    const states: string[] = [];
    client.on('state', (s) => states.push(s));
    await expect(client.connect()).rejects.toBeInstanceOf(TrustConfigurationError);
    expect(states).toEqual(['connecting', 'closed']);
    expect(await client.close()).toEqual({
      viewsMatch: false,
      signatureValid: false,
      receiptReceived: false,
    });
  });

  it('reports a refused connection from connect() and ends closed', async () => {
    const client = new SecureChatClient(options({ port: 9 })); // discard port: nothing listens
    await expect(client.connect()).rejects.toThrow();
    expect(client.state).toBe('closed');
  });
});

describe('BoundedLru', () => {
  it('evicts the least recently used entry beyond its capacity', () => {
    const lru = new BoundedLru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect([lru.has('a'), lru.has('b'), lru.has('c')]).toEqual([true, false, true]);
    expect(lru.size).toBe(2);
    expect(() => new BoundedLru(0)).toThrow(RangeError);
  });
});
