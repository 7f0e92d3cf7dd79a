/**
 * Operators closing live sessions (issue 6) through the admin HTTP API, on real processes:
 * `DELETE /admin/users/{u}/sessions` and `DELETE /admin/sessions/{id}` reach the gateway that
 * holds each session (in-process in the embedded server; over Redis to two gateway processes
 * in the distributed one), which ends it with `shutting_down` (docs/PROTOCOL.md §10, item 20)
 * at once, leaves everyone else alone, and stores its transcript `incomplete`.
 *
 * Each case prints the measured latency from the HTTP call to the client seeing its session
 * end (`[session-control]` lines); it is measured, not asserted (tests never assert timings).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

import {
  MemoryKnownServersStore,
  MemoryPeerKeyStore,
  MemoryTranscriptSink,
  SecureChatClient,
} from '@securechat/client';
import { parseTranscript, verifyTranscriptLog } from '@securechat/protocol';
import { PeerError } from '@securechat/protocol';

import { type AdminEndpoint, adminRequest } from '../support/admin-http';
import { Cluster } from '../support/distributed-cluster';
import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { eventually } from '../../libs/core/test/eventually';

jest.setTimeout(60_000);

const PASSWORD = 'correct horse battery staple';
/**
 * How long a client waits for the close before the test fails: far below every other way a
 * session could end here (idle timeout 300 s), so a close seen in time was the command's.
 */
const CLOSE_WAIT_MS = 10_000;
const ENV = { ALLOW_REGISTRATION: 'true', SECURECHAT_INSECURE_FAST_HASH: 'true' };

/** Each account's key, so that a second session of the same user can log in. */
const keys = new Map<string, KeyObject>();
let counter = 0;

interface Ended {
  readonly error: Error | undefined;
  readonly latencyMs: number;
}

/**
 * A connected client on `port` that never reconnects: a new account, or another session of
 * `username` when given.
 */
async function connect(
  port: number,
  fingerprint: string,
  username?: string,
  sink?: MemoryTranscriptSink,
): Promise<SecureChatClient> {
  const action = username === undefined ? 'register' : 'login';
  username ??= `sc${process.pid}x${counter++}`;
  let privateKey = keys.get(username);
  if (!privateKey) keys.set(username, (privateKey = generateKeyPairSync('ed25519').privateKey));
  const client = new SecureChatClient({
    host: '127.0.0.1',
    port,
    username,
    password: PASSWORD,
    privateKey,
    action,
    trust: { store: new MemoryKnownServersStore(), policy: { fingerprint } },
    peerKeys: new MemoryPeerKeyStore(),
    reconnect: false,
    requestTimeoutMs: 10_000,
    ...(sink ? { transcript: sink } : {}),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Resolves once the server ended the client's session: why, and how long after `since()`. */
function whenEnded(client: SecureChatClient, since: () => number): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the session was not closed')), CLOSE_WAIT_MS);
    client.on('state', (state, detail) => {
      if (state !== 'closed') return;
      clearTimeout(timer);
      resolve({ error: detail?.error, latencyMs: performance.now() - since() });
    });
  });
}

/** The client was told why: a fatal `shutting_down` carrying the operator's reason. */
function expectClosedByOperator(ended: Ended): void {
  expect(ended.error).toBeInstanceOf(PeerError);
  expect(ended.error).toMatchObject({ code: 'shutting_down' });
  expect(ended.error?.message).toMatch(/operator/);
}

const liveSessions = async (admin: AdminEndpoint, username: string) =>
  (
    await adminRequest<{ sessions: { session_id: string; gateway: string }[] }>(
      admin,
      'GET',
      `/admin/users/${username}/sessions`,
    )
  ).body.sessions;

const storedStatuses = async (admin: AdminEndpoint, username: string) =>
  (
    await adminRequest<{ sessions: { status: string }[] }>(
      admin,
      'GET',
      `/admin/users/${username}/transcripts`,
    )
  ).body.sessions.map((s) => s.status);

/** Closes all of `username`'s sessions over HTTP and waits for `clients` to see it. */
async function closeUserAndWatch(
  admin: AdminEndpoint,
  username: string,
  clients: SecureChatClient[],
): Promise<{ closed: number; ended: Ended[] }> {
  let start = 0;
  const watching = clients.map((c) => whenEnded(c, () => start));
  start = performance.now();
  const response = await adminRequest<{ closed: number }>(
    admin,
    'DELETE',
    `/admin/users/${username}/sessions`,
  );
  expect(response.status).toBe(200);
  return { closed: response.body.closed, ended: await Promise.all(watching) };
}

const latencies = (ended: Ended[]) => ended.map((e) => `${e.latencyMs.toFixed(1)} ms`).join(', ');

