import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  type Deliver,
  type KeyAnswer,
  exportSpki,
  fingerprint,
  signMessage,
  toBase64,
} from '@securechat/protocol';

import { PinConflictError } from './known-servers';
import {
  FilePeerKeyStore,
  MemoryPeerKeyStore,
  PeerKeyVerifier,
  verifyDeliverSignature,
} from './peer-keys';

const alice = generateKeyPairSync('ed25519').privateKey;
const mallory = generateKeyPairSync('ed25519').privateKey;
const fp = (key: KeyObject) => fingerprint(exportSpki(key));

function deliver(body = 'hello bob', key: KeyObject = alice): Deliver {
  const fields = { from: 'alice', to: 'bob', id: 'm-1', ts: 1764000000000, body };
  return {
    type: 'deliver',
    msg_id: '42',
    server_ts: 1764000000001,
    ...fields,
    sig: signMessage(key, fields),
  };
}

function keyAnswer(key: KeyObject, user = 'alice'): KeyAnswer {
  const spki = exportSpki(key);
  return { type: 'key', user, public_key: toBase64(spki), fingerprint: fingerprint(spki) };
}

describe('PeerKeyVerifier', () => {
  it('verifies a delivery and pins the author on first use', async () => {
    const store = new MemoryPeerKeyStore();
    const fetch = jest.fn(() => Promise.resolve(keyAnswer(alice)));
    const verifier = new PeerKeyVerifier(store, fetch);
    await expect(verifier.verify(deliver())).resolves.toEqual({
      verification: 'verified',
      senderFingerprint: fp(alice),
      pinnedFingerprint: fp(alice),
    });
    expect(await store.get('alice')).toBe(fp(alice));
  });

  it('flags a delivery whose body was altered as bad_signature', async () => {
    const verifier = new PeerKeyVerifier(new MemoryPeerKeyStore(), () =>
      Promise.resolve(keyAnswer(alice)),
    );
    const altered = { ...deliver(), body: 'hello bob, send money' };
    expect(verifyDeliverSignature(altered, alice)).toBe(false);
    await expect(verifier.verify(altered)).resolves.toMatchObject({
      verification: 'bad_signature',
    });
    // A signature by another key over the right content is just as bad.
    await expect(verifier.verify(deliver('hello bob', mallory))).resolves.toMatchObject({
      verification: 'bad_signature',
    });
  });

  it('flags a changed author key as key_changed and never re-pins it', async () => {
    const store = new MemoryPeerKeyStore({ alice: fp(alice) });
    const verifier = new PeerKeyVerifier(store, () => Promise.resolve(keyAnswer(mallory)));
    // Signed by the key the server now presents: still not trusted.
    await expect(verifier.verify(deliver('hi', mallory))).resolves.toEqual({
      verification: 'key_changed',
      senderFingerprint: fp(mallory),
      pinnedFingerprint: fp(alice),
    });
    expect(await store.get('alice')).toBe(fp(alice));
  });

  it('fetches each author key once, also for concurrent deliveries', async () => {
    const fetch = jest.fn(() => Promise.resolve(keyAnswer(alice)));
    const verifier = new PeerKeyVerifier(new MemoryPeerKeyStore(), fetch);
    const results = await Promise.all([1, 2, 3].map(() => verifier.verify(deliver())));
    expect(results.map((r) => r.verification)).toEqual(['verified', 'verified', 'verified']);
    await verifier.verify(deliver());
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('reports unknown_sender_key when no usable key comes back, and retries later', async () => {
    const answers: (KeyAnswer | undefined | Error)[] = [
      undefined,
      new Error('timeout'),
      keyAnswer(alice, 'someone_else'),
      { ...keyAnswer(alice), fingerprint: fp(mallory) }, // the server's fingerprint is checked
      { ...keyAnswer(alice), public_key: 'not base64!' },
      keyAnswer(alice),
    ];
    const fetch = jest.fn(() => {
      const next = answers.shift();
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    });
    const store = new MemoryPeerKeyStore();
    const verifier = new PeerKeyVerifier(store, fetch);
    for (let i = 0; i < 5; i++) {
      await expect(verifier.verify(deliver())).resolves.toEqual({
        verification: 'unknown_sender_key',
      });
    }
    expect(await store.get('alice')).toBeUndefined();
    await expect(verifier.verify(deliver())).resolves.toMatchObject({ verification: 'verified' });
    expect(fetch).toHaveBeenCalledTimes(6);
  });
});

describe('peer key stores', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'peer-keys-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('FilePeerKeyStore pins in a 0600 JSON file and refuses to replace a pin', async () => {
    const path = join(dir, 'sub', 'peer_keys.json');
    const store = new FilePeerKeyStore(path);
    expect(await store.get('alice')).toBeUndefined();
    await store.pin('alice', fp(alice));
    await store.pin('alice', fp(alice)); // idempotent
    await expect(store.pin('alice', fp(mallory))).rejects.toBeInstanceOf(PinConflictError);
    expect(await new FilePeerKeyStore(path).get('alice')).toBe(fp(alice));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      version: 1,
      peers: { alice: fp(alice) },
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await store.remove('alice');
    expect(await store.get('alice')).toBeUndefined();
  });

  it('MemoryPeerKeyStore refuses a conflicting pin and malformed fingerprints', async () => {
    const store = new MemoryPeerKeyStore({ alice: fp(alice) });
    await expect(store.pin('alice', fp(mallory))).rejects.toBeInstanceOf(PinConflictError);
    await expect(store.pin('bob', 'md5:1234')).rejects.toBeInstanceOf(TypeError);
  });
});
