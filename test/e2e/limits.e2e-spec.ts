/**
 * Per-connection limits of the gateway, on a server with small limits: handshake caps per
 * address, sessions per user, idle timeout, and slow readers dropped without losing their
 * messages.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

import {
  toBase64,
  encodeFrame,
  serializeJson,
  FrameDecoder,
  parseJsonObject,
} from '@securechat/protocol';

import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { HandshakeFailed, openSocket, socketClosed, TestClient } from '../support/protocol-client';

jest.setTimeout(120_000);

const PASSWORD = 'correct horse battery staple';
let server: RunningServer;
const keys: Record<string, KeyObject> = {};

function connect(username: string, action: 'login' | 'register' = 'login') {
  keys[username] ??= generateKeyPairSync('ed25519').privateKey;
  return TestClient.connect({
    port: server.port,
    username,
    password: PASSWORD,
    key: keys[username],
    action,
    fingerprint: server.fingerprint,
  });
}

beforeAll(async () => {
  server = await startEmbeddedServer({
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: '3',
    SECURECHAT_IDLE_TIMEOUT_MS: '2000',
    SECURECHAT_MAX_OUTBOUND_BYTES: '65536',
    SECURECHAT_WRITE_STALL_TIMEOUT_MS: '1000',
    SECURECHAT_MAX_SESSIONS_PER_USER: '2',
  });
});

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
});

it('caps connections still in the handshake per address, and frees the slots', async () => {
  const waiting = await Promise.all([1, 2, 3].map(() => openSocket(server.port)));
  const extra = await openSocket(server.port);
  const decoder = new FrameDecoder();
  const answers: Record<string, unknown>[] = [];
  extra.on('data', (chunk: Buffer) =>
    decoder.push(chunk).forEach((f) => answers.push(parseJsonObject(f.body))),
  );
  await socketClosed(extra);
  expect(answers).toEqual([
    expect.objectContaining({ type: 'error', code: 'rate_limited', retry_after: 1 }),
  ]);

  for (const socket of waiting) socket.destroy();
  await new Promise((r) => setTimeout(r, 200));
  // the slots are free again: a full login works
  const alice = await connect('alice', 'register');
  await alice.close();
});

it("caps one user's sessions, answering rate_limited, without touching other users", async () => {
  const first = await connect('carol', 'register');
  const second = await connect('carol');
  const refused = await connect('carol').then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(HandshakeFailed);
  expect((refused as HandshakeFailed).code).toBe('rate_limited');
  const other = await connect('dave', 'register');
  await other.close();
  // a slot comes back when one of carol's sessions ends
  await first.close();
  await new Promise((r) => setTimeout(r, 200));
  const again = await connect('carol');
  await Promise.all([again.close(), second.close()]);
});

it('closes a connection that stays silent past the idle timeout', async () => {
  const socket = await openSocket(server.port);
  const hello = encodeFrame(
    serializeJson({
      type: 'client_hello',
      protocol: 'securechat/1',
      nonce: toBase64(Buffer.alloc(32, 3)),
    }),
  );
  socket.write(hello);
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  await socketClosed(socket);
  // The 2 s idle timeout drops the peer without a word; the 10 s handshake timeout would have
  // said `handshake_timeout` first (a plaintext error frame: no key exists yet).
  const said = Buffer.concat(received).toString('utf8');
  expect(said).toContain('"type":"server_auth"');
  expect(said).not.toContain('handshake_timeout');
});

it('drops a reader that takes nothing for the stall timeout, and keeps its messages pending', async () => {
  const sender = await connect('sender', 'register');
  await (await connect('sloth', 'register')).close();
  const sloth = await connect('sloth');
  sloth.socket.pause(); // reads nothing from now on

  const body = 'x'.repeat(16_000);
  const acked: string[] = [];
  let dropped = false;
  for (let i = 0; i < 600 && !dropped; i++) {
    const ack = await sender.sendAndAck('sloth', `${i} ${body}`);
    expect(ack.type).toBe('ack');
    acked.push((ack as { msg_id: string }).msg_id);
    if (i % 20 === 0) dropped = server.output().includes('dropped: slow reader');
    // The stall is measured in time without progress, not in bytes we queued: give it time.
    if (i % 20 === 0 && !dropped) await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  expect(server.output()).toContain('dropped: slow reader');
  sloth.destroy();
  // Closed now: left idle while the backlog below drains, it would meet the 2 s idle timeout
  // on a loaded machine and never get its receipt.
  await sender.close();

  // Everything acked arrives at the next login, in order, whatever the dropped session had read.
  const again = await connect('sloth');
  const received: string[] = [];
  while (received.length < acked.length) received.push((await again.receive()).msg_id);
  expect(received).toEqual(acked);
  await again.close();
});
