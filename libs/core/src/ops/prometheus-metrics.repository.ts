import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import {
  type AuthFailureReason,
  type GaugeName,
  type GaugeSource,
  type HandshakeResult,
  type LoginOutcome,
  MetricsRepository,
  type MetricsText,
} from './metrics.repository';

/** Which parts run in this process: only their metrics are registered (embedded: all three). */
export type MetricsRole = 'gateway' | 'auth' | 'relay';

/** A gauge source slower than this keeps its previous value: a scrape must not hang on it. */
const GAUGE_READ_TIMEOUT_MS = 1_000;

/** Seconds: from a few milliseconds (live fan-out) to minutes (redelivery at the next login). */
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600];
/** Seconds: a group commit is a few milliseconds; seconds mean PostgreSQL is struggling. */
const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

const HANDSHAKE_RESULTS: HandshakeResult[] = ['ok', 'refused', 'timeout', 'failed'];
const AUTH_FAILURE_REASONS: AuthFailureReason[] = [
  'auth_failed',
  'rate_limited',
  'forbidden',
  'bad_request',
  'conflict',
  'timeout',
  'unavailable',
  'server_full',
  'user_limit',
];
const LOGIN_OUTCOMES: LoginOutcome[] = [
  'ok',
  'registered',
  'auth_failed',
  'rate_limited',
  'forbidden',
  'bad_request',
  'conflict',
];

interface GatewayMetrics {
  readonly handshakes: Counter<'result'>;
  readonly authFailures: Counter<'reason'>;
  readonly delivered: Counter;
  readonly deliveryLatency: Histogram;
}

interface AuthMetrics {
  readonly logins: Counter<'result'>;
  readonly throttled: Counter;
}

interface RelayMetrics {
  readonly stored: Counter;
  readonly storeLatency: Histogram;
  readonly acks: Counter;
}

/**
 * prom-client behind MetricsRepository, with a registry of its own (not prom-client's global
 * one), so that each process — and each test — exposes exactly what it registered.
 */
export class PrometheusMetricsRepository extends MetricsRepository {
  readonly registry = new Registry();
  readonly #sources = new Map<GaugeName, GaugeSource>();
  readonly #gateway: GatewayMetrics | undefined;
  readonly #auth: AuthMetrics | undefined;
  readonly #relay: RelayMetrics | undefined;

  constructor(roles: readonly MetricsRole[], options: { defaultMetrics?: boolean } = {}) {
    super();
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) {
      // Unprefixed (process_*, nodejs_*): the names standard dashboards expect.
      collectDefaultMetrics({ register: this.registry });
    }
    if (roles.includes('gateway')) {
      this.#gauge(
        'open_connections',
        'securechat_gateway_open_connections',
        'TCP connections open (handshaking or in session)',
      );
      this.#gauge(
        'sessions_live',
        'securechat_gateway_sessions_live',
        'Logged-in sessions on this gateway',
      );
      this.#gauge(
        'transcript_backlog',
        'securechat_gateway_transcript_backlog',
        'Transcript entries queued for the relay',
      );
      const handshakes = new Counter({
        name: 'securechat_gateway_handshakes_total',
        help: 'Handshakes ended, by result (ok, refused, timeout, failed)',
        labelNames: ['result'],
        registers,
      });
      for (const result of HANDSHAKE_RESULTS) handshakes.inc({ result }, 0);
      const authFailures = new Counter({
        name: 'securechat_gateway_auth_failures_total',
        help: 'Logins refused at the gateway, by reason',
        labelNames: ['reason'],
        registers,
      });
      for (const reason of AUTH_FAILURE_REASONS) authFailures.inc({ reason }, 0);
      this.#gateway = {
        handshakes,
        authFailures,
        delivered: new Counter({
          name: 'securechat_gateway_messages_delivered_total',
          help: 'deliver records written to clients',
          registers,
        }),
        deliveryLatency: new Histogram({
          name: 'securechat_gateway_delivery_latency_seconds',
          help: 'From the relay storing a message (server_ts) to its deliver being written',
          buckets: DELIVERY_BUCKETS,
          registers,
        }),
      };
    }
    if (roles.includes('auth')) {
      const logins = new Counter({
        name: 'securechat_auth_logins_total',
        help: 'Login and registration decisions, by result',
        labelNames: ['result'],
        registers,
      });
      for (const result of LOGIN_OUTCOMES) logins.inc({ result }, 0);
      this.#auth = {
        logins,
        throttled: new Counter({
          name: 'securechat_auth_logins_throttled_total',
          help: 'Logins refused by throttling before any other work',
          registers,
        }),
      };
    }
    if (roles.includes('relay')) {
      this.#gauge(
        'pending_deliveries',
        'securechat_relay_pending_deliveries',
        'Deliveries stored and not yet confirmed by their recipient',
      );
      this.#relay = {
        stored: new Counter({
          name: 'securechat_relay_messages_stored_total',
          help: 'Messages stored durably (duplicates of a stored send excluded)',
          registers,
        }),
        storeLatency: new Histogram({
          name: 'securechat_relay_store_latency_seconds',
          help: 'From the relay receiving a send to the message being durable',
          buckets: STORE_BUCKETS,
          registers,
        }),
        acks: new Counter({
          name: 'securechat_relay_delivered_acks_total',
          help: 'delivered confirmations received from recipients',
          registers,
        }),
      };
    }
  }

  handshake(result: HandshakeResult): void {
    this.#gateway?.handshakes.inc({ result });
  }

  authFailure(reason: AuthFailureReason): void {
    this.#gateway?.authFailures.inc({ reason });
  }

  messageDelivered(latencyMs: number): void {
    if (!this.#gateway) return;
    this.#gateway.delivered.inc();
    this.#gateway.deliveryLatency.observe(Math.max(0, latencyMs) / 1000);
  }

  login(outcome: LoginOutcome): void {
    if (!this.#auth) return;
    this.#auth.logins.inc({ result: outcome });
    if (outcome === 'rate_limited') this.#auth.throttled.inc();
  }

  messageStored(latencyMs: number): void {
    if (!this.#relay) return;
    this.#relay.stored.inc();
    this.#relay.storeLatency.observe(Math.max(0, latencyMs) / 1000);
  }

  deliveryAcked(): void {
    this.#relay?.acks.inc();
  }

  gauge(name: GaugeName, source: GaugeSource): void {
    this.#sources.set(name, source);
  }

  async render(): Promise<MetricsText> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A gauge read from its source at scrape time; a failing or slow source keeps the last value. */
  #gauge(key: GaugeName, name: string, help: string): void {
    const sources = this.#sources;
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        const source = sources.get(key);
        if (!source) return;
        let timer: NodeJS.Timeout | undefined;
        try {
          const value = await Promise.race([
            Promise.resolve().then(source),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error('timeout')), GAUGE_READ_TIMEOUT_MS);
            }),
          ]);
          this.set(value);
        } catch {
          // Keep the previous value; the readiness check reports the dependency itself.
        } finally {
          clearTimeout(timer);
        }
      },
    });
  }
}
