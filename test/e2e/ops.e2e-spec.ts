/**
 * The operations side over real sockets to real processes: /healthz, /readyz and /metrics of
 * the embedded server, counters that move with a login and a message, JSON logs with the
 * connection id and without the password, SIGTERM with a client connected (it is told
 * `shutting_down`, the process exits 0), and a distributed service whose /readyz follows its
 * Redis going away and coming back.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

import { Cluster } from '../support/distributed-cluster';
import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { HandshakeFailed, TestClient } from '../support/protocol-client';
import { PrivateRedis } from '../support/redis-server';
import { eventually } from '../../libs/core/test/eventually';

jest.setTimeout(180_000);

/** Counters of asynchronous work move a moment later; readiness follows Redis within seconds. */
const POLL_30S = { timeoutMs: 30_000, intervalMs: 100 } as const;

const PASSWORD = 'correct horse battery staple';
const keys: Record<string, KeyObject> = {};

interface Answer {
  readonly status: number;
  readonly body: string;
}

async function get(port: number, path: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Every sample of a Prometheus text page, by series (`name{labels}`). */
async function scrape(port: number): Promise<Map<string, number>> {
  const { status, body } = await get(port, '/metrics');
  expect(status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function connect(
  port: number,
  fingerprint: string,
  username: string,
  action: 'login' | 'register' = 'login',
  password = PASSWORD,
): Promise<TestClient> {
  keys[username] ??= generateKeyPairSync('ed25519').privateKey;
  return TestClient.connect({ port, username, password, key: keys[username], action, fingerprint });
}

describe('embedded server', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startEmbeddedServer({
      ALLOW_REGISTRATION: 'true',
      SECURECHAT_LOG_LEVEL: 'debug',
    });
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    if (server) removeDataDir(server);
  });

  it('announces its ops port and answers /healthz and /readyz', async () => {
    expect(server.opsPort).toBeGreaterThan(0);
    expect(server.opsPort).not.toBe(9090);
    const health = await get(server.opsPort, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    const ready = await get(server.opsPort, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ok', checks: { postgres: 'ok' } });
    expect((await get(server.opsPort, '/nothing-here')).status).toBe(404);
  });

  it('moves the securechat_ counters with logins, a refused login and a message', async () => {
    const before = await scrape(server.opsPort);
    for (const series of [
      'securechat_gateway_open_connections',
      'securechat_gateway_handshakes_total{result="ok"}',
      'securechat_auth_logins_total{result="ok"}',
      'securechat_relay_messages_stored_total',
      'securechat_relay_pending_deliveries',
    ]) {
      expect(before.has(series)).toBe(true);
    }
    const at = (samples: Map<string, number>, series: string) =>
      (samples.get(series) ?? 0) - (before.get(series) ?? 0);

    const alice = await connect(server.port, server.fingerprint, 'alice', 'register');
    const bob = await connect(server.port, server.fingerprint, 'bob', 'register');
    await expect(
      connect(server.port, server.fingerprint, 'bob', 'login', 'not the password'),
    ).rejects.toThrow(HandshakeFailed);

    const during = await scrape(server.opsPort);
    expect(during.get('securechat_gateway_open_connections')).toBe(2);
    expect(during.get('securechat_gateway_sessions_live')).toBe(2);

    const ack = await alice.sendAndAck('bob', 'hello over ops');
    expect(ack.type).toBe('ack');
    const deliver = await bob.receive(); // and confirms it with `delivered`
    expect(deliver.body).toBe('hello over ops');

    let after = before;
    await eventually(
      async () => {
        after = await scrape(server.opsPort);
        return at(after, 'securechat_relay_delivered_acks_total') === 1;
      },
      { what: 'the delivered ack counted', ...POLL_30S },
    );
    expect(at(after, 'securechat_gateway_handshakes_total{result="ok"}')).toBe(2);
    expect(at(after, 'securechat_gateway_handshakes_total{result="refused"}')).toBe(1);
    expect(at(after, 'securechat_gateway_auth_failures_total{reason="auth_failed"}')).toBe(1);
    expect(at(after, 'securechat_auth_logins_total{result="registered"}')).toBe(2);
    expect(at(after, 'securechat_auth_logins_total{result="auth_failed"}')).toBe(1);
    expect(at(after, 'securechat_relay_messages_stored_total')).toBe(1);
    expect(at(after, 'securechat_relay_store_latency_seconds_count')).toBe(1);
    expect(at(after, 'securechat_gateway_messages_delivered_total')).toBe(1);
    expect(at(after, 'securechat_gateway_delivery_latency_seconds_count')).toBe(1);

    await alice.close();
    await bob.close();
  });

  it('logs JSON lines with the connection id, and never the password or the body', () => {
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{"level"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).toContainEqual(
      expect.objectContaining({
        context: 'Connection',
        conn: expect.stringMatching(/^[0-9a-f]{12}$/),
        remote: '127.0.0.1',
        msg: 'logged in',
        user: 'alice',
      }),
    );
    expect(server.output()).not.toContain(PASSWORD);
    expect(server.output()).not.toContain('not the password');
    expect(server.output()).not.toContain('hello over ops');
  });

  it('on SIGTERM tells a connected client shutting_down and exits 0', async () => {
    const carol = await connect(server.port, server.fingerprint, 'carol', 'register');
    const told = carol.next('error', (m) => m.code === 'shutting_down', 30_000);
    const code = await server.stop('SIGTERM');
    expect(await told).toMatchObject({ type: 'error', code: 'shutting_down' });
    await carol.closed;
    expect(code).toBe(0);
    expect(server.output()).not.toContain('shutdown did not finish in time');
  });
});

describe('distributed services', () => {
  it("a service's /readyz is 503 while its Redis is down, and 200 again after", async () => {
    const redis = await PrivateRedis.start();
    const cluster = await Cluster.start({ auth: 1, relay: 1, gateway: 1, redisUrl: redis.url });
    try {
      const [auth] = cluster.of('auth');
      const [relay] = cluster.of('relay');
      const [gateway] = cluster.gateways;
      const ports = { auth: auth!.opsPort, relay: relay!.opsPort, gateway: gateway!.opsPort };
      expect(new Set(Object.values(ports)).size).toBe(3);
      for (const port of Object.values(ports)) {
        expect((await get(port, '/readyz')).status).toBe(200);
      }
      expect(JSON.parse((await get(ports.relay, '/readyz')).body)).toEqual({
        status: 'ok',
        checks: { postgres: 'ok', redis: 'ok' },
      });

      await redis.down();
      for (const [name, port] of Object.entries(ports)) {
        let last: Answer | undefined;
        await eventually(
          async () => {
            last = await get(port, '/readyz');
            return last.status === 503;
          },
          { what: `${name} unready`, ...POLL_30S },
        );
        const body = JSON.parse(last!.body) as { status: string; checks: Record<string, string> };
        expect(body.status).toBe('unavailable');
        expect(body.checks.redis).toMatch(/^error: /);
        if (name !== 'gateway') expect(body.checks.postgres).toBe('ok');
        // Alive all the same: an orchestrator must not restart it for a dependency's outage.
        expect((await get(port, '/healthz')).status).toBe(200);
      }

      await redis.up();
      for (const [name, port] of Object.entries(ports)) {
        await eventually(async () => (await get(port, '/readyz')).status === 200, {
          what: `${name} ready again`,
          ...POLL_30S,
        });
      }
      // The services still work end to end after the outage, metrics included.
      const metrics = await get(ports.auth, '/metrics');
      expect(metrics.body).toContain('securechat_auth_logins_total');
      expect(metrics.body).not.toContain('securechat_gateway_');
    } finally {
      await cluster.stop();
      await redis.stop();
    }
  });

  it('a service exits 0 on SIGTERM', async () => {
    const cluster = await Cluster.start({ auth: 1, relay: 1, gateway: 1 });
    try {
      for (const process of [...cluster.processes].reverse()) {
        expect(await process.stop('SIGTERM')).toBe(0);
      }
    } finally {
      await cluster.stop();
    }
  });
});
