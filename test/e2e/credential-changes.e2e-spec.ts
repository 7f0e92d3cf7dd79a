/**
 * Credential changes end sessions (issue 13, item 5), on real servers and sockets:
 *
 * - a password reset or a key change over the admin API ends the user's live sessions at once
 *   (`shutting_down` with the operator's reason), and says how many in its answer;
 * - a gateway that never got the order to close (simulated: the account is changed directly in
 *   the database, so no order is sent at all) still ends the session at its next recheck of its
 *   sessions' accounts (SECURECHAT_SESSION_RECHECK_SECONDS, 1 s here): distributed, over Redis
 *   to the auth process; and embedded, over the in-process bus (that server runs in this
 *   process, so that the test can reach its PGlite database while it runs).
 *
 * Sessions of accounts nobody changed stay open throughout. Nothing asserts a duration: each
 * wait is far longer than a recheck period (CLOSE_WAIT_MS), and far shorter than any other way
 * a session could end here (idle timeout 300 s).
 */
import 'reflect-metadata';

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';
import { sql } from 'drizzle-orm';
import { Client } from 'pg';

import {
  AdminApiClient,
  MemoryKnownServersStore,
  MemoryPeerKeyStore,
  SecureChatClient,
} from '@securechat/client';
import {
  type DatabaseHandle,
  InProcessBus,
  InProcessServer,
  loadConfig,
  openDatabase,
} from '@securechat/core';
import { GatewayServer, RECHECK_CLOSE_REASON } from '@securechat/gateway-tcp';
import { exportSpki, PeerError } from '@securechat/protocol';

import { EmbeddedModule } from '../../apps/embedded/src/embedded.module';
import { Cluster } from '../support/distributed-cluster';
import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';

jest.setTimeout(90_000);

const PASSWORD = 'correct horse battery staple';
/** Far longer than a recheck period (1 s, at most 1.25 s with its spread) plus a round. */
const CLOSE_WAIT_MS = 20_000;
const ENV = {
  ALLOW_REGISTRATION: 'true',
  SECURECHAT_INSECURE_FAST_HASH: 'true',
  SECURECHAT_SESSION_RECHECK_SECONDS: '1',
};

/** Each account's current private key, so that a second session or a new key can log in. */
const keys = new Map<string, KeyObject>();
let counter = 0;

interface Gateway {
  readonly port: number;
  readonly fingerprint: string;
}

/** A connected client that never reconnects: a new account, or a session of `username`. */
async function connect(gateway: Gateway, username?: string): Promise<SecureChatClient> {
  const action = username === undefined ? 'register' : 'login';
  username ??= `cc${process.pid}x${counter++}`;
  let privateKey = keys.get(username);
  if (!privateKey) keys.set(username, (privateKey = generateKeyPairSync('ed25519').privateKey));
  const client = new SecureChatClient({
    host: '127.0.0.1',
    port: gateway.port,
    username,
    password: PASSWORD,
    privateKey,
    action,
    trust: { store: new MemoryKnownServersStore(), policy: { fingerprint: gateway.fingerprint } },
    peerKeys: new MemoryPeerKeyStore(),
    reconnect: false,
    requestTimeoutMs: 10_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Resolves with the error the server ended the client's session with. */
function whenEnded(client: SecureChatClient): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    if (client.state === 'closed') {
      reject(new Error('the session had ended already'));
      return;
    }
    const timer = setTimeout(() => reject(new Error('the session was not closed')), CLOSE_WAIT_MS);
    client.on('state', (state, detail) => {
      if (state !== 'closed') return;
      clearTimeout(timer);
      resolve(detail?.error);
    });
  });
}

/** The client was told `shutting_down`, with `reason` as the message. */
function expectShutDown(error: Error | undefined, reason: string): void {
  expect(error).toBeInstanceOf(PeerError);
  expect(error).toMatchObject({ code: 'shutting_down', peerMessage: reason });
}

