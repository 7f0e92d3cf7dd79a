/**
 * The admin HTTP API (issue 6) against the embedded server as a real process, through the
 * typed client the CLI uses (libs/client AdminApiClient) and raw fetch where the test needs
 * the HTTP itself. Logins go over securechat/1 with the test client, so each account change
 * is checked by what a user then experiences.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { AdminApiClient, AdminApiError } from '@securechat/client';
import { exportSpki, fingerprint } from '@securechat/protocol';

import { removeDataDir, type RunningServer, startEmbeddedServer } from '../support/embedded-server';
import { HandshakeFailed, TestClient } from '../support/protocol-client';

jest.setTimeout(60_000);

const PASSWORD = 'correct horse battery staple';

let server: RunningServer;
let api: AdminApiClient;
let base: string;
const keys = new Map<string, KeyObject>();

beforeAll(async () => {
  server = await startEmbeddedServer({
    SECURECHAT_INSECURE_FAST_HASH: 'true',
    THROTTLE_USER_FAILURES: '3',
  });
  base = `http://127.0.0.1:${server.adminPort}`;
  api = new AdminApiClient({ baseUrl: base, token: server.adminToken() });
});

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
});

function newKey(): { privateKey: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, spki: exportSpki(publicKey) };
}

async function createUser(username: string, password = PASSWORD) {
  const key = newKey();
  keys.set(username, key.privateKey);
  const created = await api.createUser({ username, password, publicKey: key.spki });
  return { created, key };
}

function login(username: string, password = PASSWORD, key = keys.get(username)!) {
  return TestClient.connect({
    port: server.port,
    username,
    password,
    key,
    fingerprint: server.fingerprint,
  });
}

/** The error code a login fails with; throws if it succeeds. */
async function loginFailure(username: string, password = PASSWORD, key = keys.get(username)!) {
  try {
    const client = await login(username, password, key);
    client.destroy();
  } catch (error) {
    if (error instanceof HandshakeFailed) return error.code;
    throw error;
  }
  throw new Error('login unexpectedly succeeded');
}

async function loginWorks(username: string, password = PASSWORD, key = keys.get(username)!) {
  const client = await login(username, password, key);
  await client.close();
}

/**
 * The user's live sessions once presence lists `count` of them: the gateway records a session
 * just after login_ok, so the API may see it a moment later (the test's timeout bounds this).
 */
async function liveSessions(username: string, ids: string[]) {
  for (;;) {
    const { sessions } = await api.listUserSessions(username);
    const listed = sessions.map((s) => s.session_id).sort();
    if (JSON.stringify(listed) === JSON.stringify([...ids].sort())) return sessions;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const apiError = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected AdminApiError');
    },
    (error: unknown) => {
      if (error instanceof AdminApiError) return error;
      throw error;
    },
  );

