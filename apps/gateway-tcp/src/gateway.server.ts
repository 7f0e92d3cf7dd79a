import { createServer, type Server } from 'node:net';

import { Inject, Injectable, Logger, type OnModuleDestroy, Optional } from '@nestjs/common';
import {
  ClockRepository,
  CONFIG,
  FanoutPort,
  MetricsRepository,
  NoopMetricsRepository,
  PinoLoggerService,
  PresenceRepository,
  type SecureChatConfig,
} from '@securechat/core';
import { encodeFrame, serializeJson } from '@securechat/protocol';

import { ClientConnection, type ConnectionDeps, FRAME_STALL_TIMEOUT_MS } from './client-connection';
import { type ByteStream } from './framed-socket';
import { ConnectionLimiter } from './connection-limiter';
import { ConnectionLogger } from './connection-logger';
import { IdentityKeyRepository } from './identity-key.repository';
import { AuthClient, RelayClient } from './service-clients';
import { SessionCloser } from './session-closer';
import { SessionRegistry } from './session-registry';
import { TranscriptShipper } from './transcript-shipper';
import { checkoutWebDir, StaticFiles } from './static-files';
import { WebSocketListener } from './websocket-listener';

/** What the gateway accepts: a TCP socket, or a WebSocket seen as one (PROTOCOL.md §11). */
type AcceptedStream = ByteStream & {
  readonly remoteAddress?: string;
  off(event: 'error', listener: () => void): unknown;
};

/** Where the gateway listens, once started. */
export interface GatewayAddress {
  readonly host: string;
  readonly port: number;
  readonly fingerprint: string;
  /** The WebSocket binding's port, when it listens (SECURECHAT_WS_PORT). */
  readonly wsPort?: number;
}

/** Every accepted socket's first 'error' listener (one function, not a closure per socket). */
function ignoreSocketError(): void {}

/** How often this gateway tells presence it is alive (entries of dead gateways then expire). */
const PRESENCE_HEARTBEAT_MS = 5_000;

/**
 * The TCP listener: one ClientConnection per socket, caps enforced at accept, fan-out from the
 * relay delivered to the sessions this gateway holds.
 */
