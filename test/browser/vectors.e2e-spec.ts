/**
 * libs/protocol in a real browser: the known-answer vectors (shared/protocol/vectors.json),
 * every group, recomputed in Chromium by the library bundled with browser-crypto.ts — the
 * implementation a web client ships — and, as a control, a corrupted expected value reported.
 */
import { type Browser, type Page } from 'playwright-core';

import {
  checkVectors,
  type VectorCheck,
  vectors,
  type Vectors,
} from '../../libs/protocol/test/vectors-in-browser';
import {
  type BuiltPage,
  buildPage,
  describeInBrowser,
  launchChromium,
  openPage,
  servePage,
  type StaticServer,
} from './browser-harness';

jest.setTimeout(60_000);

/** As many checks as vectors-in-browser.ts makes over the fixture; fewer means some never ran. */
const EXPECTED_CHECKS = 111;

describeInBrowser('libs/protocol in Chromium (browser-crypto)', () => {
  let built: BuiltPage;
  let server: StaticServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let log: string[];

  beforeAll(async () => {
    built = await buildPage('test/browser/page/vectors-page.ts');
    server = await servePage(built);
    browser = await launchChromium();
    ({ page, log } = await openPage(browser, server.origin));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const runInPage = (input?: Vectors) =>
    page.evaluate(
      (v) =>
        (
          globalThis as unknown as {
            securechatPage: { checkVectors: (v?: Vectors) => Promise<VectorCheck[]> };
          }
        ).securechatPage.checkVectors(v ?? undefined),
      input ?? null,
    );

  it('bundles browser-crypto and no node-crypto', () => {
    expect(built.inputs).toContain('libs/protocol/src/crypto/browser-crypto.ts');
    expect(built.inputs).not.toContain('libs/protocol/src/crypto/node-crypto.ts');
    expect(built.inputs).toContain('libs/protocol/test/fixtures/vectors.json');
  });

  it('runs in a browser page, in a secure context', async () => {
    const environment = await page.evaluate(() =>
      (
        globalThis as unknown as { securechatPage: { environment: () => unknown } }
      ).securechatPage.environment(),
    );
    expect(environment).toMatchObject({
      process: 'undefined',
      require: 'undefined',
      // The bundle's Buffer is its own (injected), not a global.
      globalBuffer: 'undefined',
      window: 'object',
      document: 'object',
      isSecureContext: true,
      subtle: 'object',
      userAgent: expect.stringContaining('Chrome/'),
    });
  });

  it('reproduces every vector', async () => {
    const results = await runInPage();
    expect({ failed: results.filter((r) => !r.ok), log }).toEqual({ failed: [], log: [] });
    expect(results).toHaveLength(EXPECTED_CHECKS);
    const groups = new Set(results.map((r) => r.name.split(/[:[ ]/)[0]));
    expect([...groups].sort()).toEqual(
      [
        'client_auth',
        'handshake',
        'key_update',
        'keys',
        'login',
        'message_signature',
        'must_reject',
        'receipt',
        'records',
        'state',
      ].sort(),
    );
    expect(results.filter((r) => r.name.startsWith('must_reject'))).toHaveLength(
      vectors.must_reject.length + 2,
    );
    // The same checks, by name, as node-crypto makes of them in this process.
    const inNode = await checkVectors();
    expect(inNode.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.name)).toEqual(inNode.map((r) => r.name));
  });

  it('reports a corrupted expected value, and only that one', async () => {
    const corrupted = structuredClone(vectors);
    const prk = Buffer.from(corrupted.handshake.PRK, 'base64');
    prk[7]! ^= 0x10;
    corrupted.handshake.PRK = prk.toString('base64');

    const results = await runInPage(corrupted);
    expect(results).toHaveLength(EXPECTED_CHECKS);
    expect(results.filter((r) => !r.ok)).toEqual([
      {
        name: 'handshake: PRK',
        ok: false,
        detail: `expected ${corrupted.handshake.PRK}, got ${vectors.handshake.PRK}`,
      },
    ]);
  });
});
