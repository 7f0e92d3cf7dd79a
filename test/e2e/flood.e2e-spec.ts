/**
 * An unauthenticated flood against the real embedded server: 100 connections from one address
 * each send `client_hello`, then in one write a `login` followed by 64 KiB of minimum frames
 * (`00000002 7b7d`), which the old gateway queued while auth decided (570 MiB for 100 such
 * connections). Meanwhile a normal user keeps chatting. The per-address handshake cap is
 * raised here so that every flooding connection reaches the handshake: what is measured is
 * what one connection can make the server hold, not the admission caps (limits.e2e-spec).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

import {
  ClientHandshake,
  encodeFrame,
  FrameDecoder,
  parseJsonObject,
  serializeJson,
} from '@securechat/protocol';

import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { openSocket, socketClosed, TestClient } from '../support/protocol-client';

jest.setTimeout(180_000);

const PASSWORD = 'correct horse battery staple';
const FLOODERS = 100;
/**
 * The README's figure for this test's flood (docs: "What a peer can make the server hold"),
 * with a wide margin over what was measured (see the closing line the test prints).
 */
const RSS_GROWTH_BOUND_MIB = 100;

let server: RunningServer;
const keys: Record<string, KeyObject> = {};

function connect(username: string, action: 'login' | 'register' = 'login'): Promise<TestClient> {
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

function residentMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error('no VmRSS');
  return Number(kib[1]) / 1024;
}

/** One flooding connection: the handshake up to `login`, then login + 64 KiB of `{}` frames. */
async function flood(key: KeyObject): Promise<{ answers: string[] }> {
  const socket = await openSocket(server.port);
  socket.on('error', () => undefined);
  const handshake = new ClientHandshake({
    trust: { fingerprint: server.fingerprint },
    credentials: {
      action: 'login',
      username: 'mallory',
      password: 'not it at all',
      privateKey: key,
    },
  });
  const decoder = new FrameDecoder();
  const answers: string[] = [];
  const tiny = encodeFrame(serializeJson({}));
  const junk = Buffer.concat(Array.from({ length: Math.ceil(65536 / tiny.length) }, () => tiny));
  let sentLogin = false;
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (sentLogin) {
        // After login only encrypted records can come: their presence is what counts.
        answers.push(String(parseJsonObject(frame.body).type));
        continue;
      }
      void handshake.receive(frame).then((step) => {
        if (step.send.length > 0) {
          sentLogin = true;
          socket.write(Buffer.concat([...step.send, junk]));
        }
      });
    }
  });
  socket.write(handshake.start());
  await socketClosed(socket);
  return { answers };
}

beforeAll(async () => {
  server = await startEmbeddedServer({
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: String(FLOODERS * 2),
    SECURECHAT_ACCEPT_BURST_PER_ADDRESS: String(FLOODERS * 2),
  });
});

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
});

it('holds a bounded amount per flooding connection while a normal user keeps chatting', async () => {
  const pid = server.process.pid!;
  const alice = await connect('alice', 'register');
  const bob = await connect('bob', 'register');
  // Warm up the paths the flood will use, so that the baseline includes their code.
  await alice.sendAndAck('bob', 'warm-up');
  await bob.receive();
  await flood(generateKeyPairSync('ed25519').privateKey);
  const baseline = residentMiB(pid);

  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, residentMiB(pid))), 25);
  const floodKeys = Array.from(
    { length: FLOODERS },
    () => generateKeyPairSync('ed25519').privateKey,
  );
  const flooding = Promise.all(floodKeys.map((key) => flood(key)));

  // The normal user is unaffected: every message is acked and arrives, in order.
  const sent: string[] = [];
  const chatting = (async () => {
    for (let i = 0; i < 50; i++) {
      const ack = await alice.sendAndAck('bob', `during the flood ${i}`);
      expect(ack.type).toBe('ack');
      sent.push(`during the flood ${i}`);
    }
  })();
  const [floods] = await Promise.all([flooding, chatting]);
  const received: string[] = [];
  while (received.length < sent.length) received.push((await bob.receive()).body);
  clearInterval(sampler);
  peak = Math.max(peak, residentMiB(pid));

  expect(received).toEqual(sent);
  // Every flooding connection was closed by the server, and none got a session.
  expect(floods).toHaveLength(FLOODERS);
  for (const { answers } of floods) expect(answers.length).toBeLessThanOrEqual(1);
  const growth = peak - baseline;
  console.log(
    `flood: ${FLOODERS} connections, resident memory ${baseline.toFixed(0)} → peak ${peak.toFixed(0)} MiB (+${growth.toFixed(1)} MiB; bound ${RSS_GROWTH_BOUND_MIB})`,
  );
  expect(growth).toBeLessThan(RSS_GROWTH_BOUND_MIB);
  await Promise.all([alice.close(), bob.close()]);
});
