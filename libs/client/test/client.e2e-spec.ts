/**
 * SecureChatClient against the embedded server as a real process, over real sockets: server
 * pinning (docs/PROTOCOL.md §4.3), reconnect with redelivery and duplicate dropping
 * (docs/PROTOCOL.md §7.4), author-key pinning (docs/PROTOCOL.md §7.3), and the orderly close with a
 * transcript that verifies offline (docs/PROTOCOL.md §8.4, §8.5).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  type ClientState,
  FileKnownServersStore,
  FileTranscriptSink,
  type IncomingMessage,
  MemoryKnownServersStore,
  MemoryPeerKeyStore,
  PendingLimitError,
  type PeerKeyStore,
  SecureChatClient,
  type SecureChatClientOptions,
  type TranscriptSink,
  readTranscriptFile,
  verifyTranscriptFile,
} from '@securechat/client';
import { PeerError, ServerIdentityError, exportSpki, fingerprint } from '@securechat/protocol';

import {
  type RunningServer,
  removeDataDir,
  startEmbeddedServer,
} from '../../../test/support/embedded-server';
import { eventually } from '../../core/test/eventually';
import { TcpProxy } from '../../../test/support/tcp-proxy';

jest.setTimeout(40_000);

const PASSWORD = 'correct horse battery staple';
const WRONG_PIN = `sha256:${'0'.repeat(64)}`;

describe('SecureChatClient against the embedded server', () => {
  let server: RunningServer;
  let dir: string;
  let counter = 0;
  const clients: SecureChatClient[] = [];
  const keys = new Map<string, KeyObject>();

  beforeAll(async () => {
    // Two failures before throttling, so that a login attempt that wrongly reached the server
    // in the pinning test would show up as rate_limited.
    server = await startEmbeddedServer({ ALLOW_REGISTRATION: 'true', THROTTLE_USER_FAILURES: '2' });
    dir = mkdtempSync(join(tmpdir(), 'securechat-client-e2e-'));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.filter((c) => c.state !== 'closed').map((c) => c.close()));
    await server?.stop();
    if (server) removeDataDir(server);
    rmSync(dir, { recursive: true, force: true });
  });

  function makeClient(
    username: string,
    overrides: Partial<SecureChatClientOptions> = {},
  ): SecureChatClient {
    const client = new SecureChatClient({
      host: server.host,
      port: server.port,
      username,
      password: PASSWORD,
      privateKey: keys.get(username)!,
      trust: { store: new MemoryKnownServersStore(), policy: { fingerprint: server.fingerprint } },
      peerKeys: new MemoryPeerKeyStore(),
      reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 20 },
      requestTimeoutMs: 10_000,
      ...overrides,
    });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  /** Registers a new user through the client itself and keeps it connected. */
  async function newUser(
    prefix: string,
    overrides: Partial<SecureChatClientOptions> = {},
  ): Promise<SecureChatClient> {
    const username = `${prefix}${counter++}`;
    keys.set(username, generateKeyPairSync('ed25519').privateKey);
    const client = makeClient(username, { action: 'register', ...overrides });
    await client.connect();
    return client;
  }

  function collect(client: SecureChatClient): IncomingMessage[] {
    const received: IncomingMessage[] = [];
    client.on('message', (m) => received.push(m));
    return received;
  }

  it('pins the server on first contact with tofu, in a 0600 known_servers file', async () => {
    const path = join(dir, 'known_servers');
    writeFileSync(path, '# pinned servers\n', { mode: 0o600 });
    const store = new FileKnownServersStore(path);
    const alice = await newUser('tofu', { trust: { store, policy: 'tofu' } });
    const address = `${server.host}:${server.port}`;
    expect(alice.address).toBe(address);
    expect(await store.get(address)).toBe(server.fingerprint);
    expect(readFileSync(path, 'utf8')).toBe(`# pinned servers\n${address} ${server.fingerprint}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await alice.close();

    // The next contact uses the pin: an 'ask' policy is not consulted any more.
    const ask = jest.fn(() => false);
    const again = makeClient(alice.username, { trust: { store, policy: { ask } } });
    await again.connect();
    expect(ask).not.toHaveBeenCalled();
    await again.close();
  });

  it('refuses a server whose key differs from the pin before any login reaches it', async () => {
    const user = await newUser('pinned');
    await user.close();
    const address = `${server.host}:${server.port}`;
    const store = new MemoryKnownServersStore({ [address]: WRONG_PIN });
    for (let i = 0; i < 3; i++) {
      // A wrong password too: had the login record been sent, the server would count it.
      const client = makeClient(user.username, {
        password: `wrong password ${i}`,
        trust: { store, policy: 'tofu' },
      });
      const error = await client.connect().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServerIdentityError);
      expect(error).toMatchObject({
        reason: 'server_key_mismatch',
        expectedFingerprint: WRONG_PIN,
        presentedFingerprint: server.fingerprint,
      });
      expect((error as Error).message).not.toContain('wrong password');
      expect(client.state).toBe('closed');
    }
    expect(await store.get(address)).toBe(WRONG_PIN); // never replaced silently

    // With THROTTLE_USER_FAILURES=2, three counted failures would make this rate_limited.
    const good = makeClient(user.username);
    await expect(good.connect()).resolves.toMatchObject({ username: user.username });
    await good.close();

    // Control: a wrong password with the right pin does reach the server.
    const wrong = makeClient(user.username, { password: 'not the password' });
    await expect(wrong.connect()).rejects.toBeInstanceOf(PeerError);
  });

  it('reconnects after a lost connection; every message reaches the application once', async () => {
    // Bob reaches the server through a proxy the test can cut, as a network failure would.
    const proxy = await TcpProxy.start(server.host, server.port);
    const alice = await newUser('ra');
    const bob = await newUser('rb', { port: proxy.port });
    const aliceInbox = collect(alice);
    const bobInbox: IncomingMessage[] = [];
    const states: ClientState[] = [];
    bob.on('state', (s) => {
      states.push(s);
      if (s === 'reconnecting') proxy.restore();
    });
    const duplicates: string[] = [];
    bob.on('duplicate', (d) => duplicates.push(d.msg_id));
    let duringOutage: Promise<unknown> | undefined;
    bob.on('message', (m) => {
      bobInbox.push(m);
      if (bobInbox.length === 5 && duringOutage === undefined) {
        // Cut before this message's `delivered` could reach the server: the server sends it
        // again after the reconnect, and the client must drop it. A send made now is written to
        // the dead connection, so it must go out again on the next one.
        proxy.cut();
        duringOutage = bob.send(alice.username, 'sent while disconnected');
      }
    });

    const total = 20;
    const acks = [];
    for (let i = 0; i < total; i++) acks.push(alice.send(bob.username, `message ${i}`));
    const ids = (await Promise.all(acks)).map((a) => a.msgId);

    await eventually(() => bobInbox.length >= total, { what: 'all messages at bob' });
    await expect(duringOutage).resolves.toMatchObject({ msgId: expect.any(String) });
    await eventually(() => aliceInbox.length >= 1, { what: 'the outage message at alice' });
    await new Promise((r) => setTimeout(r, 300)); // room for any duplicate to show up

    expect(states).toEqual(expect.arrayContaining(['reconnecting', 'connected']));
    expect(bobInbox.map((m) => m.deliver.msg_id)).toEqual(ids); // once each, in order
    expect(bobInbox.map((m) => m.deliver.body)).toEqual(
      Array.from({ length: total }, (_, i) => `message ${i}`),
    );
    expect(bobInbox.every((m) => m.verification === 'verified')).toBe(true);
    expect(duplicates.length).toBeGreaterThanOrEqual(1);
    expect(duplicates.every((id) => ids.includes(id))).toBe(true);
    expect(aliceInbox.map((m) => m.deliver.body)).toEqual(['sent while disconnected']);

    await alice.close();
    await bob.close();
    await proxy.close();
  });

  it('keeps reconnecting through an outage longer than 10 attempts by default (issue 14)', async () => {
    const proxy = await TcpProxy.start(server.host, server.port);
    // No maxAttempts: the default. Short delays so that many attempts fit in the test.
    const carol = await newUser('ro', {
      port: proxy.port,
      reconnect: { initialDelayMs: 1, maxDelayMs: 20 },
    });
    const attempts: number[] = [];
    carol.on('state', (state, detail) => {
      if (state === 'reconnecting') attempts.push(detail.attempt!);
    });
    proxy.cut(); // the server is unreachable: every attempt is refused
    await eventually(() => attempts.length >= 12, { what: '12 reconnect attempts' });
    // Waiting for the next attempt, or dialling it.
    expect(['reconnecting', 'connecting']).toContain(carol.state);

    proxy.restore();
    await eventually(() => carol.state === 'connected', { what: 'the connection back' });
    expect(attempts.slice(0, 12)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    await expect(carol.ping(3)).resolves.toEqual({ type: 'pong', n: 3 });
    await carol.close();
    await proxy.close();
  });

  it("flags a message whose author's key differs from the pinned one as key_changed", async () => {
    const carol = await newUser('kc');
    const otherKey = generateKeyPairSync('ed25519').publicKey;
    const pinnedB = fingerprint(exportSpki(otherKey));
    const peerKeys: PeerKeyStore = new MemoryPeerKeyStore({ [carol.username]: pinnedB });
    const dave = await newUser('kd', { peerKeys });
    const inbox = collect(dave);

    await carol.send(dave.username, 'signed with key A');
    await eventually(() => inbox.length === 1, { what: 'the message at dave' });
    const fingerprintA = fingerprint(exportSpki(keys.get(carol.username)!));
    expect(inbox[0]).toMatchObject({
      verification: 'key_changed',
      senderFingerprint: fingerprintA,
      pinnedFingerprint: pinnedB,
      deliver: { from: carol.username, body: 'signed with key A' },
    });
    expect(await peerKeys.get(carol.username)).toBe(pinnedB); // not re-pinned

    // A receiver with no pin verifies and pins on first use.
    const erin = await newUser('ke');
    const erinInbox = collect(erin);
    await carol.send(erin.username, 'hello erin');
    await eventually(() => erinInbox.length === 1, { what: 'the message at erin' });
    expect(erinInbox[0]).toMatchObject({
      verification: 'verified',
      senderFingerprint: fingerprintA,
    });

    await Promise.all([carol.close(), dave.close(), erin.close()]);
  });

  it('refuses sends beyond maxPendingSends until acks arrive, losing none it accepted', async () => {
    const sender = await newUser('cap', { maxPendingSends: 2 });
    const receiver = await newUser('capr');
    const received = collect(receiver);
    const first = sender.send(receiver.username, 'one');
    const second = sender.send(receiver.username, 'two');
    await expect(sender.send(receiver.username, 'three')).rejects.toBeInstanceOf(PendingLimitError);
    await Promise.all([first, second]);
    await sender.send(receiver.username, 'four');
    await eventually(() => received.length === 3, { what: 'three deliveries' });
    expect(received.map((m) => m.deliver.body)).toEqual(['one', 'two', 'four']);
  });

  it('closes with a matching, signed receipt and a transcript that verifies offline', async () => {
    const transcriptDir = join(dir, 'transcripts');
    const sink: TranscriptSink = new FileTranscriptSink({ directory: transcriptDir });
    const frank = await newUser('cf');
    // A tiny key update interval: the session rotates its sending key several times
    // (docs/PROTOCOL.md §5.3).
    const gina = await newUser('cg', { transcript: sink, keyUpdateInterval: 3 });
    const inbox = collect(gina);

    for (let i = 0; i < 4; i++) await gina.send(frank.username, `to frank ${i}`);
    await frank.send(gina.username, 'to gina');
    await eventually(() => inbox.length === 1, { what: 'the message at gina' });
    await gina.join('#closers');
    await gina.ping(7);

    const result = await gina.close();
    expect(result).toMatchObject({ viewsMatch: true, signatureValid: true, receiptReceived: true });
    expect(gina.state).toBe('closed');
    const path = result.transcript!;
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const transcript = await readTranscriptFile(path);
    expect(transcript.header).toMatchObject({
      session_id: result.sessionId,
      server_fingerprint: server.fingerprint,
      username: gina.username,
    });
    const texts = transcript.records.map((r) => `${r.dir} ${r.text}`);
    expect(texts[0]).toMatch(/^s2c \{"type":"login_ok"/);
    expect(texts.filter((t) => t === 'c2s {"type":"key_update"}').length).toBeGreaterThan(1);
    expect(texts.some((t) => t.startsWith('c2s {"type":"delivered"'))).toBe(true);
    expect(readFileSync(path, 'utf8')).not.toContain(PASSWORD); // the login record is not there
    expect(transcript.end).toMatchObject({ reason: 'closed', views_match: true });

    const verification = await verifyTranscriptFile(path, keys.get(gina.username));
    expect(verification.checks.map((c) => [c.name, c.ok])).toEqual([
      ['records match receipt', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
      ['readable text matches the signed bytes', true],
    ]);
    expect(verification.ok).toBe(true);

    // One altered record and the transcript no longer matches its receipt.
    const lines = readFileSync(path, 'utf8').split('\n');
    const index = lines.findIndex((l) => l.includes('to frank 1'));
    const record = JSON.parse(lines[index]!);
    record.plaintext = Buffer.from(
      Buffer.from(record.plaintext, 'base64').toString('utf8').replace('to frank 1', 'to frank X'),
    ).toString('base64');
    lines[index] = JSON.stringify(record);
    const tampered = join(dir, 'tampered.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    const bad = await verifyTranscriptFile(tampered, keys.get(gina.username));
    expect(bad.ok).toBe(false);
    expect(bad.checks.find((c) => c.name === 'records match receipt')?.ok).toBe(false);

    await frank.close();
  });
});