describe('the admin token', () => {
  it('is generated into a 0600 file on first start, and never printed', async () => {
    const file = join(server.dataDir, 'admin-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(server.adminToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The summary naming the file follows the ready line; wait for it (the test's timeout bounds this).
    while (!server.output().includes(file)) await new Promise((r) => setTimeout(r, 20));
    expect(server.output()).not.toContain(server.adminToken());
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${'x'.repeat(43)}` }],
    ['the token under another scheme', { authorization: 'Basic dG9rZW4=' }],
  ])('answers 401 unauthorized to %s', async (_case, headers: Record<string, string>) => {
    for (const path of ['/admin/users', '/admin/audit', '/admin/openapi.json']) {
      const response = await fetch(base + path, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="securechat-admin"');
      expect(await response.json()).toEqual({
        code: 'unauthorized',
        message: 'a valid admin bearer token is required',
      });
    }
    const mutation = await fetch(`${base}/admin/users/anyone/disable`, { method: 'POST', headers });
    expect(mutation.status).toBe(401);
    expect(mutation.headers.get('www-authenticate')).toBe('Bearer realm="securechat-admin"');
  });

  it('serves the OpenAPI document behind the token, and no Swagger UI by default', async () => {
    const document = await api.openApi();
    expect(document).toMatchObject({ openapi: expect.stringMatching(/^3\./) });
    const paths = Object.keys(document.paths as object);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/admin/users',
        '/admin/users/{username}',
        '/admin/users/{username}/public-key',
        '/admin/sessions',
        '/admin/transcripts/{sessionId}',
        '/admin/transcripts/purge',
        '/admin/audit',
      ]),
    );
    // SECURECHAT_ADMIN_DOCS is off: neither the page nor its script (which would embed the
    // document) is served without the token.
    for (const path of ['/admin/docs', '/admin/docs/swagger-ui-init.js']) {
      const ui = await fetch(base + path);
      expect(ui.status).toBe(404);
      expect(await ui.text()).not.toContain('/admin/users/{username}');
    }
  });
});

describe('accounts', () => {
  it('creates a user: 201 with the key fingerprint, then it logs in', async () => {
    const key = newKey();
    keys.set('alice', key.privateKey);
    const response = await fetch(`${base}/admin/users`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.adminToken()}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        username: 'alice',
        password: PASSWORD,
        public_key: key.spki.toString('base64'),
      }),
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({
      username: 'alice',
      fingerprint: fingerprint(key.spki),
      disabled: false,
      deleted: false,
      deleted_at: null,
      created_at: expect.any(String),
    });
    await loginWorks('alice');
  });

  it('takes the key as PEM too', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    keys.set('bob_rsa', privateKey);
    const created = await api.createUser({
      username: 'bob_rsa',
      password: PASSWORD,
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    expect(created.fingerprint).toBe(fingerprint(exportSpki(publicKey)));
    await loginWorks('bob_rsa');
  });

  it('answers 400 with every invalid field, and 409 for a taken name', async () => {
    const invalid = await apiError(
      api.createUser({ username: 'No Way', password: 'short', publicKey: 'bm90IGEga2V5' }),
    );
    expect(invalid.status).toBe(400);
    expect(invalid.code).toBe('bad_request');
    expect(invalid.errors.map((e) => e.field).sort()).toEqual(['password', 'username']);
    // The key policy (here: not a key at all) is AuthService's, answered the same way.
    const badKey = await apiError(
      api.createUser({ username: 'carol', password: PASSWORD, publicKey: 'bm90IGEga2V5' }),
    );
    expect(badKey).toMatchObject({ status: 400, errors: [{ field: 'public_key' }] });

    const raw = (body: string) =>
      fetch(`${base}/admin/users`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${server.adminToken()}`,
          'content-type': 'application/json',
        },
        body,
      });
    const malformed = await raw('{"username": ');
    expect([malformed.status, await malformed.json()]).toEqual([
      400,
      {
        code: 'bad_request',
        message: 'the request is invalid',
        errors: [{ field: 'body', message: 'is not valid JSON' }],
      },
    ]);
    const huge = await raw(JSON.stringify({ username: 'x'.repeat(100_000) }));
    expect([huge.status, ((await huge.json()) as { code: string }).code]).toEqual([
      413,
      'payload_too_large',
    ]);

    // A body that is not JSON is refused as such, not as a missing body.
    const text = await fetch(`${base}/admin/users/alice/password`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken()}`, 'content-type': 'text/plain' },
      body: 'a brand new password',
    });
    expect([text.status, ((await text.json()) as { code: string }).code]).toEqual([
      415,
      'unsupported_media_type',
    ]);

    const taken = await apiError(
      api.createUser({ username: 'alice', password: PASSWORD, publicKey: newKey().spki }),
    );
    expect(taken).toMatchObject({ status: 409, code: 'user_exists' });
  });

  it('lists by page, searches by part of the name, and gets one', async () => {
    await createUser('alina');
    await createUser('zed');
    const first = await api.listUsers({ limit: 2 });
    expect(first.users.map((u) => u.username)).toEqual(['alice', 'alina']);
    expect(first.next_cursor).toBe('alina');
    const rest = await api.listUsers({ cursor: first.next_cursor! });
    expect(rest.users.map((u) => u.username)).toEqual(['bob_rsa', 'zed']);
    expect(rest.next_cursor).toBeNull();
    expect((await api.listUsers({ query: 'li' })).users.map((u) => u.username)).toEqual([
      'alice',
      'alina',
    ]);
    expect(await api.getUser('zed')).toMatchObject({ username: 'zed', disabled: false });
    expect(await apiError(api.getUser('nobody'))).toMatchObject({
      status: 404,
      code: 'user_not_found',
    });
    expect(await apiError(api.listUsers({ limit: 0 }))).toMatchObject({
      status: 400,
      errors: [{ field: 'limit' }],
    });
  });

  it('disables: logins fail like any failure; enables: they work again', async () => {
    expect(await api.disableUser('alice')).toMatchObject({ disabled: true });
    expect((await api.getUser('alice')).disabled).toBe(true);
    expect(await loginFailure('alice')).toBe('auth_failed');
    await api.enableUser('alice');
    await loginWorks('alice');
  });

  it('ends the live session of a user who is disabled', async () => {
    await createUser('dora');
    const client = await login('dora');
    const sessions = await liveSessions('dora', [client.loginOk.session_id]);
    expect(sessions).toEqual([
      expect.objectContaining({ username: 'dora', source_address: expect.any(String) }),
    ]);
    expect((await api.listSessions()).sessions.map((s) => s.username)).toContain('dora');
    expect(await api.disableUser('dora')).toMatchObject({ sessions_closed: 1 });
    await client.closed;
    await api.enableUser('dora');
  });

  it('resets a password: the old one fails, the new one works', async () => {
    await api.resetPassword('alice', 'a brand new password');
    expect(await loginFailure('alice', PASSWORD)).toBe('auth_failed');
    await loginWorks('alice', 'a brand new password');
    await api.resetPassword('alice', PASSWORD);
  });

  it('rotates a key: the next login needs the new one', async () => {
    const old = keys.get('alice')!;
    const next = newKey();
    const updated = await api.setPublicKey('alice', next.spki);
    expect(updated.fingerprint).toBe(fingerprint(next.spki));
    expect(await loginFailure('alice', PASSWORD, old)).toBe('auth_failed');
    keys.set('alice', next.privateKey);
    await loginWorks('alice');
  });

  it('clears the login throttle of a username', async () => {
    await createUser('erin');
    for (let i = 0; i < 3; i++)
      expect(await loginFailure('erin', 'not the password')).toBe('auth_failed');
    expect(await loginFailure('erin')).toBe('rate_limited');
    await api.clearThrottle('erin');
    await loginWorks('erin');
  });

  it('closes the sessions of a user on demand, and one session by id', async () => {
    const first = await login('zed');
    await liveSessions('zed', [first.loginOk.session_id]);
    expect((await api.closeUserSessions('zed')).closed).toBe(1);
    await first.closed;
    const second = await login('zed');
    const [entry] = await liveSessions('zed', [second.loginOk.session_id]);
    expect((await api.closeSession(entry!.session_id)).closed).toBe(1);
    await second.closed;
    // Not listed, but the order went out to every gateway (and is audited): no 404.
    expect(await api.closeSession('s-nosuchsession')).toEqual({ closed: 0, listed: false });
  });

  it('deletes: no more logins, the name stays taken and listed as deleted', async () => {
    expect(await api.deleteUser('alina')).toMatchObject({ deleted: true });
    expect(await api.getUser('alina')).toMatchObject({
      deleted: true,
      deleted_at: expect.any(String),
    });
    expect(await loginFailure('alina')).toBe('auth_failed');
    expect(await apiError(api.deleteUser('alina'))).toMatchObject({ code: 'user_not_found' });
    expect(
      await apiError(
        api.createUser({ username: 'alina', password: PASSWORD, publicKey: newKey().spki }),
      ),
    ).toMatchObject({ code: 'user_exists' });
  });
});

describe('transcripts', () => {
  it("lists a user's stored sessions and exports one as transcript-log lines", async () => {
    await loginWorks('bob_rsa');
    // The gateway ships transcripts behind the session: wait until both sessions are stored
    // and ended (bounded by the test's timeout, not asserted as a time).
    let sessions: Awaited<ReturnType<AdminApiClient['listTranscripts']>>['sessions'] = [];
    while (sessions.filter((s) => s.status === 'agreed').length < 2) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      sessions = (await api.listTranscripts('bob_rsa')).sessions;
    }
    expect(sessions[0]).toMatchObject({ username: 'bob_rsa', mode: 'full', status: 'agreed' });
    expect(Date.parse(sessions[0]!.started_at)).toBeGreaterThanOrEqual(
      Date.parse(sessions[1]!.started_at),
    );
    const text = await api.exportTranscript(sessions[0]!.session_id);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type?: string });
    expect(lines.length).toBeGreaterThan(1);
    // Paged by (start, id): the second page holds exactly the session the first did not.
    const first = await api.listTranscripts('bob_rsa', { limit: 1 });
    expect(first.sessions.map((s) => s.session_id)).toEqual([sessions[0]!.session_id]);
    const second = await api.listTranscripts('bob_rsa', { limit: 1, cursor: first.next_cursor! });
    expect(second.sessions.map((s) => s.session_id)).toEqual([sessions[1]!.session_id]);
    // Cursors too large for the database or a Date are a 400 naming the field, not a 500.
    expect(await apiError(api.listAudit({ cursor: '9999999999999999999' }))).toMatchObject({
      status: 400,
      errors: [{ field: 'cursor' }],
    });
    expect(
      await apiError(api.listTranscripts('bob_rsa', { cursor: '9999999999999999.s-1' })),
    ).toMatchObject({ status: 400, errors: [{ field: 'cursor' }] });
    expect(await apiError(api.exportTranscript('s-nosuchsession'))).toMatchObject({
      status: 404,
      code: 'transcript_not_found',
    });
  });

  it('purges the records of ended sessions, keeping their receipts; their export is refused', async () => {
    const bobs = (await api.listTranscripts('bob_rsa')).sessions.map((s) => s.session_id);
    expect(bobs).toHaveLength(2);
    // Both of bob's sessions ended before this instant (the previous test saw them agreed).
    const before = new Date().toISOString();

    const dry = await api.purgeTranscripts({ before, dryRun: true, limit: 1000 });
    expect(dry).toMatchObject({ dry_run: true, more: false, next_cursor: null });
    const listed = dry.sessions.filter((s) => bobs.includes(s.session_id));
    expect(listed).toHaveLength(2);
    for (const s of listed) {
      expect(s).toMatchObject({ status: 'agreed', receipt: true, countersigned: true });
      expect(s.chunks).toBeGreaterThan(0);
      expect(s.bytes).toBeGreaterThan(0);
    }
    // A dry run deletes nothing: the session still exports whole.
    expect((await api.exportTranscript(bobs[0]!)).trimEnd().split('\n').at(-1)).toContain(
      '"kind":"end"',
    );

    // A cutoff in the future would take sessions still going on.
    const future = new Date(Date.now() + 86_400_000);
    expect(await apiError(api.purgeTranscripts({ before: future }))).toMatchObject({
      status: 400,
      errors: [{ field: 'before', message: 'must not be in the future' }],
    });

    const purged = await api.purgeTranscripts({ before, limit: 1000 });
    expect(purged).toMatchObject({ dry_run: false, more: false, before });
    expect(purged.sessions.map((s) => s.session_id)).toEqual(
      expect.arrayContaining(dry.sessions.map((s) => s.session_id)),
    );
    expect(purged.totals.sessions).toBe(purged.sessions.length);
    expect(purged.totals.with_receipt + purged.totals.without_receipt).toBe(purged.totals.sessions);
    expect(purged.totals.bytes).toBeGreaterThan(0);

    // The rows stay, marked; the export says why there is none, and serves nothing partial.
    const after = (await api.listTranscripts('bob_rsa')).sessions;
    expect(after.map((s) => s.session_id).sort()).toEqual([...bobs].sort());
    for (const s of after) {
      expect(s).toMatchObject({ status: 'agreed', records_purged_at: expect.any(String) });
    }
    const refused = await fetch(`${base}/admin/transcripts/${bobs[0]}`, {
      headers: { authorization: `Bearer ${server.adminToken()}` },
    });
    expect(refused.status).toBe(410);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await refused.json()).toMatchObject({ code: 'transcript_purged' });

    // Done with them: the same purge again finds nothing of theirs.
    const again = await api.purgeTranscripts({ before, limit: 1000 });
    expect(again.sessions.filter((s) => bobs.includes(s.session_id))).toEqual([]);
  });
});

describe('the audit log', () => {
  it('has one entry per change and export, newest first, without secrets', async () => {
    const entries = [];
    let cursor: string | undefined;
    do {
      const page = await api.listAudit({ limit: 7, ...(cursor ? { cursor } : {}) });
      entries.push(...page.entries);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    const actions = entries.map((e) => `${e.action} ${e.target}`).reverse();
    expect(actions).toEqual([
      'user.create alice',
      'user.create bob_rsa',
      'user.create alina',
      'user.create zed',
      'user.disable alice',
      'user.enable alice',
      'user.create dora',
      'user.disable dora',
      'user.enable dora',
      'user.password_reset alice',
      'user.password_reset alice',
      'user.public_key_set alice',
      'user.create erin',
      'user.throttle_clear erin',
      'user.sessions_close zed',
      expect.stringMatching(/^session\.close s-/),
      'session.close s-nosuchsession',
      'user.delete alina',
      expect.stringMatching(/^transcript\.export s-/),
      expect.stringMatching(/^transcript\.export s-/),
      // The purge and its repetition; neither the dry run nor the refused one.
      expect.stringMatching(/^transcript\.purge \d{4}-\d{2}-\d{2}T/),
      expect.stringMatching(/^transcript\.purge \d{4}-\d{2}-\d{2}T/),
    ]);
    const purge = entries.find((e) => e.action === 'transcript.purge')!;
    expect(purge.details).toMatchObject({
      sessions: expect.any(Number),
      chunks: expect.any(Number),
      bytes: expect.any(Number),
      with_receipt: expect.any(Number),
      without_receipt: expect.any(Number),
      more: false,
    });
    expect(entries[0]).toMatchObject({
      actor: expect.stringMatching(/^token:[0-9a-f]{12}$/),
      source_address: expect.stringMatching(/127\.0\.0\.1/),
    });
    const text = JSON.stringify(entries);
    expect(text).not.toContain(server.adminToken());
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('a brand new password');
  });
});
