/**
 * A minimal securechat/1 client for end-to-end tests, straight on libs/protocol and a socket.
 * (The reference client, libs/client, is a separate piece of work; tests keep this one small
 * and explicit so that they can also misbehave on purpose.)
 */
import { type KeyObject } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { type Duplex } from 'node:stream';

import {
  type Ack,
  type ErrorMessage,
  ClientHandshake,
  type ClientHandshakeStep,
  type ClientReceived,
  type ClientSession,
  type Deliver,
  FrameDecoder,
  type LoginOk,
  type PeerError,
  type ProtocolError,
  type RawFrame,
  type ReceiptCheck,
  type ServerIdentityError,
  type ServerMessage,
} from '@securechat/protocol';
import { createWebSocketStream, WebSocket } from 'ws';

export interface ConnectOptions {
  readonly port: number;
  readonly host?: string;
  readonly username: string;
  readonly password: string;
  readonly key: KeyObject;
  readonly action?: 'login' | 'register';
  /** Pinned server fingerprint; trust on first use when absent. */
  readonly fingerprint?: string;
  readonly keyUpdateInterval?: number;
  /** `websocket`: the PROTOCOL.md §11 binding, `port` being the WebSocket port. */
  readonly transport?: 'tcp' | 'websocket';
}

/**
 * A WebSocket to the gateway's browser port (subprotocol securechat.v1), as a byte stream: each
 * write leaves as one binary message, each message arrives as one chunk.
 */
