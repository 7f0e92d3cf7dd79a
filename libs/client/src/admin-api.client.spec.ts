import { AdminApiClient } from './admin-api.client';
import { AdminApiError } from './admin-api-error';

const TOKEN = 't'.repeat(43);

function client(answer: () => Response | Promise<Response> = () => json(200, {})) {
  const calls: { url: string; init: RequestInit }[] = [];
  // The client always passes the URL as a string.
  const fetchStub = (url: string, init?: RequestInit) => {
    calls.push({ url, init: init ?? {} });
    return Promise.resolve(answer());
  };
  const api = new AdminApiClient({
    baseUrl: 'http://127.0.0.1:8080/',
    token: TOKEN,
    fetch: fetchStub as typeof fetch,
  });
  return { api, calls };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

const headers = (init: RequestInit) => init.headers as Record<string, string>;

describe('AdminApiClient', () => {
  it('sends the bearer token and a JSON body to /admin, keys as base64 DER', async () => {
    const { api, calls } = client(() => json(201, { username: 'alice' }));
    const der = Buffer.from([0x30, 0x2a, 0x30, 0x05]);
    expect(await api.createUser({ username: 'alice', password: 'pw', publicKey: der })).toEqual({
      username: 'alice',
    });
    expect(calls[0]!.url).toBe('http://127.0.0.1:8080/admin/users');
    expect(calls[0]!.init.method).toBe('POST');
    expect(headers(calls[0]!.init)).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/json',
    });
    expect(JSON.parse(calls[0]!.init.body as string)).toEqual({
      username: 'alice',
      password: 'pw',
      public_key: der.toString('base64'),
    });
  });

  it.each([
    [
      'listUsers',
      (a: AdminApiClient) => a.listUsers({ query: 'al', limit: 5 }),
      'GET',
      '/users?query=al&limit=5',
    ],
    ['getUser', (a: AdminApiClient) => a.getUser('alice'), 'GET', '/users/alice'],
    ['disableUser', (a: AdminApiClient) => a.disableUser('alice'), 'POST', '/users/alice/disable'],
    ['enableUser', (a: AdminApiClient) => a.enableUser('alice'), 'POST', '/users/alice/enable'],
    [
      'resetPassword',
      (a: AdminApiClient) => a.resetPassword('alice', 'new password'),
      'POST',
      '/users/alice/password',
    ],
    [
      'setPublicKey',
      (a: AdminApiClient) => a.setPublicKey('alice', 'AAAA'),
      'PUT',
      '/users/alice/public-key',
    ],
    ['deleteUser', (a: AdminApiClient) => a.deleteUser('alice'), 'DELETE', '/users/alice'],
    ['listSessions', (a: AdminApiClient) => a.listSessions(), 'GET', '/sessions'],
    [
      'listUserSessions',
      (a: AdminApiClient) => a.listUserSessions('alice'),
      'GET',
      '/users/alice/sessions',
    ],
    ['closeSession', (a: AdminApiClient) => a.closeSession('s-1/x'), 'DELETE', '/sessions/s-1%2Fx'],
    [
      'closeUserSessions',
      (a: AdminApiClient) => a.closeUserSessions('alice'),
      'DELETE',
      '/users/alice/sessions',
    ],
    [
      'listTranscripts',
      (a: AdminApiClient) => a.listTranscripts('alice', { limit: 2, cursor: '17.s-1' }),
      'GET',
      '/users/alice/transcripts?limit=2&cursor=17.s-1',
    ],
    [
      'purgeTranscripts',
      (a: AdminApiClient) => a.purgeTranscripts({ before: '2026-01-01T00:00:00Z' }),
      'POST',
      '/transcripts/purge',
    ],
    ['listAudit', (a: AdminApiClient) => a.listAudit({ cursor: '9' }), 'GET', '/audit?cursor=9'],
    ['openApi', (a: AdminApiClient) => a.openApi(), 'GET', '/openapi.json'],
  ])('%s calls its endpoint', async (_name, call, method, path) => {
    const { api, calls } = client();
    await call(api);
    expect([calls[0]!.init.method, calls[0]!.url]).toEqual([
      method,
      `http://127.0.0.1:8080/admin${path}`,
    ]);
  });

  it('sends a purge as its snake_case body, the cutoff as ISO 8601', async () => {
    const { api, calls } = client();
    await api.purgeTranscripts({ before: new Date(Date.UTC(2026, 0, 2)) });
    await api.purgeTranscripts({
      before: '2026-01-01T00:00:00+01:00',
      dryRun: true,
      limit: 5,
      cursor: '17.s-1',
    });
    expect(calls.map((c) => JSON.parse(c.init.body as string) as unknown)).toEqual([
      { before: '2026-01-02T00:00:00.000Z' },
      { before: '2026-01-01T00:00:00+01:00', dry_run: true, limit: 5, cursor: '17.s-1' },
    ]);
    expect(headers(calls[0]!.init)).toMatchObject({ 'content-type': 'application/json' });
  });

  it('raises transcript_purged on the export of a purged session', async () => {
    const { api } = client(() =>
      json(410, { code: 'transcript_purged', message: 'the records were deleted' }),
    );
    await expect(api.exportTranscript('s-1')).rejects.toMatchObject({
      status: 410,
      code: 'transcript_purged',
    });
  });

  it('takes a 204 as success and returns the export as text', async () => {
    const empty = client(() => new Response(null, { status: 204 }));
    await expect(empty.api.clearThrottle('alice')).resolves.toBeUndefined();
    expect(empty.calls.map((c) => c.init.method)).toEqual(['DELETE']);
    const text = client(() => new Response('{"type":"header"}\n', { status: 200 }));
    expect(await text.api.exportTranscript('s-1')).toBe('{"type":"header"}\n');
  });

  it('raises the API error with its code and field errors', async () => {
    const errors = [{ field: 'username', message: 'must match ^[a-z0-9_]{3,32}$' }];
    const { api } = client(() =>
      json(400, { code: 'bad_request', message: 'the request is invalid', errors }),
    );
    const error = await api.getUser('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdminApiError);
    expect(error).toMatchObject({ status: 400, code: 'bad_request', errors });
  });

  it("keeps a code this client does not know (a newer server's), read by the API's schema", async () => {
    const { api } = client(() => json(418, { code: 'quota_exceeded', message: 'too many' }));
    await expect(api.listSessions()).rejects.toMatchObject({
      status: 418,
      code: 'quota_exceeded',
      message: 'too many',
      errors: [],
    });
    // Field errors that are not the API's shape make the body no API error at all.
    const odd = client(() => json(400, { code: 'bad_request', message: 'x', errors: 'nope' }));
    await expect(odd.api.listSessions()).rejects.toMatchObject({ code: 'http_400' });
  });

  it('names a non-API answer by its status, and an unreachable server without the request', async () => {
    const proxy = client(() => new Response('<html>bad gateway</html>', { status: 502 }));
    await expect(proxy.api.listSessions()).rejects.toMatchObject({ status: 502, code: 'http_502' });

    const down = client(() => Promise.reject(new TypeError('fetch failed')));
    const error = (await down.api
      .resetPassword('alice', 'secret password')
      .catch((e: unknown) => e)) as AdminApiError;
    expect(error).toMatchObject({ status: 0, code: 'unreachable' });
    expect(error.message).not.toContain('secret password');
  });

  it('accepts a base URL that already ends in /admin', async () => {
    const calls: string[] = [];
    const api = new AdminApiClient({
      baseUrl: 'http://h:1/admin',
      token: TOKEN,
      fetch: ((url: string) => {
        calls.push(url);
        return Promise.resolve(json(200, {}));
      }) as unknown as typeof fetch,
    });
    await api.listSessions();
    expect(calls).toEqual(['http://h:1/admin/sessions']);
  });
});
