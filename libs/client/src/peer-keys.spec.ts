import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  KeyAnswerError,
  MemoryPeerKeyStore,
  PeerKeyVerifier,
  trustPeerKey,
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

describe('PeerKeyVerifier after the pin was replaced', () => {
  it('verifies the new key once the user trusted it, without a restart', async () => {
    const store = new MemoryPeerKeyStore({ alice: fp(alice) });
    const verifier = new PeerKeyVerifier(store, () => Promise.resolve(keyAnswer(mallory)));
    await expect(verifier.verify(deliver('hi', mallory))).resolves.toMatchObject({
      verification: 'key_changed',
    });
    await store.replace('alice', fp(mallory)); // e.g. `securechat trust alice` elsewhere
    await expect(verifier.verify(deliver('hi', mallory))).resolves.toEqual({
      verification: 'verified',
      senderFingerprint: fp(mallory),
      pinnedFingerprint: fp(mallory),
    });
  });

  it('drops a cached key whose pin was replaced (it reported bad_signature)', async () => {
    let current = alice;
    const store = new MemoryPeerKeyStore();
    const verifier = new PeerKeyVerifier(store, () => Promise.resolve(keyAnswer(current)));
    await expect(verifier.verify(deliver())).resolves.toMatchObject({ verification: 'verified' });
    current = mallory; // rotated by an operator; the old key is cached
    await expect(verifier.verify(deliver('hi', mallory))).resolves.toMatchObject({
      verification: 'bad_signature',
    });
    await store.replace('alice', fp(mallory));
    await expect(verifier.verify(deliver('hi', mallory))).resolves.toMatchObject({
      verification: 'verified',
    });
  });
});

describe('trustPeerKey', () => {
  const withPin = () => new MemoryPeerKeyStore({ alice: fp(alice) });

  it('pins the key the server gives now over the old pin, reporting both', async () => {
    const store = withPin();
    const confirm = jest.fn(() => true);
    const result = await trustPeerKey({
      username: 'alice',
      store,
      fetchKey: () => Promise.resolve(keyAnswer(mallory)),
      confirm,
    });
    const change = { username: 'alice', pinned: fp(alice), offered: fp(mallory) };
    expect(result).toEqual({ status: 'trusted', change });
    expect(confirm).toHaveBeenCalledWith(change);
    expect(await store.get('alice')).toBe(fp(mallory));
  });

  it('keeps the old pin when the user says no', async () => {
    const store = withPin();
    const result = await trustPeerKey({
      username: 'alice',
      store,
      fetchKey: () => Promise.resolve(keyAnswer(mallory)),
      confirm: () => false,
    });
    expect(result.status).toBe('declined');
    expect(await store.get('alice')).toBe(fp(alice));
  });

  it('with an expected fingerprint accepts only that key, without asking', async () => {
    const confirm = jest.fn(() => false);
    const store = withPin();
    const fetchKey = () => Promise.resolve(keyAnswer(mallory));
    const wrong = await trustPeerKey({
      username: 'alice',
      store,
      fetchKey,
      confirm,
      expected: fp(alice),
    });
    expect(wrong).toMatchObject({ status: 'mismatch', expected: fp(alice) });
    expect(await store.get('alice')).toBe(fp(alice));
    const right = await trustPeerKey({
      username: 'alice',
      store,
      fetchKey,
      confirm,
      expected: fp(mallory),
    });
    expect(right.status).toBe('trusted');
    expect(confirm).not.toHaveBeenCalled();
    expect(await store.get('alice')).toBe(fp(mallory));
  });

  it('writes nothing when the pin already is the key', async () => {
    const store = withPin();
    const replace = jest.spyOn(store, 'replace');
    const result = await trustPeerKey({
      username: 'alice',
      store,
      fetchKey: () => Promise.resolve(keyAnswer(alice)),
    });
    expect(result.status).toBe('unchanged');
    expect(replace).not.toHaveBeenCalled();
  });

  it('refuses an answer that does not prove a key for the user asked about', async () => {
    for (const answer of [
      keyAnswer(mallory, 'bob'),
      { ...keyAnswer(mallory), fingerprint: fp(alice) },
      { ...keyAnswer(mallory), public_key: 'AAAA' },
    ]) {
      const store = withPin();
      await expect(
        trustPeerKey({ username: 'alice', store, fetchKey: () => Promise.resolve(answer) }),
      ).rejects.toBeInstanceOf(KeyAnswerError);
      expect(await store.get('alice')).toBe(fp(alice));
    }
  });
});

