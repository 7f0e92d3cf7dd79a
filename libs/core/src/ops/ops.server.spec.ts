/**
 * The ops HTTP server on a loopback port with mocked readiness checks and a real (per-test)
 * Prometheus registry: status codes, bodies, and that a check that never answers is bounded.
 */
import { request } from 'node:http';

import { NoopMetricsRepository } from './metrics.repository';
import { OpsServer, type OpsServerOptions } from './ops.server';
import { PrometheusMetricsRepository } from './prometheus-metrics.repository';
import { type ReadinessCheck } from './readiness';

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

let server: OpsServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options: Partial<OpsServerOptions> = {}): Promise<number> {
  server = new OpsServer({
    host: '127.0.0.1',
    port: 0,
    checks: [],
    metrics: new NoopMetricsRepository(),
    ...options,
  });
  return server.start();
}

function get(port: number, path: string, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          body: text,
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ok = (name: string): ReadinessCheck => ({ name, check: () => Promise.resolve() });

it('answers /healthz with 200 {"status":"ok"}', async () => {
  const port = await start();
  const answer = await get(port, '/healthz');
  expect(answer.status).toBe(200);
  expect(answer.type).toBe('application/json');
  expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
});

it('answers /readyz with 200 and every check when all of them answer', async () => {
  const port = await start({ checks: [ok('postgres'), ok('redis')] });
  const answer = await get(port, '/readyz');
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toEqual({
    status: 'ok',
    checks: { postgres: 'ok', redis: 'ok' },
  });
});

it('answers /readyz with 503 naming the failed check and its error', async () => {
  const redis: ReadinessCheck = {
    name: 'redis',
    check: () => Promise.reject(new Error('connection reconnecting')),
  };
  const port = await start({ checks: [ok('postgres'), redis] });
  const answer = await get(port, '/readyz');
  expect(answer.status).toBe(503);
  expect(JSON.parse(answer.body)).toEqual({
    status: 'unavailable',
    checks: { postgres: 'ok', redis: 'error: connection reconnecting' },
  });
});

it('counts a check that never answers as failed once its timeout passes', async () => {
  const hangs: ReadinessCheck = { name: 'postgres', check: () => new Promise(() => undefined) };
  const port = await start({ checks: [hangs], checkTimeoutMs: 50 });
  const answer = await get(port, '/readyz');
  expect(answer.status).toBe(503);
  expect(JSON.parse(answer.body)).toEqual({
    status: 'unavailable',
    checks: { postgres: 'error: no answer within 50 ms' },
  });
});

it('answers /readyz with 503 once draining, even with every check passing', async () => {
  const port = await start({ checks: [ok('postgres')] });
  server!.drain();
  const answer = await get(port, '/readyz');
  expect(answer.status).toBe(503);
  expect(JSON.parse(answer.body)).toEqual({
    status: 'shutting_down',
    checks: { postgres: 'ok' },
  });
  // Liveness is not readiness: the process still runs.
  expect((await get(port, '/healthz')).status).toBe(200);
});

it('serves /metrics as Prometheus text with the registered securechat_ metrics', async () => {
  const metrics = new PrometheusMetricsRepository(['gateway', 'auth', 'relay']);
  metrics.login('ok');
  const port = await start({ metrics });
  const answer = await get(port, '/metrics');
  expect(answer.status).toBe(200);
  expect(answer.type).toContain('text/plain');
  for (const name of [
    'securechat_gateway_open_connections',
    'securechat_gateway_handshakes_total',
    'securechat_auth_logins_total',
    'securechat_relay_messages_stored_total',
    'process_cpu_user_seconds_total',
  ]) {
    expect(answer.body).toContain(`# TYPE ${name} `);
  }
  expect(answer.body).toContain('securechat_auth_logins_total{result="ok"} 1');
});

it('answers 500 on /metrics when rendering fails, and keeps serving', async () => {
  const metrics = new NoopMetricsRepository();
  jest.spyOn(metrics, 'render').mockRejectedValueOnce(new Error('registry broke'));
  const port = await start({ metrics });
  const failed = await get(port, '/metrics');
  expect(failed.status).toBe(500);
  expect(JSON.parse(failed.body)).toEqual({ status: 'error', error: 'registry broke' });
  expect((await get(port, '/healthz')).status).toBe(200);
});

it.each([
  ['GET', '/'],
  ['GET', '/metrics/extra'],
  ['GET', '/healthz/'],
  ['POST', '/healthz'],
  ['DELETE', '/readyz'],
])('answers 404 to %s %s', async (method, path) => {
  const port = await start({ checks: [ok('postgres')] });
  const answer = await get(port, path, method, method === 'POST' ? 'x'.repeat(1000) : undefined);
  expect(answer.status).toBe(404);
  expect(JSON.parse(answer.body)).toEqual({ status: 'not_found' });
});

it('ignores the query string', async () => {
  const port = await start();
  expect((await get(port, '/healthz?verbose=1')).status).toBe(200);
});
