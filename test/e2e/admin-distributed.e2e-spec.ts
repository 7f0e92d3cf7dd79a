/**
 * The admin API as the distributed deployment serves it: from the auth process (an HTTP
 * application beside its Redis Streams consumer), on PostgreSQL and Redis, with the token
 * required at start. An account made through one auth instance's API logs in through the
 * gateway, and a disable through the other instance ends its session on the gateway.
 */
import { generateKeyPairSync } from 'node:crypto';

import { AdminApiClient } from '@securechat/client';
import { exportSpki } from '@securechat/protocol';

import { Cluster } from '../support/distributed-cluster';
import { spawnService } from '../support/service-process';
import { HandshakeFailed, TestClient } from '../support/protocol-client';

jest.setTimeout(120_000);

const PASSWORD = 'correct horse battery staple';
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({
    auth: 2,
    env: { SECURECHAT_INSECURE_FAST_HASH: 'true' },
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

function adminOf(index: number): AdminApiClient {
  const auth = cluster.of('auth')[index]!;
  return new AdminApiClient({
    baseUrl: `http://127.0.0.1:${auth.ready.admin_port as number}`,
    token: cluster.env.ADMIN_TOKEN!,
  });
}

it('announces admin_port in each auth ready line', () => {
  for (const auth of cluster.of('auth')) expect(auth.ready.admin_port).toEqual(expect.any(Number));
});

it('creates, logs in, and disables across instances; the session ends on the gateway', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await adminOf(0).createUser({
    username: 'dist_user',
    password: PASSWORD,
    publicKey: exportSpki(publicKey),
  });
  const gateway = cluster.gateways[0]!;
  const connect = () =>
    TestClient.connect({
      port: gateway.port,
      username: 'dist_user',
      password: PASSWORD,
      key: privateKey,
      fingerprint: gateway.fingerprint,
    });
  const client = await connect();
  // Presence records the session just after login_ok: wait until the API sees it.
  while ((await adminOf(1).listUserSessions('dist_user')).sessions.length === 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(await adminOf(1).disableUser('dist_user')).toMatchObject({ sessions_closed: 1 });
  await client.closed;
  const refused = await connect().then(
    (c) => {
      c.destroy();
      return undefined;
    },
    (error: unknown) => (error instanceof HandshakeFailed ? error.code : error),
  );
  expect(refused).toBe('auth_failed');
  const audit = await adminOf(0).listAudit();
  expect(audit.entries.map((e) => e.action)).toEqual(['user.disable', 'user.create']);
});

it('refuses to start an auth process without ADMIN_TOKEN, listing it as a config problem', async () => {
  const failure = await spawnService('auth-no-token', 'apps/auth/src/main.ts', {
    ...cluster.env,
    ADMIN_TOKEN: '',
  }).then(
    () => new Error('started without ADMIN_TOKEN'),
    (error: Error) => error,
  );
  expect(failure.message).toContain('exited with 2');
  expect(failure.message).toContain('ADMIN_TOKEN: required');
});