describe('closing sessions, embedded server', () => {
  let server: RunningServer;
  let admin: AdminEndpoint;
  const clients: SecureChatClient[] = [];
  const user = async (username?: string) => {
    const client = await connect(server.port, server.fingerprint, username);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startEmbeddedServer(ENV);
    admin = { port: server.adminPort, token: server.adminToken() };
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.filter((c) => c.state !== 'closed').map((c) => c.close()));
    await server?.stop();
    if (server) removeDataDir(server);
  });

  it('closes every session of a user at once, and no one else’s', async () => {
    const alice = await user();
    const again = await user(alice.username);
    const bob = await user();
    await eventually(async () => (await liveSessions(admin, alice.username)).length === 2, {
      what: 'presence',
    });

    const { closed, ended } = await closeUserAndWatch(admin, alice.username, [alice, again]);
    expect(closed).toBe(2);
    for (const e of ended) expectClosedByOperator(e);
    console.log(`[session-control] embedded: closed after ${latencies(ended)}`);

    await expect(bob.ping(1)).resolves.toMatchObject({ n: 1 });
    await eventually(async () => (await liveSessions(admin, alice.username)).length === 0, {
      what: 'presence cleared',
    });
    // Ended without bye: stored `incomplete`, like any other lost session.
    // Both sessions' rows must be there first: `every` holds for an empty list too.
    await eventually(
      async () => {
        const statuses = await storedStatuses(admin, alice.username);
        return statuses.length === 2 && statuses.every((s) => s !== 'open');
      },
      { what: 'transcripts closed' },
    );
    expect(await storedStatuses(admin, alice.username)).toEqual(['incomplete', 'incomplete']);
  });

  it('closes one session by id and leaves the user’s other session open', async () => {
    const carol = await user();
    const second = await user(carol.username);
    let start = 0;
    const ended = whenEnded(second, () => start);
    start = performance.now();
    const response = await adminRequest<{ closed: number }>(
      admin,
      'DELETE',
      `/admin/sessions/${second.sessionId!}`,
    );
    expect(response).toMatchObject({ status: 200, body: { closed: 1 } });
    expectClosedByOperator(await ended);
    await expect(carol.ping(2)).resolves.toMatchObject({ n: 2 });
    expect((await liveSessions(admin, carol.username)).map((s) => s.session_id)).toEqual([
      carol.sessionId,
    ]);
  });
});

describe('closing sessions, distributed (two gateways, Redis)', () => {
  let cluster: Cluster;
  let admin: AdminEndpoint;
  const clients: SecureChatClient[] = [];

  beforeAll(async () => {
    cluster = await Cluster.start({ gateway: 2, env: ENV });
    const auth = cluster.of('auth')[0]!;
    admin = { port: auth.ready.admin_port as number, token: cluster.env.ADMIN_TOKEN! };
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.filter((c) => c.state !== 'closed').map((c) => c.close()));
    await cluster?.stop();
  });

  it('closes a user’s sessions on both gateways, and no one else’s', async () => {
    const [first, second] = cluster.gateways;
    const alice = await connect(first!.port, first!.fingerprint);
    const onSecond = await connect(second!.port, second!.fingerprint, alice.username);
    const bob = await connect(second!.port, second!.fingerprint);
    clients.push(alice, onSecond, bob);
    await eventually(async () => (await liveSessions(admin, alice.username)).length === 2, {
      what: 'presence',
    });
    expect(new Set((await liveSessions(admin, alice.username)).map((s) => s.gateway)).size).toBe(2);

    const { closed, ended } = await closeUserAndWatch(admin, alice.username, [alice, onSecond]);
    expect(closed).toBe(2);
    for (const e of ended) expectClosedByOperator(e);
    console.log(`[session-control] distributed, 2 gateways: closed after ${latencies(ended)}`);

    await expect(bob.ping(3)).resolves.toMatchObject({ n: 3 });
    await eventually(async () => (await liveSessions(admin, alice.username)).length === 0, {
      what: 'presence cleared',
    });
    await eventually(
      async () => {
        const statuses = await storedStatuses(admin, alice.username);
        return statuses.length === 2 && statuses.every((s) => s === 'incomplete');
      },
      { what: 'transcripts closed' },
    );
  });

  it('exports, from the auth process, a transcript the client verifier accepts', async () => {
    const [gateway] = cluster.gateways;
    const sink = new MemoryTranscriptSink();
    const dora = await connect(gateway!.port, gateway!.fingerprint, undefined, sink);
    const erin = await connect(gateway!.port, gateway!.fingerprint);
    clients.push(erin);
    await dora.send(erin.username, 'hello over two processes');
    const result = await dora.close();
    expect(result).toMatchObject({ viewsMatch: true, signatureValid: true });
    await eventually(async () => (await storedStatuses(admin, dora.username)).includes('agreed'), {
      what: 'transcript stored',
    });
    const response = await adminRequest(admin, 'GET', `/admin/transcripts/${result.sessionId}`);
    expect(response.status).toBe(200);
    const exported = parseTranscript(response.text);
    expect(verifyTranscriptLog(exported, keys.get(dora.username)).ok).toBe(true);
    const own = parseTranscript(sink.sessions[0]!.lines.map((l) => JSON.stringify(l)).join('\n'));
    expect(exported.end?.receipt).toEqual(own.end?.receipt);
  });
});