describe('peer key stores', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'peer-keys-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const serverA = fp(generateKeyPairSync('ed25519').privateKey);
  const serverB = fp(generateKeyPairSync('ed25519').privateKey);

  it('FilePeerKeyStore pins in a 0600 JSON file and refuses to replace a pin', async () => {
    const path = join(dir, 'sub', 'peer_keys.json');
    const store = new FilePeerKeyStore(path, serverA);
    expect(await store.get('alice')).toBeUndefined();
    await store.pin('alice', fp(alice));
    await store.pin('alice', fp(alice)); // idempotent
    await expect(store.pin('alice', fp(mallory))).rejects.toBeInstanceOf(PinConflictError);
    expect(await new FilePeerKeyStore(path, serverA).get('alice')).toBe(fp(alice));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      version: 2,
      servers: { [serverA]: { alice: fp(alice) } },
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await store.remove('alice');
    expect(await store.get('alice')).toBeUndefined();
  });

  it('keeps pins per server: the same name on another server is another person', async () => {
    const path = join(dir, 'peer_keys.json');
    const onA = new FilePeerKeyStore(path, serverA);
    const onB = new FilePeerKeyStore(path, () => Promise.resolve(serverB));
    await onA.pin('dave', fp(alice));
    expect(await onB.get('dave')).toBeUndefined();
    await onB.pin('dave', fp(mallory)); // no conflict: a different dave
    expect(await onA.get('dave')).toBe(fp(alice));
    expect(await onB.get('dave')).toBe(fp(mallory));
    await onB.remove('dave');
    expect(await onA.get('dave')).toBe(fp(alice));
  });

  it('refuses to read or pin before the server is identified', async () => {
    const store = new FilePeerKeyStore(join(dir, 'peer_keys.json'), () => undefined);
    await expect(store.get('alice')).rejects.toThrow('not identified');
    await expect(store.pin('alice', fp(alice))).rejects.toThrow('not identified');
    expect(() => new FilePeerKeyStore(join(dir, 'x.json'), 'host:7777')).toThrow(TypeError);
  });

  it('keeps the pins of a file from before per-server pins for every server', async () => {
    const path = join(dir, 'peer_keys.json');
    writeFileSync(path, JSON.stringify({ version: 1, peers: { bob: fp(alice), eve: 'md5:x' } }));
    const onB = new FilePeerKeyStore(path, serverB);
    expect(await onB.get('bob')).toBe(fp(alice));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      version: 2,
      servers: { [serverB]: { bob: fp(alice) } },
      legacy: { bob: fp(alice) },
    });
    // The first server used need not be the one the pins came from: the real one keeps them,
    // so a key it serves for bob now is compared with the old pin, not pinned silently.
    const onA = new FilePeerKeyStore(path, serverA);
    expect(await onA.get('bob')).toBe(fp(alice));
    await expect(onA.pin('bob', fp(mallory))).rejects.toBeInstanceOf(PinConflictError);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      version: 2,
      servers: { [serverA]: { bob: fp(alice) }, [serverB]: { bob: fp(alice) } },
      legacy: { bob: fp(alice) },
    });
  });

  it('copies legacy pins to a server only once, and never deletes them', async () => {
    const path = join(dir, 'peer_keys.json');
    writeFileSync(path, JSON.stringify({ peers: { bob: fp(alice), carol: fp(alice) } }));
    const onA = new FilePeerKeyStore(path, serverA);
    await onA.replace('bob', fp(mallory));
    await onA.remove('carol');
    // A server already listed is not touched again: what it changed or forgot stays so.
    expect(await onA.get('bob')).toBe(fp(mallory));
    expect(await onA.get('carol')).toBeUndefined();
    await onA.remove('bob');
    expect(await new FilePeerKeyStore(path, serverA).get('bob')).toBeUndefined();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      version: 2,
      servers: { [serverA]: {} },
      legacy: { bob: fp(alice), carol: fp(alice) },
    });
    // Another server still starts from the legacy pins.
    expect(await new FilePeerKeyStore(path, serverB).get('carol')).toBe(fp(alice));
  });

  it('answers a read from the legacy pins when the migration cannot be written', async () => {
    // A name too long for the temporary file beside it (ENAMETOOLONG): the write fails, the
    // read does not — unlike a read-only directory, this holds when the tests run as root.
    const path = join(dir, `${'p'.repeat(240)}.json`);
    const legacyFile = JSON.stringify({ version: 1, peers: { bob: fp(alice) } });
    writeFileSync(path, legacyFile);
    const errors: unknown[] = [];
    const store = new FilePeerKeyStore(path, serverA, {
      onMigrationWriteError: (error) => errors.push(error),
    });
    expect(await store.get('bob')).toBe(fp(alice));
    expect(await store.get('carol')).toBeUndefined();
    expect(errors).toHaveLength(2);
    expect(readFileSync(path, 'utf8')).toBe(legacyFile);
    // Without the hook, nothing is reported; a change that cannot be written still fails.
    const quiet = new FilePeerKeyStore(path, serverB);
    expect(await quiet.get('bob')).toBe(fp(alice));
    await expect(quiet.pin('carol', fp(alice))).rejects.toThrow();
  });

  it('refuses a legacy section it does not understand', async () => {
    const path = join(dir, 'peer_keys.json');
    writeFileSync(path, JSON.stringify({ version: 2, servers: {}, legacy: ['bob'] }));
    await expect(new FilePeerKeyStore(path, serverA).get('bob')).rejects.toThrow(
      'not a peer key file',
    );
  });

  it('refuses a file it does not understand instead of starting over', async () => {
    const path = join(dir, 'peer_keys.json');
    writeFileSync(path, JSON.stringify({ version: 3, servers: {} }));
    await expect(new FilePeerKeyStore(path, serverA).get('bob')).rejects.toThrow(
      'not a peer key file',
    );
  });

  it('replace pins over an old pin and hands the old one back', async () => {
    for (const store of [
      new FilePeerKeyStore(join(dir, 'peer_keys.json'), serverA),
      new MemoryPeerKeyStore(),
    ]) {
      expect(await store.replace('bob', fp(alice))).toBeUndefined();
      expect(await store.replace('bob', fp(mallory))).toBe(fp(alice));
      expect(await store.get('bob')).toBe(fp(mallory));
      await expect(store.replace('bob', 'md5:1')).rejects.toBeInstanceOf(TypeError);
    }
  });

  it('MemoryPeerKeyStore refuses a conflicting pin and malformed fingerprints', async () => {
    const store = new MemoryPeerKeyStore({ alice: fp(alice) });
    await expect(store.pin('alice', fp(mallory))).rejects.toBeInstanceOf(PinConflictError);
    await expect(store.pin('bob', 'md5:1234')).rejects.toBeInstanceOf(TypeError);
  });
});