export function openWebSocket(
  port: number,
  host = '127.0.0.1',
  options: { origin?: string; protocols?: string[] } = {},
): Promise<{ ws: WebSocket; stream: Duplex }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${host}:${port}/`, options.protocols ?? ['securechat.v1'], {
      ...(options.origin === undefined ? {} : { origin: options.origin }),
    });
    ws.once('open', () => {
      ws.off('error', reject);
      const stream = createWebSocketStream(ws);
      // One frame per message (PROTOCOL.md §11), while ClientSession.send may hand back two
      // frames at once (a key_update and the record after it).
      const writeOne = stream._write.bind(stream);
      stream._write = (chunk: Buffer, encoding, callback) => {
        const frames = new FrameDecoder({ maxFrame: 0x7fff_ffff }).push(chunk);
        for (const frame of frames.slice(0, -1)) ws.send(frame.bytes);
        writeOne(frames.at(-1)?.bytes ?? chunk, encoding, callback);
      };
      // The server's close ends the readable side only; a TCP socket in its place would be
      // closed by now, and callers wait for 'close'.
      stream.once('end', () => stream.destroy());
      resolve({ ws, stream });
    });
    ws.once('error', reject);
  });
}

export function openSocket(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, noDelay: true }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves when the socket is closed by either side. */
export function socketClosed(socket: Socket | Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed || socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
}

export class HandshakeFailed extends Error {
  constructor(override readonly cause: ServerIdentityError | PeerError | ProtocolError) {
    super(`handshake failed: ${cause.message}`);
  }
  get code(): string | undefined {
    return 'code' in this.cause ? this.cause.code : undefined;
  }
}

export class TestClient {
  readonly inbox: ServerMessage[] = [];
  readonly closed: Promise<void>;
  #waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  #nextId = 0;
  #failure: Error | undefined;
  receiptCheck: ReceiptCheck | undefined;

  private constructor(
    readonly socket: Duplex,
    readonly session: ClientSession,
    readonly loginOk: LoginOk,
    private readonly decoder: FrameDecoder,
    /** Frames that came in the same chunk as `login_ok`, after it (see `connect`). */
    early: RawFrame[],
  ) {
    this.closed = socketClosed(socket);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // The handshake left the socket paused: these frames go first, then whatever follows.
    this.#onFrames(early);
    socket.resume();
  }

  static async connect(options: ConnectOptions): Promise<TestClient> {
    const socket: Duplex =
      options.transport === 'websocket'
        ? (await openWebSocket(options.port, options.host)).stream
        : await openSocket(options.port, options.host);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    const handshake = new ClientHandshake({
      trust: options.fingerprint
        ? { fingerprint: options.fingerprint }
        : { onFirstUse: () => true },
      credentials: {
        action: options.action ?? 'login',
        username: options.username,
        password: options.password,
        privateKey: options.key,
      },
      ...(options.keyUpdateInterval
        ? { session: { keyUpdateInterval: options.keyUpdateInterval } }
        : {}),
    });
    const done = new Promise<{ step: ClientHandshakeStep; rest: RawFrame[] }>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        // handshake.receive is asynchronous: read no more until these frames are through,
        // so that a later chunk cannot overtake them.
        socket.pause();
        void (async () => {
          const frames = decoder.push(chunk);
          for (const [index, frame] of frames.entries()) {
            const step = await handshake.receive(frame);
            for (const bytes of step.send) socket.write(bytes);
            if (step.error || step.session) {
              socket.off('data', onData);
              // The server corks its writes, so login_ok often shares a chunk with what
              // follows it (pending delivers, …): those frames belong to the session, and
              // the socket stays paused until the session's reader has them.
              resolve({ step, rest: frames.slice(index + 1) });
              return;
            }
          }
          socket.resume();
        })().catch(reject);
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('connection closed during the handshake')));
    });
    socket.write(handshake.start());
    const { step, rest } = await done.catch((error: unknown) => {
      socket.destroy(); // a bad frame from the server would leave it open
      throw error;
    });
    if (step.error) {
      socket.destroy();
      throw new HandshakeFailed(step.error);
    }
    return new TestClient(socket, step.session!, step.loginOk!, decoder, rest);
  }

  get username(): string {
    return this.session.username;
  }

  #onData(chunk: Buffer): void {
    let frames: RawFrame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.#failure = error as Error;
      return;
    }
    this.#onFrames(frames);
  }

  #onFrames(frames: RawFrame[]): void {
    for (const frame of frames) {
      let received: ClientReceived;
      try {
        received = this.session.receive(frame);
      } catch (error) {
        this.#failure = error as Error;
        this.socket.destroy();
        return;
      }
      if (received.receipt) this.receiptCheck = received.receipt;
      const message = received.message;
      this.inbox.push(message);
      const index = this.#waiters.findIndex((w) => w.match(message));
      if (index >= 0) this.#waiters.splice(index, 1)[0]!.resolve(message);
    }
  }

  /** The first message (already received or still to come) that matches, consumed once. */
  next<T extends ServerMessage['type']>(
    type: T,
    match: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    type M = Extract<ServerMessage, { type: T }>;
    return this.nextWhere((m): m is M => m.type === type && match(m as M), `a ${type}`, timeoutMs);
  }

  /** The first message that satisfies `test`, consumed once; rejects after `timeoutMs`. */
  nextWhere<M extends ServerMessage>(
    test: (m: ServerMessage) => m is M,
    what: string,
    timeoutMs = 10_000,
  ): Promise<M> {
    const index = this.inbox.findIndex(test);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as M);
    return new Promise<M>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `no ${what} within ${timeoutMs} ms (failure: ${this.#failure?.message ?? 'none'})`,
          ),
        );
      }, timeoutMs);
      const done = (m: ServerMessage) => {
        clearTimeout(timer);
        this.inbox.splice(this.inbox.indexOf(m), 1);
        resolve(m as M);
      };
      this.#waiters.push({ match: test, resolve: done });
    });
  }

  write(message: Parameters<ClientSession['send']>[0]): void {
    this.socket.write(this.session.send(message));
  }

  /** Signs and sends a chat message; returns its client id. */
  sendMessage(
    to: string,
    body: string,
    id = `m-${Date.now()}-${this.#nextId++}`,
    ts = Date.now(),
  ): string {
    this.write(this.session.signedSend({ id, to, body, ts }));
    return id;
  }

  /** Sends and waits for the ack (or the error carrying the same id). */
  sendAndAck(
    to: string,
    body: string,
    id?: string,
    timeoutMs = 10_000,
  ): Promise<Ack | ErrorMessage> {
    const clientId = this.sendMessage(to, body, id);
    return this.nextWhere(
      (m): m is Ack | ErrorMessage => (m.type === 'ack' || m.type === 'error') && m.id === clientId,
      `an ack for ${clientId}`,
      timeoutMs,
    );
  }

  /** Waits for a deliver and acknowledges it with `delivered`. */
  async receive(match: (d: Deliver) => boolean = () => true): Promise<Deliver> {
    const deliver = await this.next('deliver', match);
    this.write({ type: 'delivered', msg_id: deliver.msg_id });
    return deliver;
  }

  /** PROTOCOL.md §7 closing: bye → receipt → countersign; returns how the receipt compared. */
  async close(): Promise<ReceiptCheck> {
    this.socket.write(this.session.bye());
    await this.next('receipt');
    this.socket.write(this.session.countersign());
    await this.closed;
    return this.receiptCheck!;
  }

  /** Drops the connection without closing the session properly. */
  destroy(): void {
    this.socket.destroy();
  }
}
