/**
 * What the browser specs share: the bundle (scripts/build-web.mjs), a static page server on
 * 127.0.0.1 (a secure context, so WebCrypto is there), and Debian's Chromium through
 * playwright-core. No Chromium is a failure, not a skip: a green run must mean the library ran
 * in a browser. SECURECHAT_SKIP_BROWSER=1 is the explicit, visible way out.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { type Browser, chromium, type Page } from 'playwright-core';
import { WebSocket, WebSocketServer } from 'ws';

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

/**
 * A man in the middle for a page and the gateway's browser port, on 127.0.0.1 (so the page's
 * origin is the proxy's): HTTP requests are passed to the target (the web client's files, with
 * the gateway's headers), WebSocket connections are relayed message by message to a WebSocket
 * the proxy opens to the target (without Origin, like any program). A test can switch the
 * target (another server, another key: one origin, one IndexedDB, one pin), drop every relayed
 * connection, corrupt the next server-to-client message, and see what each page connection sent.
 */
export interface WebSocketProxy {
  readonly origin: string;
  /** The gateway port (HTTP and WebSocket) connections go to from now on. */
  target: number;
  /** Per relayed connection, in order: the client's messages (frames) passed on so far. */
  readonly connections: { c2sMessages: number; closed: boolean }[];
  /** Flips one base64 character of the `ct` of the next `enc` frame the server sends. */
  corruptNextServerRecord(): void;
  /** Resolves once every connection relayed so far has closed. */
  settled(): Promise<void>;
  /** Closes every relayed connection (both sides), as a network failure would. */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startWebSocketProxy(target: number): Promise<WebSocketProxy> {
  const sockets = new Set<WebSocket>();
  let corrupt = false;
  const closings: Promise<void>[] = [];
  const state = {
    target,
    connections: [] as { c2sMessages: number; closed: boolean }[],
  };
  const server: Server = createServer((req, res) => {
    const upstream = httpRequest(
      { host: '127.0.0.1', port: state.target, path: req.url, method: req.method },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('securechat.v1') ? 'securechat.v1' : false),
  });
  wss.on('connection', (page) => {
    const record = { c2sMessages: 0, closed: false };
    state.connections.push(record);
    const upstream = new WebSocket(`ws://127.0.0.1:${state.target}/`, 'securechat.v1');
    sockets.add(page);
    sockets.add(upstream);
    const queued: Buffer[] = [];
    page.on('message', (data: Buffer) => {
      record.c2sMessages += 1;
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data);
      else queued.push(data);
    });
    upstream.on('open', () => {
      for (const data of queued.splice(0)) upstream.send(data);
    });
    upstream.on('message', (data: Buffer) => {
      let out = data;
      const text = data.subarray(4).toString('latin1');
      const at = text.indexOf('"ct":"');
      if (corrupt && at >= 0) {
        corrupt = false;
        out = Buffer.from(data);
        const index = 4 + at + 6 + 10;
        out[index] = out[index] === 0x41 ? 0x42 : 0x41; // 'A' <-> 'B' (both base64)
      }
      page.send(out);
    });
    let markClosed = (): void => undefined;
    closings.push(new Promise<void>((resolveClosed) => (markClosed = resolveClosed)));
    const closeBoth = () => {
      record.closed = true;
      markClosed();
      page.close();
      upstream.close();
    };
    page.on('close', closeBoth);
    upstream.on('close', closeBoth);
    page.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get target() {
      return state.target;
    },
    set target(value: number) {
      state.target = value;
    },
    connections: state.connections,
    settled: async () => {
      await Promise.all(closings);
    },
    corruptNextServerRecord: () => {
      corrupt = true;
    },
    dropAll: () => {
      for (const socket of sockets) socket.terminate();
      sockets.clear();
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const socket of sockets) socket.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
