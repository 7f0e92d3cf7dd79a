/**
 * WebSocketListener on a real port, in process: what it answers to plain HTTP (the web client's
 * files, or 426), and what it hands the gateway.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { WebSocket } from 'ws';

import { StaticFiles } from './static-files';
import { type WebSocketByteStream } from './websocket-byte-stream';
import { type WebSocketListenerOptions, WebSocketListener } from './websocket-listener';

async function listen(extra: Partial<WebSocketListenerOptions> = {}) {
  const accepted: WebSocketByteStream[] = [];
  const listener = new WebSocketListener({
    host: '127.0.0.1',
    port: 0,
    origins: [],
    maxFrame: 65536,
    maxConnections: 16,
    requestTimeoutMs: 2000,
    stallTimeoutMs: 30_000,
    maxPendingPerAddress: 16,
    accept: (stream) => {
      accepted.push(stream);
      stream.destroy();
    },
    ...extra,
  });
  const port = await listener.start();
  return { listener, port, accepted };
}

/** Whether a WebSocket to the listener opens (and is accepted). */
function upgraded(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['securechat.v1']);
    ws.once('open', () => {
      ws.terminate();
      resolve(true);
    });
    ws.once('error', () => resolve(false));
  });
}

function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    })
      .on('error', reject)
      .end();
  });
}

describe('WebSocketListener', () => {
  it('answers plain HTTP with 426 when it serves no files', async () => {
    const { listener, port } = await listen();
    try {
      const answer = await get(port, '/');
      expect(answer.status).toBe(426);
      expect(answer.body).toContain('securechat.v1');
    } finally {
      await listener.stop();
    }
  });

  it("accepts a page from its own loopback origin and hands the stream over with the peer's address", async () => {
    const { listener, port, accepted } = await listen();
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['securechat.v1'], {
        origin: `http://localhost:${port}`,
      });
      const closed = new Promise((resolve) => ws.once('close', resolve));
      await closed;
      expect(accepted).toHaveLength(1);
      expect(accepted[0]!.remoteAddress).toBe('127.0.0.1');
    } finally {
      await listener.stop();
    }
  });

  it('answers no WebSocket ping: output a peer never reads must come from frames only', async () => {
    const streams: WebSocketByteStream[] = [];
    const { listener, port } = await listen({ accept: (stream) => streams.push(stream) });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['securechat.v1']);
      await new Promise((resolve) => ws.once('open', resolve));
      const pongs: Buffer[] = [];
      ws.on('pong', (data: Buffer) => pongs.push(data));
      ws.ping(Buffer.from('one'));
      // A frame the server does answer, sent after the ping: once its answer is in, a pong to
      // the ping would have arrived before it.
      const echoed = new Promise<Buffer>((resolve) => ws.once('message', resolve));
      streams[0]!.on('data', (chunk: Buffer) => streams[0]!.write(chunk, () => undefined));
      const frame = Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]);
      ws.send(frame);
      expect(await echoed).toEqual(frame);
      expect(pongs).toEqual([]);
      ws.terminate();
    } finally {
      for (const stream of streams) stream.destroy();
      await listener.stop();
    }
  });

  it('refuses a message above the frame limit set for the connection (pre-login: small)', async () => {
    const streams: WebSocketByteStream[] = [];
    const { listener, port } = await listen({
      accept: (stream) => {
        stream.on('error', () => undefined);
        stream.setMaxFrame(24 * 1024);
        streams.push(stream);
      },
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['securechat.v1']);
      await new Promise((resolve) => ws.once('open', resolve));
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      const message = Buffer.alloc(30 * 1024);
      message.writeUInt32BE(message.length - 4, 0);
      ws.send(message);
      // 1009: `ws` measured the message against 24 KiB + 4, not the listener's 64 KiB + 4.
      expect(await closed).toBe(1009);
      expect(streams[0]!.destroyed).toBe(true);
    } finally {
      await listener.stop();
    }
  });

  it('holds at most maxPendingPerAddress connections of one address before their upgrade', async () => {
    const { listener, port } = await listen({ maxPendingPerAddress: 2 });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect({ host: '127.0.0.1', port });
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
        sockets.push(socket);
      }
      // The third is closed by the server; the first two wait for their (unsent) requests.
      await new Promise((resolve) => sockets[2]!.once('close', resolve));
      expect(sockets.map((socket) => socket.destroyed)).toEqual([false, false, true]);
      // One closes: its place is free again.
      sockets[0]!.destroy();
      await new Promise((resolve) => sockets[0]!.once('close', resolve));
      const ok = await upgraded(port);
      expect(ok).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await listener.stop();
    }
  });

  describe('serving the web client', () => {
    let dir: string;
    let port: number;
    let listener: WebSocketListener;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'securechat-web-'));
      writeFileSync(join(dir, 'index.html'), '<!doctype html><title>SecureChat</title>');
      mkdirSync(join(dir, 'assets'));
      writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
      writeFileSync(join(dir, 'notes.unknown'), 'not served: no known type');
      const files = StaticFiles.load(dir)!;
      ({ listener, port } = await listen({ request: files.handle.bind(files) }));
      // Added after the start: the set of files was read once.
      writeFileSync(join(dir, 'later.js'), 'console.log(2)');
    });

    afterAll(async () => {
      await listener.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves index.html at / and files below, with a strict content security policy', async () => {
      const page = await get(port, '/');
      expect(page.status).toBe(200);
      expect(page.body).toContain('<title>SecureChat</title>');
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      const script = await get(port, '/assets/app.js');
      expect(script.status).toBe(200);
      expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(script.body).toBe('console.log(1)');
    });

    it.each([
      '/../package.json',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/assets/../../etc/passwd',
      '/notes.unknown',
      '/later.js',
      '/assets',
      '/index.html%00.js',
    ])('answers 404 for %s', async (path) => {
      expect((await get(port, path)).status).toBe(404);
    });

    it('answers 405 to anything but GET and HEAD', async () => {
      expect((await get(port, '/', 'POST')).status).toBe(405);
      const head = await get(port, '/', 'HEAD');
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
    });
  });

  it('loads nothing from a directory that does not exist', () => {
    expect(
      StaticFiles.load(join(tmpdir(), 'securechat-no-such-dir-'.concat(String(process.pid)))),
    ).toBeUndefined();
  });
});