/** A session that is still open answers a ping (after several recheck periods, in the tests). */
async function expectOpen(client: SecureChatClient): Promise<void> {
  expect(client.state).not.toBe('closed');
  await expect(client.ping(7)).resolves.toMatchObject({ n: 7 });
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const open: SecureChatClient[] = [];
afterEach(async () => {
  await Promise.all(
    open
      .splice(0)
      .filter((c) => c.state !== 'closed')
      .map((c) => c.close()),
  );
});

function track(...clients: SecureChatClient[]): SecureChatClient[] {
  open.push(...clients);
  return clients;
}

describe('admin API changes, embedded server', () => {
  let server: RunningServer;
  let api: AdminApiClient;
  let gateway: Gateway;

  beforeAll(async () => {
    server = await startEmbeddedServer(ENV);
    api = new AdminApiClient({
      baseUrl: `http://127.0.0.1:${server.adminPort}`,
      token: server.adminToken(),
    });
    gateway = server;
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    if (server) removeDataDir(server);
  });

  it('a password reset ends every live session of the user, and no one else’s', async () => {
    const [alice, bob] = track(await connect(gateway), await connect(gateway));
    const [second] = track(await connect(gateway, alice!.username));
    const ended = [whenEnded(alice!), whenEnded(second!)];
    const answer = await api.resetPassword(alice!.username, 'a brand new password');
    expect(answer).toEqual({ username: alice!.username, password_reset: true, sessions_closed: 2 });
    for (const error of await Promise.all(ended)) {
      expectShutDown(error, 'password reset by an operator');
    }
    await expectOpen(bob!);
  });

  it('a key change ends the live session; the new key logs in', async () => {
    const [carol, dave] = track(await connect(gateway), await connect(gateway));
    const ended = whenEnded(carol!);
    const next = generateKeyPairSync('ed25519');
    const answer = await api.setPublicKey(carol!.username, exportSpki(next.publicKey));
    expect(answer).toMatchObject({ username: carol!.username, sessions_closed: 1 });
    expectShutDown(await ended, 'public key replaced by an operator');
    keys.set(carol!.username, next.privateKey);
    track(await connect(gateway, carol!.username));
    await expectOpen(dave!);
  });

  it('rechecks sessions over the in-process bus without ending any that may go on', async () => {
    const [erin] = track(await connect(gateway));
    // Several recheck periods: every round asked auth and found nothing to end.
    await settle(3_500);
    await expectOpen(erin!);
    expect(server.output()).not.toMatch(/session recheck stopped/);
  });
});

describe('a missed order, distributed (Redis, PostgreSQL)', () => {
  let cluster: Cluster;
  let database: Client;
  let gateway: Gateway;

  beforeAll(async () => {
    cluster = await Cluster.start({ env: ENV });
    database = new Client({ connectionString: cluster.databaseUrl });
    await database.connect();
    gateway = cluster.gateways[0]!;
  }, 120_000);

  afterAll(async () => {
    await database?.end();
    await cluster?.stop();
  });

  it('ends the session of an account disabled behind the gateways’ back', async () => {
    const [frank, gina] = track(await connect(gateway), await connect(gateway));
    const ended = whenEnded(frank!);
    // What a missed order leaves: the account changed, no gateway told.
    await database.query('UPDATE users SET disabled = true WHERE username = $1', [frank!.username]);
    expectShutDown(await ended, RECHECK_CLOSE_REASON.disabled);
    await expectOpen(gina!);
  });

  it('ends the session of an account whose credentials changed since its login', async () => {
    const [hank, ivan] = track(await connect(gateway), await connect(gateway));
    const ended = whenEnded(hank!);
    await database.query(
      'UPDATE users SET credentials_version = credentials_version + 1 WHERE username = $1',
      [hank!.username],
    );
    expectShutDown(await ended, RECHECK_CLOSE_REASON.changed);
    // A login after the change carries the new generation: that session stays.
    const again = await connect(gateway, hank!.username);
    track(again);
    await settle(3_500);
    await expectOpen(again);
    await expectOpen(ivan!);
  });
});

describe('a missed order, embedded (in this process)', () => {
  let app: INestApplication;
  let database: DatabaseHandle;
  let dataDir: string;
  let gateway: Gateway;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'securechat-recheck-'));
    const config = loadConfig({
      ...ENV,
      SECURECHAT_PORT: '0',
      SECURECHAT_DATA_DIR: dataDir,
      SECURECHAT_LOG_LEVEL: 'silent',
    });
    database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    const bus = new InProcessBus();
    // As apps/embedded/src/main.ts wires it, without the admin HTTP server and ops endpoints.
    app = await NestFactory.create(EmbeddedModule.forRoot({ config, database, bus }), {
      logger: ['error'],
      // A wiring error fails this suite with its cause, instead of exiting the test process.
      abortOnError: false,
    });
    app.connectMicroservice<MicroserviceOptions>({ strategy: new InProcessServer(bus) });
    await app.startAllMicroservices();
    await app.init();
    gateway = await app.get(GatewayServer).start();
  }, 90_000);

  afterAll(async () => {
    // The application closes the database it was given (baseProviders); without one, close it here.
    if (app) await app.close();
    else await database?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('ends the session of an account deleted behind the gateway’s back, and no one else’s', async () => {
    const [judy, kate] = track(await connect(gateway), await connect(gateway));
    const ended = whenEnded(judy!);
    await database.db.execute(
      sql`UPDATE users SET deleted_at = now() WHERE username = ${judy!.username}`,
    );
    expectShutDown(await ended, RECHECK_CLOSE_REASON.deleted);
    await expectOpen(kate!);
  });
});
