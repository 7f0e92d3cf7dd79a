/**
 * The WebSocket binding (docs/PROTOCOL.md §11.2) of the embedded server, over real sockets: the
 * whole chat suite spoken over it, a WebSocket user and a TCP user talking, and the binding's
 * own rules — one frame per binary message, the subprotocol, the Origin allow-list.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { request } from 'node:http';

import {
  ClientSession,
  encodeFrame,
  FrameDecoder,
  parseJsonObject,
  serializeJson,
  toBase64,
} from '@securechat/protocol';

import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { openWebSocket, TestClient } from '../support/protocol-client';
import { CHAT_SUITE_ENV, defineChatSuite } from './chat-suite';

jest.setTimeout(60_000);

describe('the chat suite over WebSocket', () => {
  defineChatSuite(async (env) => {
    const server = await startEmbeddedServer(env);
    return {
      port: server.wsPort,
      transport: 'websocket',
      tcpPort: server.port,
      fingerprint: server.fingerprint,
      output: () => server.output(),
      stop: async () => {
        await server.stop();
        removeDataDir(server);
      },
    };
  });
});

describe('the WebSocket binding', () => {
  const ALLOWED = 'https://chat.example.com';
  const PASSWORD = 'correct horse battery staple';
  let server: RunningServer;
  let counter = 0;

  beforeAll(async () => {
    server = await startEmbeddedServer({ ...CHAT_SUITE_ENV, SECURECHAT_WS_ORIGINS: ALLOWED });
  });

  afterAll(async () => {
    await server?.stop();
    if (server) removeDataDir(server);
  });

  async function register(transport: 'tcp' | 'websocket') {
    const key = generateKeyPairSync('ed25519').privateKey;
    const username = `${transport === 'tcp' ? 'tcpuser' : 'webuser'}${counter++}`;
    const client = await TestClient.connect({
      port: transport === 'tcp' ? server.port : server.wsPort,
      transport,
      username,
      password: PASSWORD,
      key,
      action: 'register',
      fingerprint: server.fingerprint,
    });
    return { client, key };
  }

  it('carries signed messages between a WebSocket user and a TCP user, both ways', async () => {
    const web = await register('websocket');
    const tcp = await register('tcp');
    expect(await web.client.sendAndAck(tcp.client.username, 'from the browser port')).toMatchObject(
      { type: 'ack' },
    );
    const atTcp = await tcp.client.receive();
    expect(atTcp).toMatchObject({ from: web.client.username, body: 'from the browser port' });
    expect(ClientSession.verifyDeliver(atTcp, createPublicKey(web.key))).toBe(true);

    await tcp.client.sendAndAck(web.client.username, 'from the TCP port');
    const atWeb = await web.client.receive();
    expect(atWeb).toMatchObject({ from: tcp.client.username, body: 'from the TCP port' });
    expect(ClientSession.verifyDeliver(atWeb, createPublicKey(tcp.key))).toBe(true);

    // The session receipt is the same on both bindings: both agree with the server's view.
    for (const client of [web.client, tcp.client]) {
      expect(await client.close()).toMatchObject({ viewsMatch: true, signatureValid: true });
    }
  });

  /** Sends raw WebSocket messages; returns the frames answered and the close code. */
  async function probe(messages: { data: Buffer | string; binary: boolean }[]) {
    const { ws } = await openWebSocket(server.wsPort);
    const answers: Record<string, unknown>[] = [];
    const decoder = new FrameDecoder();
    ws.on('message', (data: Buffer) => {
      for (const frame of decoder.push(data)) answers.push(parseJsonObject(frame.body));
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    for (const message of messages) ws.send(message.data, { binary: message.binary });
    return { answers, code: await closed };
  }

  const hello = encodeFrame(
    serializeJson({
      type: 'client_hello',
      protocol: 'securechat/1',
      nonce: toBase64(Buffer.alloc(32, 7)),
    }),
  );

  it.each([
    ['a text message', [{ data: hello.toString('latin1'), binary: false }]],
    ['two frames in one message', [{ data: Buffer.concat([hello, hello]), binary: true }]],
    ['half a frame', [{ data: hello.subarray(0, hello.length - 3), binary: true }]],
    ['a message shorter than a length prefix', [{ data: Buffer.of(0, 0), binary: true }]],
    [
      'a prefix announcing more than the message holds',
      [{ data: Buffer.concat([hello, Buffer.of(1)]), binary: true }],
    ],
  ])('%s is bad_frame, and the connection closes', async (_what, messages) => {
    const { answers, code } = await probe(messages);
    expect(answers).toEqual([expect.objectContaining({ type: 'error', code: 'bad_frame' })]);
    expect(code).toBe(1000);
  });

  it('answers a well-formed client_hello with a server_hello, as TCP does', async () => {
    const { ws } = await openWebSocket(server.wsPort);
    const first = new Promise<Buffer>((resolve) => ws.once('message', resolve));
    ws.send(hello);
    const [frame] = new FrameDecoder().push(await first);
    expect(parseJsonObject(frame!.body)).toMatchObject({
      type: 'server_hello',
      server_key: expect.any(String),
    });
    ws.terminate();
  });

  it('closes a message above max_frame + 4 without buffering it (close 1009)', async () => {
    const huge = Buffer.alloc(65536 + 4 + 1);
    huge.writeUInt32BE(huge.length - 4, 0);
    const { code } = await probe([{ data: huge, binary: true }]);
    expect(code).toBe(1009);
  });

  /** The HTTP status of an upgrade request with these headers (101: upgraded). */
  function upgradeStatus(headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: server.wsPort,
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': toBase64(Buffer.alloc(16, 1)),
          ...headers,
        },
      });
      req.on('upgrade', (response, socket) => {
        socket.destroy();
        resolve(response.statusCode ?? 0);
      });
      req.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it.each([
    ['no Origin (not a browser)', {}, 101],
    ['an origin from SECURECHAT_WS_ORIGINS', { origin: ALLOWED }, 101],
    ["the port's own loopback origin", { origin: 'loopback' }, 101],
    ['another origin', { origin: 'https://evil.example' }, 403],
    ['a listed origin with another scheme', { origin: 'http://chat.example.com' }, 403],
  ])('%s: %s → HTTP %d', async (_what, headers: { origin?: string }, status) => {
    const origin =
      headers.origin === 'loopback' ? `http://127.0.0.1:${server.wsPort}` : headers.origin;
    expect(
      await upgradeStatus({
        'sec-websocket-protocol': 'securechat.v1',
        ...(origin === undefined ? {} : { origin }),
      }),
    ).toBe(status);
  });

  it('refuses an upgrade that does not offer securechat.v1 (HTTP 400)', async () => {
    expect(await upgradeStatus({ 'sec-websocket-protocol': 'chat' })).toBe(400);
    expect(await upgradeStatus({})).toBe(400);
    await expect(openWebSocket(server.wsPort, '127.0.0.1', { protocols: [] })).rejects.toThrow(
      /400/,
    );
  });

  it('echoes the subprotocol it accepted', async () => {
    const { ws } = await openWebSocket(server.wsPort, '127.0.0.1', {
      protocols: ['other', 'securechat.v1'],
    });
    expect(ws.protocol).toBe('securechat.v1');
    ws.terminate();
  });

  it('is off when SECURECHAT_WS_PORT=off', async () => {
    const off = await startEmbeddedServer({ SECURECHAT_WS_PORT: 'off' });
    try {
      expect(off.wsPort).toBe(0);
      expect(off.output()).not.toContain('WebSocket binding listening');
    } finally {
      await off.stop();
      removeDataDir(off);
    }
  });
});
