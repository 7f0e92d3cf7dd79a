// The handshake's first frame against a local TCP server that does not speak securechat/1 (or
// stops speaking it after its server_hello): only the former is NotSecureChatServerError.
import { generateKeyPairSync } from 'node:crypto';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';

import {
  CHALLENGE_BYTES,
  ProtocolError,
  X25519_KEY_BYTES,
  encodeFrame,
  exportSpki,
  serializeJson,
  toBase64,
} from '@securechat/protocol';

import { NotSecureChatServerError } from './client-errors';
import { MemoryKnownServersStore } from './known-servers';
import { MemoryPeerKeyStore } from './peer-keys';
import { SecureChatClient } from './secure-chat-client';

const serverHello = (): Buffer =>
  encodeFrame(
    serializeJson({
      type: 'server_hello',
      server_version: 'test',
      challenge: toBase64(Buffer.alloc(CHALLENGE_BYTES, 1)),
      dh_pub: toBase64(Buffer.alloc(X25519_KEY_BYTES, 2)),
      server_key: toBase64(exportSpki(generateKeyPairSync('ed25519').publicKey)),
    }),
  );

describe('openSession: what the first frame says about the server', () => {
  let server: Server;
  let answer: (socket: Socket) => void;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.once('data', () => answer(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  async function connectError(): Promise<unknown> {
    const client = new SecureChatClient({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      username: 'alice',
      password: 'unused-password',
      privateKey: generateKeyPairSync('ed25519').privateKey,
      trust: {
        store: new MemoryKnownServersStore(),
        policy: { fingerprint: `sha256:${'0'.repeat(64)}` },
      },
      peerKeys: new MemoryPeerKeyStore(),
      reconnect: false,
      handshakeTimeoutMs: 5_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      return error;
    } finally {
      await client.close().catch(() => undefined);
    }
    throw new Error('connected');
  }

  it('an HTTP answer (a 1.2 GB frame) is not a securechat/1 server', async () => {
    answer = (socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    const error = await connectError();
    expect(error).toBeInstanceOf(NotSecureChatServerError);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe('frame_too_large');
  });

  it('a first frame that is not a server_hello is not a securechat/1 server', async () => {
    answer = (socket) => socket.write(encodeFrame(serializeJson({ type: 'hello', x: 1 })));
    const error = await connectError();
    expect(error).toBeInstanceOf(NotSecureChatServerError);
  });

  it('a framing error after a valid server_hello is the protocol error it is', async () => {
    answer = (socket) => {
      socket.write(serverHello());
      setTimeout(() => socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0])), 50);
    };
    const error = await connectError();
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).not.toBeInstanceOf(NotSecureChatServerError);
    expect((error as ProtocolError).code).toBe('frame_too_large');
  });
});
