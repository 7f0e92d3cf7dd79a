/**
 * What the embedded server keeps: acked messages across a kill -9 and restart, transcripts
 * whose rows say agreed or disputed and which rebuild into a verifiable session, accounts
 * disabled while it was down, and self-registration when it is off.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { decodeChunk, openDatabase, type DatabaseHandle } from '@securechat/core';
import { verifyTranscript } from '@securechat/protocol';
import { eq, asc } from 'drizzle-orm';

import * as schema from '../../db/schema';
import { type HandshakeFailed, TestClient } from '../support/protocol-client';
import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';

jest.setTimeout(120_000);

const PASSWORD = 'correct horse battery staple';
const keys: Record<string, KeyObject> = {
  alice: generateKeyPairSync('ed25519').privateKey,
  bob: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  carol: generateKeyPairSync('ed25519').privateKey,
};

let server: RunningServer;

function connect(username: string, action: 'login' | 'register' = 'login') {
  return TestClient.connect({
    port: server.port,
    username,
    password: PASSWORD,
    key: keys[username]!,
    action,
    fingerprint: server.fingerprint,
  });
}

async function withDatabase<T>(fn: (handle: DatabaseHandle) => Promise<T>): Promise<T> {
  const handle = await openDatabase({ kind: 'pglite', dataDir: join(server.dataDir, 'pglite') });
  try {
    return await fn(handle);
  } finally {
    await handle.close();
  }
}

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
});

it('keeps acked messages, transcripts and account state across restarts', async () => {
  server = await startEmbeddedServer({ ALLOW_REGISTRATION: 'true' });
  for (const name of ['alice', 'bob', 'carol']) await (await connect(name, 'register')).close();

  // An agreed session: alice talks to bob and closes properly.
  const alice = await connect('alice');
  const bob = await connect('bob');
  await alice.sendAndAck('bob', 'for the record');
  await bob.receive();
  alice.write({ type: 'ping', n: 7 });
  await alice.next('pong');
  expect(await alice.close()).toMatchObject({ viewsMatch: true, signatureValid: true });
  const agreedSession = alice.loginOk.session_id;

  // A disputed session: bob countersigns something else.
  bob.socket.write(bob.session.bye());
  await bob.next('receipt');
  const sealer = bob.session as unknown as { seal: (m: object, chained: boolean) => Buffer };
  const zero = Buffer.alloc(32).toString('base64');
  bob.socket.write(
    sealer.seal(
      {
        type: 'countersign',
        c2s_count: 0,
        c2s_chain: zero,
        s2c_count: 0,
        s2c_chain: zero,
        signature: 'AAAA',
      },
      false,
    ),
  );
  await bob.closed;
  const disputedSession = bob.loginOk.session_id;

  // Acked messages to offline carol survive kill -9.
  const sender = await connect('alice');
  const acked: string[] = [];
  for (let i = 0; i < 20; i++) {
    const ack = await sender.sendAndAck('carol', `durable ${i}`);
    expect(ack.type).toBe('ack');
    acked.push((ack as { msg_id: string }).msg_id);
  }
  await server.stop('SIGKILL');
  server = await startEmbeddedServer({ ALLOW_REGISTRATION: 'true' }, server.dataDir, server.port);
  const carol = await connect('carol');
  const received: string[] = [];
  for (let i = 0; i < 20; i++) received.push((await carol.receive()).msg_id);
  expect(received).toEqual(acked);
  await carol.close();

  // Look at the store with the server stopped (PGlite is single-process).
  await server.stop();
  const identity = createPrivateKey(readFileSync(join(server.dataDir, 'server-identity.pem')));
  await withDatabase(async ({ db }) => {
    const sessions = await db.select().from(schema.transcriptSessions);
    const byId = new Map(sessions.map((s) => [s.sessionId, s]));
    expect(byId.get(agreedSession)?.status).toBe('agreed');
    expect(byId.get(disputedSession)?.status).toBe('disputed');

    const row = byId.get(agreedSession)!;
    const chunks = await db
      .select()
      .from(schema.transcriptChunks)
      .where(eq(schema.transcriptChunks.sessionId, agreedSession))
      .orderBy(asc(schema.transcriptChunks.firstPosition));
    // Positions follow one another from 0 across the chunks: no record missing or repeated.
    let next = 0;
    for (const chunk of chunks) {
      expect(chunk.firstPosition).toBe(next);
      next += chunk.recordCount;
    }
    const records = chunks.flatMap((chunk) => decodeChunk(chunk.records));
    const types = records.map((r) => (JSON.parse(String(r.plaintext)) as { type: string }).type);
    expect(types).toEqual([
      'login_ok',
      'send',
      'ack',
      'ping',
      'pong',
      'bye',
      'receipt',
      'countersign',
    ]);
    const view = (prefix: '' | 'client') => ({
      sessionId: row.sessionId,
      c2sCount: (prefix ? row.clientC2sCount : row.c2sCount)!,
      c2sChain: (prefix ? row.clientC2sChain : row.c2sChain)!,
      s2cCount: (prefix ? row.clientS2cCount : row.s2cCount)!,
      s2cChain: (prefix ? row.clientS2cChain : row.s2cChain)!,
    });
    const verification = verifyTranscript({
      sessionId: row.sessionId,
      h2: row.h2,
      records,
      receipt: { view: view(''), signature: row.receiptSignature! },
      countersign: { view: view('client'), signature: row.countersignature! },
      serverKey: createPublicKey(identity),
      userKey: createPublicKey(keys.alice!),
    });
    expect(verification.checks.every((c) => c.ok)).toBe(true);
    expect(verification.ok).toBe(true);

    await db.update(schema.users).set({ disabled: true }).where(eq(schema.users.username, 'bob'));
  });

  // A disabled account fails like any other failure.
  server = await startEmbeddedServer({ ALLOW_REGISTRATION: 'true' }, server.dataDir, server.port);
  const failure = await connect('bob').then(
    () => undefined,
    (error: unknown) => (error as HandshakeFailed).cause,
  );
  expect(failure).toMatchObject({ code: 'auth_failed', peerMessage: 'authentication failed' });
  await server.stop();

  // With registration off (the default), register is forbidden.
  server = await startEmbeddedServer({}, server.dataDir, server.port);
  keys.dave = generateKeyPairSync('ed25519').privateKey;
  const refused = await connect('dave', 'register').then(
    () => undefined,
    (error: unknown) => (error as HandshakeFailed).cause,
  );
  expect(refused).toMatchObject({ code: 'forbidden' });
});
