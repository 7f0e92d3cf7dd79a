/**
 * The API's description over a real HTTP socket (loopback, no database), served as the
 * processes serve it (serveAdminHttp): `/admin/openapi.json` only with the token, Swagger UI
 * at `/admin/docs` only with SECURECHAT_ADMIN_DOCS=true (404 otherwise, the init script that
 * embeds the document included), and every 401 with its `WWW-Authenticate` challenge.
 */
import { type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { CONFIG, type SecureChatConfig } from '@securechat/core';

import { testConfig } from '../test/admin-fixtures';
import { ADMIN_HTTP_APP_OPTIONS, serveAdminHttp } from './admin-http';
import { AdminOpenApiController, OpenApiDocumentHolder } from './admin-openapi';
import { AdminTokenGuard } from './admin-token.guard';

const TOKEN = 'Zx9_Q2-rT5vB8nM1kL4jH7gF0dS3aP6oI9uY2tR5eW8';
const CHALLENGE = 'Bearer realm="securechat-admin"';

/** The default configuration, on a free loopback port, with SECURECHAT_ADMIN_DOCS as given. */
function config(docs: boolean | undefined): SecureChatConfig {
  const base = testConfig();
  return {
    ...base,
    admin: {
      ...base.admin,
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      ...(docs === undefined ? {} : { docs }),
    },
  };
}

async function start(docs: boolean | undefined): Promise<{ app: INestApplication; base: string }> {
  const settings = config(docs);
  @Module({
    controllers: [AdminOpenApiController],
    providers: [AdminTokenGuard, OpenApiDocumentHolder, { provide: CONFIG, useValue: settings }],
  })
  class TestModule {}
  const app = await NestFactory.create(TestModule, { logger: false, ...ADMIN_HTTP_APP_OPTIONS });
  const port = await serveAdminHttp(app, settings);
  return { app, base: `http://127.0.0.1:${port}` };
}

const DOCS_PATHS = [
  '/admin/docs',
  '/admin/docs/',
  '/admin/docs/index.html',
  '/admin/docs/swagger-ui-init.js',
  '/admin/docs/docs/swagger-ui-init.js',
  '/admin/docs/swagger-ui-bundle.js',
];

describe.each([
  ['by default', undefined],
  ['with SECURECHAT_ADMIN_DOCS=false', false],
])('the admin API %s', (_case, docs) => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => ({ app, base } = await start(docs)));
  afterAll(() => app.close());

  it('is configured without Swagger UI', () => {
    expect(config(docs).admin.docs).toBe(false);
  });

  it.each(DOCS_PATHS)('answers 404 at %s: nothing of the document leaks', async (path) => {
    const response = await fetch(base + path);
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ code: 'not_found', message: 'no such endpoint' });
  });

  it('serves the document with the token only', async () => {
    const guarded = await fetch(`${base}/admin/openapi.json`);
    expect(guarded.status).toBe(401);
    const allowed = await fetch(`${base}/admin/openapi.json`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toMatchObject({ openapi: expect.stringMatching(/^3\./) });
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${'x'.repeat(43)}` }],
    ['the token under another scheme', { authorization: `Basic ${TOKEN}` }],
  ])(
    'answers 401 to %s with a Bearer challenge',
    async (_what, headers: Record<string, string>) => {
      const response = await fetch(`${base}/admin/openapi.json`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(CHALLENGE);
      expect(await response.json()).toEqual({
        code: 'unauthorized',
        message: 'a valid admin bearer token is required',
      });
    },
  );

  it('sends no challenge with other errors', async () => {
    const response = await fetch(`${base}/admin/nothing-here`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get('www-authenticate')).toBeNull();
  });
});

describe('the admin API with SECURECHAT_ADMIN_DOCS=true', () => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => ({ app, base } = await start(true)));
  afterAll(() => app.close());

  it('serves Swagger UI without the token (a browser cannot send one), as configured', async () => {
    const page = await fetch(`${base}/admin/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
    const script = await fetch(`${base}/admin/docs/swagger-ui-init.js`);
    expect(script.status).toBe(200);
  });

  it('still guards the document route and every call, with the challenge', async () => {
    const response = await fetch(`${base}/admin/openapi.json`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(CHALLENGE);
  });
});