@Injectable()
export class GatewayServer implements OnModuleDestroy {
  readonly #logger = new Logger('Gateway');
  readonly #connections = new Set<ClientConnection>();
  #server: Server | undefined;
  #webSocket: WebSocketListener | undefined;
  #unsubscribe: (() => void) | undefined;
  #unsubscribeReconnect: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** What every connection is given: one object and one set of callbacks for all of them. */
  #connectionDeps: ConnectionDeps | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    private readonly identityKeys: IdentityKeyRepository,
    private readonly auth: AuthClient,
    private readonly relay: RelayClient,
    private readonly registry: SessionRegistry,
    private readonly limiter: ConnectionLimiter,
    private readonly transcripts: TranscriptShipper,
    private readonly clock: ClockRepository,
    private readonly fanout: FanoutPort,
    private readonly presence: PresenceRepository,
    @Optional() private readonly metrics: MetricsRepository = new NoopMetricsRepository(),
    /** The process's pino logger, for per-connection child loggers (Nest's Logger without it). */
    @Optional() private readonly logs?: PinoLoggerService,
    @Optional() private readonly closer?: SessionCloser,
  ) {
    // Read at scrape time: nothing to maintain on the accept path.
    metrics.gauge('open_connections', () => this.#connections.size);
    metrics.gauge('sessions_live', () => this.limiter.counts.sessions);
    metrics.gauge('transcript_backlog', () => this.transcripts.backlog);
  }

  /** Live connections (handshaking or in session). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Starts listening; resolves with the bound address once ready. */
  async start(): Promise<GatewayAddress> {
    const identity = this.identityKeys.load();
    this.#logger.log(`server identity fingerprint ${identity.fingerprint}`);
    this.#unsubscribe = this.fanout.subscribe((event) => {
      for (const user of event.recipients) {
        for (const target of this.registry.sessionsOf(user)) {
          try {
            target.deliver(event.message);
          } catch (error) {
            // One broken session must not stop delivery to the others; the message stays
            // pending for this one.
            this.#logger.error(`delivery failed: ${(error as Error).message}`);
          }
        }
      }
    });
    // Pub/sub is at most once: after an outage, resend what is pending from Postgres (PROTOCOL.md
    // §6).
    this.#unsubscribeReconnect = this.fanout.onReconnect(() => {
      this.#logger.warn(
        'fan-out channel reconnected; resending pending messages to local sessions',
      );
      for (const connection of this.#connections) void connection.resync();
    });
    await this.presence.heartbeat(this.config.gatewayId);
    this.#heartbeat = setInterval(() => {
      this.presence
        .heartbeat(this.config.gatewayId)
        .then((continuous) => {
          // A lapsed heartbeat means our entries may have been purged as a dead gateway's.
          if (!continuous) {
            for (const connection of this.#connections) {
              if (connection.phase === 'session') this.#presenceAdd(connection);
            }
          }
        })
        .catch((error: unknown) => {
          this.#logger.warn(`presence heartbeat failed: ${(error as Error).message}`);
        });
    }, PRESENCE_HEARTBEAT_MS);
    this.#heartbeat.unref();
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    server.maxConnections = this.config.limits.maxHandshakes + this.config.limits.maxSessions;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : this.config.port;
    this.#logger.log(`listening on ${this.config.host}:${port}`);
    const wsPort = await this.#startWebSocket();
    return {
      host: this.config.host,
      port,
      fingerprint: identity.fingerprint,
      ...(wsPort === undefined ? {} : { wsPort }),
    };
  }

  /** The WebSocket binding, when configured: same accept path, limits and timers as TCP. */
  async #startWebSocket(): Promise<number | undefined> {
    const { webSocket, limits } = this.config;
    if (typeof webSocket.port !== 'number') return undefined;
    const webDir = webSocket.webDir ?? checkoutWebDir();
    const files = webDir === undefined ? undefined : StaticFiles.load(webDir);
    if (files) this.#logger.log(`serving the web client from ${files.root} (${files.count} files)`);
    else if (webSocket.webDir !== undefined) {
      this.#logger.warn(`SECURECHAT_WEB_DIR=${webSocket.webDir} is not a directory: no web client`);
    }
    const listener = new WebSocketListener({
      host: webSocket.host,
      port: webSocket.port,
      origins: webSocket.origins,
      maxFrame: limits.maxFrame,
      maxConnections: limits.maxHandshakes + limits.maxSessions,
      requestTimeoutMs: limits.helloTimeoutMs,
      stallTimeoutMs: FRAME_STALL_TIMEOUT_MS,
      maxPendingPerAddress: limits.maxHandshakesPerAddress,
      accept: (stream) => this.#accept(stream),
      ...(files ? { request: files.handle.bind(files) } : {}),
      refused: (reason, remoteAddress) =>
        this.#logger.warn(`WebSocket upgrade from ${remoteAddress} refused: ${reason}`),
    });
    this.#webSocket = listener;
    const wsPort = await listener.start();
    this.#logger.log(`WebSocket binding listening on ${webSocket.host}:${wsPort}`);
    return wsPort;
  }

  #accept(socket: AcceptedStream): void {
    // First of all: a peer may have reset already, and an 'error' with no listener would
    // take the whole process down.
    socket.on('error', ignoreSocketError);
    const address = socket.remoteAddress ?? 'unknown';
    const verdict = this.limiter.tryStartHandshake(address);
    if (verdict !== 'ok') {
      // Plaintext, before any key exists (PROTOCOL.md §2). Sessions last long, so a full server
      // asks for a longer wait; handshake slots and accept tokens come back within seconds.
      const { message, retryAfter } = {
        too_many_sessions: { message: 'server is full', retryAfter: 5 },
        too_many_handshakes: { message: 'too many connections in progress', retryAfter: 1 },
        rate_limited: { message: 'too many new connections; slow down', retryAfter: 1 },
      }[verdict];
      socket.write(
        encodeFrame(
          serializeJson({ type: 'error', code: 'rate_limited', message, retry_after: retryAfter }),
        ),
        ignoreSocketError,
      );
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const connection = new ClientConnection(socket, (this.#connectionDeps ??= this.#deps()));
    this.#connections.add(connection);
    connection.start();
    // The connection listens for errors from here on: the stand-in can go (it would cost
    // every socket a listener array for its life).
    socket.off('error', ignoreSocketError);
  }

  /** Built once: per-connection closures would be kept by every connection for its life. */
  #deps(): ConnectionDeps {
    return {
      config: this.config,
      identity: this.identityKeys.load(),
      auth: this.auth,
      relay: this.relay,
      registry: this.registry,
      limiter: this.limiter,
      transcripts: this.transcripts,
      metrics: this.metrics,
      logger: (id, remoteAddress) =>
        this.logs ? new ConnectionLogger(this.logs, id, remoteAddress) : new Logger(`conn ${id}`),
      now: () => this.clock.now(),
      onSessionStart: (started) => {
        if (this.closer?.checkNewSession(started, started.loginStartedAt) === true) return;
        this.#presenceAdd(started);
      },
      onClosed: (closed) => {
        this.#connections.delete(closed);
        if (closed.hadSession) this.#presenceRemove(closed);
      },
    };
  }

  #presenceAdd(connection: ClientConnection): void {
    this.presence
      .add({
        sessionId: connection.sessionId,
        username: connection.username,
        gateway: this.config.gatewayId,
        sourceAddress: connection.remoteAddress,
        since: this.clock.now(),
      })
      .catch((error: unknown) =>
        this.#logger.warn(`presence not recorded: ${(error as Error).message}`),
      );
  }

  #presenceRemove(connection: ClientConnection): void {
    this.presence
      .remove(connection.sessionId, connection.username)
      .catch((error: unknown) =>
        this.#logger.warn(`presence not removed: ${(error as Error).message}`),
      );
  }

  /** Stops accepting, tells every client `shutting_down`, and ships the last transcripts. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#unsubscribeReconnect?.();
    this.#unsubscribeReconnect = undefined;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const server = this.#server;
    this.#server = undefined;
    const webSocket = this.#webSocket;
    this.#webSocket = undefined;
    const closed = Promise.all([
      server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined,
      webSocket?.stop(),
    ]);
    for (const connection of [...this.#connections]) {
      connection.shutdown('shutting_down', 'server is shutting down');
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await this.transcripts.onModuleDestroy();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }
}
