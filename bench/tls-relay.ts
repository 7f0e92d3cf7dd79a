/**
 * The baseline of `npm run bench`: a plain chat relay over Node's TLS 1.3 (X25519 key
 * exchange, Ed25519 certificate), the same message pattern as securechat/1 and no
 * persistence — what a user would build instead. Started by bench/run.ts as its own process:
 *
 *   BENCH_TLS_CERT=cert.pem BENCH_TLS_KEY=key.pem node -r @swc-node/register bench/tls-relay.ts
 *
 * Prints `{"event":"ready","host","port","fingerprint"}` like the SecureChat entry points and
 * exits on SIGTERM.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type TLSSocket, createServer } from 'node:tls';

import { type BaselineMessage, FrameReader, encodeFrame } from './tls-wire';

interface Connection {
  readonly socket: TLSSocket;
  user?: string;
}

function main(): void {
  const certPath = process.env.BENCH_TLS_CERT;
  const keyPath = process.env.BENCH_TLS_KEY;
  if (!certPath || !keyPath) {
    throw new Error('BENCH_TLS_CERT and BENCH_TLS_KEY must name the PEM files');
  }
  const cert = readFileSync(certPath);
  const sessions = new Map<string, Set<Connection>>();
  const rooms = new Map<string, Set<string>>();
  let counter = 0;

  const write = (connection: Connection, message: BaselineMessage) => {
    if (!connection.socket.destroyed) connection.socket.write(encodeFrame(message));
  };

  const onMessage = (connection: Connection, message: BaselineMessage) => {
    if (message.t === 'login') {
      connection.user = message.user;
      let set = sessions.get(message.user);
      if (set === undefined) sessions.set(message.user, (set = new Set()));
      set.add(connection);
      write(connection, { t: 'ok', user: message.user });
      return;
    }
    const from = connection.user;
    if (from === undefined) {
      write(connection, { t: 'error', code: 'not_logged_in' });
      connection.socket.destroy();
      return;
    }
    switch (message.t) {
      case 'send': {
        const msgId = `m${++counter}`;
        const recipients = message.to.startsWith('#')
          ? [...(rooms.get(message.to) ?? [])].filter((member) => member !== from)
          : [message.to];
        write(connection, { t: 'ack', id: message.id, msg_id: msgId });
        const deliver: BaselineMessage = {
          t: 'deliver',
          msg_id: msgId,
          from,
          to: message.to,
          body: message.body,
        };
        const frame = encodeFrame(deliver);
        for (const recipient of recipients) {
          for (const target of sessions.get(recipient) ?? []) {
            if (!target.socket.destroyed) target.socket.write(frame);
          }
        }
        return;
      }
      case 'join': {
        let members = rooms.get(message.room);
        if (members === undefined) rooms.set(message.room, (members = new Set()));
        members.add(from);
        write(connection, { t: 'joined', room: message.room, members: members.size });
        return;
      }
      case 'delivered':
        return; // nothing is pending: there is no persistence
      default:
        write(connection, { t: 'error', code: 'bad_request' });
    }
  };

  const server = createServer(
    {
      cert,
      key: readFileSync(keyPath),
      minVersion: 'TLSv1.3',
      ecdhCurve: 'X25519',
    },
    (socket) => {
      socket.setNoDelay(true);
      const connection: Connection = { socket };
      const reader = new FrameReader();
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const message of reader.push(chunk)) onMessage(connection, message);
        } catch {
          socket.destroy();
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        if (connection.user !== undefined) sessions.get(connection.user)?.delete(connection);
      });
    },
  );
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    const fingerprint = new X509Certificate(cert).fingerprint256;
    console.log(
      JSON.stringify({ event: 'ready', host: '127.0.0.1', port: address.port, fingerprint }),
    );
  });
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    for (const set of sessions.values()) for (const c of set) c.socket.destroy();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}

main();
