/**
 * The operations endpoints of one process, on their own port: /healthz (the process runs),
 * /readyz (its dependencies answer), /metrics (Prometheus). Plain node:http, deliberately
 * small: GET only, request bodies never read, short timeouts and a handful of connections,
 * because this port faces monitoring, not users, and must stay cheap when a scraper misbehaves.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { type MetricsRepository } from './metrics.repository';
import { type ReadinessCheck } from './readiness';

export interface OpsServerOptions {
  readonly host: string;
  /** 0: any free port (see `port` after start). */
  readonly port: number;
  readonly checks: readonly ReadinessCheck[];
  readonly metrics: MetricsRepository;
  /** How long one readiness check may take before it counts as failed. */
  readonly checkTimeoutMs?: number;
  /** Connections open at once; more are refused by the kernel backlog, then dropped. */
  readonly maxConnections?: number;
}

const DEFAULT_CHECK_TIMEOUT_MS = 2_000;
const DEFAULT_MAX_CONNECTIONS = 16;
/** Headers and the whole request must arrive within this; an idle socket is closed after it. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Error texts in /readyz are for humans; a long one is cut here. */
const MAX_ERROR_TEXT = 200;

export class OpsServer {
  readonly #options: OpsServerOptions;
  #server: Server | undefined;
  #draining = false;
  #port = 0;

  constructor(options: OpsServerOptions) {
    this.#options = options;
  }

  /** The bound port (after start). */
  get port(): number {
    return this.#port;
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const server = createServer(
      {
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: REQUEST_TIMEOUT_MS,
        maxHeaderSize: 8 * 1024,
      },
      (req, res) => this.#handle(req, res),
    );
    server.maxConnections = this.#options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.setTimeout(REQUEST_TIMEOUT_MS, (socket) => socket.destroy());
    server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const address = server.address();
    this.#port = typeof address === 'object' && address ? address.port : this.#options.port;
    return this.#port;
  }

  /** From now on /readyz answers 503: load balancers stop sending work while we drain. */
  drain(): void {
    this.#draining = true;
  }

  /** Stops listening and drops open connections (scrapers reconnect elsewhere or later). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    // A body is never read: a request that announces one gets its answer and a closed socket.
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (hasBody) res.shouldKeepAlive = false;
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.#json(res, 404, { status: 'not_found' });
      return;
    }
    switch (path) {
      case '/healthz':
        this.#json(res, 200, { status: 'ok' });
        return;
      case '/readyz':
        void this.#ready(res);
        return;
      case '/metrics':
        void this.#metrics(res);
        return;
      default:
        this.#json(res, 404, { status: 'not_found' });
    }
  }

  async #ready(res: ServerResponse): Promise<void> {
    const timeoutMs = this.#options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    const results = await Promise.all(
      this.#options.checks.map(async (check) => {
        try {
          await withTimeout(check.check(), timeoutMs);
          return [check.name, 'ok'] as const;
        } catch (error) {
          return [check.name, `error: ${errorText(error)}`] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const ok = !this.#draining && results.every(([, result]) => result === 'ok');
    const status = ok ? 'ok' : this.#draining ? 'shutting_down' : 'unavailable';
    this.#json(res, ok ? 200 : 503, { status, checks });
  }

  async #metrics(res: ServerResponse): Promise<void> {
    try {
      const { contentType, body } = await this.#options.metrics.render();
      this.#send(res, 200, contentType, body);
    } catch (error) {
      this.#json(res, 500, { status: 'error', error: errorText(error) });
    }
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    this.#send(res, status, 'application/json', JSON.stringify(body));
  }

  #send(res: ServerResponse, status: number, contentType: string, body: string): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
