/**
 * What the browser specs share: the bundle (scripts/build-web.mjs), a static page server on
 * 127.0.0.1 (a secure context, so WebCrypto is there), and Debian's Chromium through
 * playwright-core. No Chromium is a failure, not a skip: a green run must mean the library ran
 * in a browser. SECURECHAT_SKIP_BROWSER=1 is the explicit, visible way out.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { type Browser, chromium, type Page } from 'playwright-core';

const ROOT = resolve(__dirname, '../..');
const execFileAsync = promisify(execFile);
/** Debian's package; SECURECHAT_CHROMIUM points elsewhere (another distribution, a test of this). */
export const CHROMIUM = process.env.SECURECHAT_CHROMIUM ?? '/usr/bin/chromium';

export const SKIP_BROWSER = process.env.SECURECHAT_SKIP_BROWSER === '1';

/** `describe`, or `describe.skip` with a note saying why, under SECURECHAT_SKIP_BROWSER=1. */
export function describeInBrowser(name: string, body: () => void): void {
  if (SKIP_BROWSER) {
    // Not console.warn: Jest drops the console output of a suite whose tests were all skipped.
    process.stderr.write(`SKIPPED (SECURECHAT_SKIP_BROWSER=1, needs Chromium): ${name}\n`);
    describe.skip(name, body);
  } else {
    describe(name, body);
  }
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` ` +
        '(or set SECURECHAT_SKIP_BROWSER=1 to skip the browser specs)',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // Running as root needs --no-sandbox; the rest keep Chromium from calling Google.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface BuiltPage {
  /** The bundle's source files (relative to the repository), from esbuild's metafile. */
  readonly inputs: string[];
  readonly script: string;
}

/** Bundles a page entry (test/browser/page/*.ts) into build/web/, with scripts/build-web.mjs. */
export async function buildPage(entry: string): Promise<BuiltPage> {
  const outfile = join(ROOT, 'build/web', `${basename(entry, '.ts')}.js`);
  const { stdout } = await execFileAsync(
    process.execPath,
    ['scripts/build-web.mjs', '--json', entry, outfile],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const { inputs } = JSON.parse(stdout) as { inputs: string[] };
  return { inputs, script: outfile };
}

export interface StaticServer {
  readonly origin: string;
  close(): Promise<void>;
}

/** Serves `/` (an HTML page loading the bundle as a module) and `/page.js` on 127.0.0.1. */
export async function servePage(built: BuiltPage): Promise<StaticServer> {
  const html =
    '<!doctype html><meta charset="utf-8"><title>securechat browser test</title>' +
    // No favicon request: every 404 the page meets is a failure the specs report.
    '<link rel="icon" href="data:,">' +
    '<script type="module" src="/page.js"></script>';
  const server: Server = createServer((request, response) => {
    if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else if (request.url === '/page.js') {
      response
        .writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' })
        .end(readFileSync(built.script));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

/**
 * Opens the page and waits for its bundle to publish `globalThis.securechatPage`; page errors
 * and console output are kept for failure messages.
 */
export async function openPage(browser: Browser, origin: string) {
  const page: Page = await browser.newPage();
  const log: string[] = [];
  page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) log.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  await page.goto(`${origin}/`);
  try {
    await page.waitForFunction(() => 'securechatPage' in globalThis, undefined, {
      timeout: 10_000,
    });
  } catch (error) {
    throw new Error(`the page did not load its bundle:\n${log.join('\n')}`, { cause: error });
  }
  return { page, log };
}
