/** The Prometheus adapter: one registry per instance, metrics per role, scrape-time gauges. */
import { PrometheusMetricsRepository } from './prometheus-metrics.repository';

const text = async (metrics: PrometheusMetricsRepository) => (await metrics.render()).body;

/** The value of one sample line, e.g. `securechat_auth_logins_total{result="ok"}`. */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

it('registers only the metrics of the roles the process runs', async () => {
  const auth = await text(new PrometheusMetricsRepository(['auth'], { defaultMetrics: false }));
  expect(auth).toContain('securechat_auth_logins_total');
  expect(auth).not.toContain('securechat_gateway_');
  expect(auth).not.toContain('securechat_relay_');
  expect(auth).not.toContain('process_cpu');
});

it('counts gateway events with fixed labels', async () => {
  const metrics = new PrometheusMetricsRepository(['gateway'], { defaultMetrics: false });
  metrics.handshake('ok');
  metrics.handshake('ok');
  metrics.handshake('timeout');
  metrics.authFailure('auth_failed');
  metrics.messageDelivered(20);
  metrics.messageDelivered(-5); // a clock step between hosts: counted, as zero latency
  const body = await text(metrics);
  expect(sample(body, 'securechat_gateway_handshakes_total{result="ok"}')).toBe(2);
  expect(sample(body, 'securechat_gateway_handshakes_total{result="timeout"}')).toBe(1);
  expect(sample(body, 'securechat_gateway_handshakes_total{result="refused"}')).toBe(0);
  expect(sample(body, 'securechat_gateway_auth_failures_total{reason="auth_failed"}')).toBe(1);
  expect(sample(body, 'securechat_gateway_messages_delivered_total')).toBe(2);
  expect(sample(body, 'securechat_gateway_delivery_latency_seconds_count')).toBe(2);
  expect(sample(body, 'securechat_gateway_delivery_latency_seconds_sum')).toBeCloseTo(0.02);
});

it('counts logins by result and throttled logins on their own', async () => {
  const metrics = new PrometheusMetricsRepository(['auth'], { defaultMetrics: false });
  metrics.login('ok');
  metrics.login('rate_limited');
  metrics.login('auth_failed');
  const body = await text(metrics);
  expect(sample(body, 'securechat_auth_logins_total{result="ok"}')).toBe(1);
  expect(sample(body, 'securechat_auth_logins_total{result="rate_limited"}')).toBe(1);
  expect(sample(body, 'securechat_auth_logins_total{result="auth_failed"}')).toBe(1);
  expect(sample(body, 'securechat_auth_logins_throttled_total')).toBe(1);
});

it('counts relay stores, their latency and delivery acks', async () => {
  const metrics = new PrometheusMetricsRepository(['relay'], { defaultMetrics: false });
  metrics.messageStored(3);
  metrics.deliveryAcked();
  const body = await text(metrics);
  expect(sample(body, 'securechat_relay_messages_stored_total')).toBe(1);
  expect(sample(body, 'securechat_relay_store_latency_seconds_bucket{le="0.005"}')).toBe(1);
  expect(sample(body, 'securechat_relay_store_latency_seconds_bucket{le="0.0025"}')).toBe(0);
  expect(sample(body, 'securechat_relay_delivered_acks_total')).toBe(1);
});

it('reads gauges from their sources at scrape time; a failing source keeps the last value', async () => {
  const metrics = new PrometheusMetricsRepository(['gateway', 'relay'], { defaultMetrics: false });
  let open = 3;
  metrics.gauge('open_connections', () => open);
  const pending = jest.fn<Promise<number>, []>().mockResolvedValueOnce(42);
  metrics.gauge('pending_deliveries', pending);
  let body = await text(metrics);
  expect(sample(body, 'securechat_gateway_open_connections')).toBe(3);
  expect(sample(body, 'securechat_relay_pending_deliveries')).toBe(42);

  open = 1;
  pending.mockRejectedValueOnce(new Error('database down'));
  body = await text(metrics);
  expect(sample(body, 'securechat_gateway_open_connections')).toBe(1);
  expect(sample(body, 'securechat_relay_pending_deliveries')).toBe(42);
});

it('calls for roles the process does not run are ignored', async () => {
  const metrics = new PrometheusMetricsRepository(['relay'], { defaultMetrics: false });
  metrics.login('ok');
  metrics.handshake('ok');
  metrics.gauge('open_connections', () => 1);
  expect(await text(metrics)).not.toMatch(/securechat_(auth|gateway)_/);
});

it('keeps each instance in its own registry', async () => {
  const a = new PrometheusMetricsRepository(['auth'], { defaultMetrics: false });
  const b = new PrometheusMetricsRepository(['auth'], { defaultMetrics: false });
  a.login('ok');
  expect(sample(await text(a), 'securechat_auth_logins_total{result="ok"}')).toBe(1);
  expect(sample(await text(b), 'securechat_auth_logins_total{result="ok"}')).toBe(0);
});
