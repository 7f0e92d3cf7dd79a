/**
 * Transcript export (issue 6) end to end: a SecureChatClient chats with the embedded server
 * (a real process) — messages both ways, a room, pings, key updates on the client side —
 * closes with bye → receipt → countersign, and the server's export of that session
 * (`GET /admin/transcripts/{id}`) then verifies with the client library's verifier and with
 * `securechat verify-transcript`, agrees with the client's own log record for record and on
 * both chains, and fails once one byte is changed. A session with requests the gateway refused
 * (a forged send, a bad room name) exports them by digest (issue 13; docs/PROTOCOL.md §10 item
 * 25), and still verifies.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  type IncomingMessage,
  MemoryKnownServersStore,
  MemoryPeerKeyStore,
  MemoryTranscriptSink,
  SecureChatClient,
} from '@securechat/client';
import {
  type ClientMessage,
  parseTranscript,
  serializeJson,
  sha256,
  type TranscriptPlaintextRecordLine,
  type TranscriptRecordLine,
  verifyTranscriptLog,
} from '@securechat/protocol';

import { type AdminEndpoint, adminRequest } from '../support/admin-http';
import { runCli } from '../support/cli-process';
import { TestClient } from '../support/protocol-client';
import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { eventually } from '../../libs/core/test/eventually';

jest.setTimeout(60_000);

const PASSWORD = 'correct horse battery staple';

describe('transcript export from the embedded server', () => {
  let server: RunningServer;
  let admin: AdminEndpoint;
  let dir: string;
  const clients: SecureChatClient[] = [];
  const keys = new Map<string, KeyObject>();
  let counter = 0;

  beforeAll(async () => {
    server = await startEmbeddedServer({
      ALLOW_REGISTRATION: 'true',
      SECURECHAT_INSECURE_FAST_HASH: 'true',
    });
    admin = { port: server.adminPort, token: server.adminToken() };
    dir = mkdtempSync(join(tmpdir(), 'securechat-export-e2e-'));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.filter((c) => c.state !== 'closed').map((c) => c.close()));
    await server?.stop();
    if (server) removeDataDir(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function newUser(sink?: MemoryTranscriptSink): Promise<SecureChatClient> {
    const username = `tx${process.pid}x${counter++}`;
    const privateKey = generateKeyPairSync('ed25519').privateKey;
    keys.set(username, privateKey);
    const client = new SecureChatClient({
      host: server.host,
      port: server.port,
      username,
      password: PASSWORD,
      privateKey,
      action: 'register',
      trust: { store: new MemoryKnownServersStore(), policy: { fingerprint: server.fingerprint } },
      peerKeys: new MemoryPeerKeyStore(),
      reconnect: false,
      requestTimeoutMs: 10_000,
      // Rotates its sending key every 3 records: the export must renumber across key updates.
      keyUpdateInterval: 3,
      ...(sink ? { transcript: sink } : {}),
    });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  }

  const byDirection = (records: readonly TranscriptRecordLine[], dir: 'c2s' | 's2c') =>
    records.filter((r) => r.dir === dir);

  it('exports a session that verifies and matches the client’s own log', async () => {
    const sink = new MemoryTranscriptSink();
    const gina = await newUser(sink);
    const frank = await newUser();
    const inbox: IncomingMessage[] = [];
    gina.on('message', (m) => inbox.push(m));

    for (let i = 0; i < 5; i++) await gina.send(frank.username, `to frank ${i} ✓`);
    await frank.send(gina.username, 'to gina');
    await eventually(() => inbox.length === 1, { what: 'the message at gina' });
    await gina.join('#exporters');
    await gina.ping(7);
    const result = await gina.close();
    expect(result).toMatchObject({ viewsMatch: true, signatureValid: true, receiptReceived: true });

    // The gateway ships transcripts in batches: wait until the close is stored.
    await eventually(
      async () => {
        const page = await adminRequest<{ sessions: { session_id: string; status: string }[] }>(
          admin,
          'GET',
          `/admin/users/${gina.username}/transcripts`,
        );
        return page.body.sessions.some(
          (s) => s.session_id === result.sessionId && s.status === 'agreed',
        );
      },
      { what: 'the transcript stored' },
    );
    const response = await adminRequest(admin, 'GET', `/admin/transcripts/${result.sessionId}`);
    expect(response.status).toBe(200);
    const exported = parseTranscript(response.text);
    const own = parseTranscript(sink.sessions[0]!.lines.map((l) => JSON.stringify(l)).join('\n'));

    const verification = verifyTranscriptLog(exported, keys.get(gina.username));
    expect(verification.checks.map((c) => [c.name, c.ok])).toEqual(
      expect.arrayContaining([
        ['records match receipt', true],
        ['receipt signature', true],
        ['views agree', true],
        ['countersignature', true],
      ]),
    );
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);
    expect(exported.header).toMatchObject({
      session_id: result.sessionId,
      server_key: own.header.server_key,
      server_fingerprint: server.fingerprint,
      username: gina.username,
      h2: own.header.h2,
    });

    // Same records, byte for byte and numbered alike, in each direction (the interleaving of
    // the two directions is each side's own view); same receipt and countersignature.
    expect(
      exported.records.filter((r) => r.text === '{"type":"key_update"}').length,
    ).toBeGreaterThan(1);
    for (const d of ['c2s', 's2c'] as const) {
      expect(byDirection(exported.records, d)).toEqual(byDirection(own.records, d));
    }
    expect(exported.end?.receipt).toEqual(own.end?.receipt);
    expect(exported.end?.countersign).toEqual(own.end?.countersign);
    expect(response.text).not.toContain(PASSWORD);

    // The command users run: exit 0 for the export, 6 once one byte of one record changed.
    const publicKeyFile = join(dir, 'gina.pub');
    writeFileSync(
      publicKeyFile,
      createPublicKey(keys.get(gina.username)!).export({ format: 'pem', type: 'spki' }).toString(),
    );
    const exportFile = join(dir, 'export.jsonl');
    writeFileSync(exportFile, response.text);
    const good = await runCli(['verify-transcript', exportFile, '--user-key', publicKeyFile], {});
    expect(good.code).toBe(0);

    const lines = response.text.split('\n');
    const index = lines.findIndex((l) => l.includes('to frank 2'));
    const record = JSON.parse(lines[index]!) as TranscriptPlaintextRecordLine;
    const bytes = Buffer.from(record.plaintext, 'base64');
    const at = bytes.indexOf('to frank 2') + 'to frank '.length;
    bytes[at] = '3'.charCodeAt(0);
    lines[index] = JSON.stringify({ ...record, plaintext: bytes.toString('base64') });
    const tampered = lines.join('\n');
    const bad = verifyTranscriptLog(parseTranscript(tampered), keys.get(gina.username));
    expect(bad.ok).toBe(false);
    expect(bad.checks.find((c) => c.name === 'records match receipt')?.ok).toBe(false);
    const tamperedFile = join(dir, 'tampered.jsonl');
    writeFileSync(tamperedFile, tampered);
    const refused = await runCli(['verify-transcript', tamperedFile], {});
    expect(refused.code).toBe(6);

    await frank.close();
  });

  it('exports requests the gateway refused by digest; the export still verifies', async () => {
    const username = `tx${process.pid}x${counter++}`;
    const privateKey = generateKeyPairSync('ed25519').privateKey;
    const client = await TestClient.connect({
      port: server.port,
      host: server.host,
      username,
      password: PASSWORD,
      key: privateKey,
      action: 'register',
      fingerprint: server.fingerprint,
    });
    const sessionId = client.loginOk.session_id;
    expect(await client.sendAndAck(username, 'a note to self', 'good')).toMatchObject({
      type: 'ack',
    });
    const forged: ClientMessage = {
      ...client.session.signedSend({ id: 'forged', to: username, body: 'signed', ts: 1 }),
      body: 'FORGED: changed after signing',
    };
    client.write(forged);
    expect(await client.next('error', (e) => e.id === 'forged')).toMatchObject({
      code: 'bad_request',
    });
    const badRoom: ClientMessage = { type: 'join', room: '#NOT A ROOM' };
    client.write(badRoom);
    expect(await client.next('error')).toMatchObject({ code: 'bad_request' });
    expect((await client.close()).viewsMatch).toBe(true);

    await eventually(
      async () => {
        const page = await adminRequest<{ sessions: { session_id: string; status: string }[] }>(
          admin,
          'GET',
          `/admin/users/${username}/transcripts`,
        );
        return page.body.sessions.some((s) => s.session_id === sessionId && s.status === 'agreed');
      },
      { what: 'the transcript stored' },
    );
    const response = await adminRequest(admin, 'GET', `/admin/transcripts/${sessionId}`);
    expect(response.status).toBe(200);
    expect(response.text).not.toContain('FORGED');
    expect(response.text).not.toContain('NOT A ROOM');
    const exported = parseTranscript(response.text);
    expect(exported.records.filter((r) => r.digest !== undefined)).toEqual([
      expect.objectContaining({
        dir: 'c2s',
        chained: true,
        digest: sha256(serializeJson(forged)).toString('base64'),
      }),
      expect.objectContaining({
        dir: 'c2s',
        chained: true,
        digest: sha256(serializeJson(badRoom)).toString('base64'),
      }),
    ]);
    // The errors answering them are there in full.
    expect(
      exported.records.filter((r) => r.dir === 's2c' && r.text?.includes('"type":"error"')),
    ).toHaveLength(2);
    const verification = verifyTranscriptLog(exported, privateKey);
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);

    const publicKeyFile = join(dir, `${username}.pub`);
    writeFileSync(
      publicKeyFile,
      createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
    );
    const exportFile = join(dir, 'refused.jsonl');
    writeFileSync(exportFile, response.text);
    const checked = await runCli(
      ['verify-transcript', exportFile, '--user-key', publicKeyFile],
      {},
    );
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/records, 2 of them kept by digest/);
    expect(checked.stdout).toContain('transcript verified');
  });
});
