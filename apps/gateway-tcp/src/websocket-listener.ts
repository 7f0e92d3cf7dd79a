import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Socket } from 'node:net';

import { WebSocketServer } from 'ws';

import { WEBSOCKET_SUBPROTOCOL, WebSocketByteStream } from './websocket-byte-stream';

export interface WebSocketListenerOptions {
  readonly host: string;
  readonly port: number;
  /** Origins allowed besides this listener's own loopback ones (SECURECHAT_WS_ORIGINS). */
  readonly origins: readonly string[];
  /** The largest frame body (SECURECHAT_MAX_FRAME): a message holds at most that plus 4. */
  readonly maxFrame: number;
  /** Connections at once, upgraded or not (as the TCP listener's maxConnections). */
  readonly maxConnections: number;
  /** Time for a client to send its upgrade request (SECURECHAT_HELLO_TIMEOUT_MS). */
  readonly requestTimeoutMs: number;
  /** A message started and not finished for this long drops the peer (as a frame on TCP). */
  readonly stallTimeoutMs: number;
  /** Connections one address may hold before they are upgraded (HTTP requests in progress). */
  readonly maxPendingPerAddress: number;
  /** Each upgraded connection, handled from here on exactly like a TCP socket. */
  readonly accept: (stream: WebSocketByteStream) => void;
  /** Plain HTTP requests (the web client's files); without it, 426 Upgrade Required. */
  readonly request?: (request: IncomingMessage, response: ServerResponse) => void;
  /** A refused upgrade, for the log. */
  readonly refused?: (reason: string, remoteAddress: string) => void;
}

/** Upgrade requests are small; a browser's stays far below this. */
const MAX_HEADER_BYTES = 8 * 1024;

/**
 * The WebSocket binding's listener (PROTOCOL.md §11): an HTTP server that upgrades requests
 * offering the `securechat.v1` subprotocol from an allowed `Origin`, and hands each upgraded
 * connection to the gateway as a WebSocketByteStream. Admission (rate, handshake slots) is the
 * gateway's, after the upgrade, as for TCP — so a refused browser gets the same `rate_limited`
 * frame a TCP client does.
 */
export class WebSocketListener {
  readonly #options: WebSocketListenerOptions;
  readonly #wss: WebSocketServer;
  #server: Server | undefined;
  #allowed = new Set<string>();
  /**
   * Connections not upgraded (yet) per address: the gateway's admission applies after the
   * upgrade, so until then this bounds what one address holds of `maxConnections`.
   */
  readonly #pending = new Map<string, number>();
  readonly #counted = new WeakSet<Socket>();

  constructor(options: WebSocketListenerOptions) {
    this.#options = options;
    this.#wss = new WebSocketServer({
      noServer: true,
      // One frame per message: a larger message is refused by `ws` (close 1009) before it is
      // buffered whole. Smaller limits (before login) are the frame decoder's, as on TCP.
      maxPayload: options.maxFrame + 4,
      perMessageDeflate: false,
      // Whole messages only, and few parts to one: each part is a buffer `ws` keeps until the
      // message ends (a browser sends our messages, at most 64 KiB, as one frame).
      maxFragments: 64,
      // WebSocketByteStream counts a chunk before `ws` parses it and relies on the messages of
      // that chunk being emitted at once.
      allowSynchronousEvents: true,
      // No automatic pong: a peer that pings and never reads would grow our output with pongs
      // that no limit of FramedSocket sees. securechat/1 has its own `ping` (PROTOCOL.md §6).
      autoPong: false,
      clientTracking: false,
      // Text messages are refused unread (PROTOCOL.md §11), so their UTF-8 is never looked at.
      skipUTF8Validation: true,
      handleProtocols: (offered) =>
        offered.has(WEBSOCKET_SUBPROTOCOL) ? WEBSOCKET_SUBPROTOCOL : false,
    });
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const { host, port, maxConnections, requestTimeoutMs } = this.#options;
    const server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        requestTimeout: requestTimeoutMs,
        // Node checks the two timeouts every this often (30 s by default): a slow upgrade
        // request would hold its connection that long.
        connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs),
      },
      (request, response) => this.#onRequest(request, response),
    );
    server.on('connection', (socket: Socket) => this.#onConnection(socket));
    server.headersTimeout = requestTimeoutMs;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = maxConnections;
    server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#onUpgrade(request, socket, head),
    );
    server.on('clientError', (_error, socket: Socket) => socket.destroy());
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.#allowed = new Set([...this.#options.origins, ...loopbackOrigins(bound)]);
    return bound;
  }

  /** Stops accepting; upgraded connections are the gateway's to close. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Idle keep-alive requests for the page must not hold the close up.
      server.closeIdleConnections();
    });
  }

  #onRequest(request: IncomingMessage, response: ServerResponse): void {
    if (this.#options.request) {
      this.#options.request(request, response);
      return;
    }
    response.writeHead(426, {
      'content-type': 'text/plain; charset=utf-8',
      upgrade: 'websocket',
      connection: 'Upgrade',
    });
    response.end(
      `a securechat/1 WebSocket endpoint: connect with subprotocol ${WEBSOCKET_SUBPROTOCOL}\n`,
    );
  }

  #onConnection(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const count = this.#pending.get(address) ?? 0;
    if (count >= this.#options.maxPendingPerAddress) {
      socket.destroy();
      return;
    }
    this.#pending.set(address, count + 1);
    this.#counted.add(socket);
    socket.once('close', () => this.#settle(socket));
  }

  /** The connection was upgraded or closed: it no longer counts as pending (once). */
  #settle(socket: Socket): void {
    if (!this.#counted.delete(socket)) return;
    const address = socket.remoteAddress ?? 'unknown';
    const count = (this.#pending.get(address) ?? 1) - 1;
    if (count <= 0) this.#pending.delete(address);
    else this.#pending.set(address, count);
  }

  #onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', ignoreError);
    this.#settle(socket);
    const remoteAddress = socket.remoteAddress ?? 'unknown';
    const problem = this.#refusal(request);
    if (problem !== undefined) {
      this.#options.refused?.(problem.reason, remoteAddress);
      socket.end(
        `HTTP/1.1 ${problem.status}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n\r\n${problem.reason}\n`,
      );
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', ignoreError);
      this.#options.accept(
        new WebSocketByteStream(ws, socket, remoteAddress, this.#options.stallTimeoutMs),
      );
    });
  }

  #refusal(request: IncomingMessage): { status: string; reason: string } | undefined {
    const origin = request.headers.origin;
    // A page from anywhere else must not reach the server through a visitor's browser. Programs
    // that are not browsers send no Origin (and could send any): they are let through, as on TCP.
    if (origin !== undefined && !this.#allowed.has(origin)) {
      return {
        status: '403 Forbidden',
        reason: `origin ${JSON.stringify(origin)} is not allowed (SECURECHAT_WS_ORIGINS)`,
      };
    }
    const offered = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((name) => name.trim());
    if (!offered.includes(WEBSOCKET_SUBPROTOCOL)) {
      return {
        status: '400 Bad Request',
        reason: `the WebSocket subprotocol ${WEBSOCKET_SUBPROTOCOL} is required`,
      };
    }
    return undefined;
  }
}

function ignoreError(): void {}

/** The origins of a page served by this listener itself, reached on loopback. */
function loopbackOrigins(port: number): string[] {
  return ['localhost', '127.0.0.1', '[::1]'].map((host) => `http://${host}:${port}`);
}
