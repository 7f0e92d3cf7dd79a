/**
 * A browser page as a SecureChat client (PROTOCOL.md §11 WebSocket binding): Chromium runs
 * libs/protocol's ClientHandshake and ClientSession, bundled with browser-crypto.ts, against the
 * embedded server and a distributed cluster, and talks to a Node user and to a user of the
 * `securechat` CLI on the TCP port — every signature checked on the other side, the session
 * closed with a receipt both agree on. And a page that pins another fingerprint refuses the
 * server before it sends its login.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ClientSession } from '@securechat/protocol';
import { type Browser } from 'playwright-core';

import { runCli, spawnCli } from '../support/cli-process';
import { Cluster } from '../support/distributed-cluster';
import { removeDataDir, startEmbeddedServer } from '../support/embedded-server';
import { TestClient } from '../support/protocol-client';
import {
  buildPage,
  describeInBrowser,
  launchChromium,
  openPage,
  servePage,
  type StaticServer,
} from './browser-harness';
import { type SecurechatPage } from './page/websocket-login-page';

jest.setTimeout(120_000);

const PASSWORD = 'correct horse battery staple';

/**
 * Where the page connects and where the Node user does: one embedded process, or a cluster whose
 * page and Node user sit on different gateways (the message crosses the fan-out).
 */
interface Deployment {
  readonly fingerprint: string;
  /** The WebSocket port the page uses. */
  readonly wsPort: number;
  /** The TCP port the Node user uses. */
  readonly tcpPort: number;
  stop(): Promise<unknown>;
}

const DEPLOYMENTS: [string, (env: Record<string, string>) => Promise<Deployment>][] = [
  [
    'the embedded server',
    async (env) => {
      const server = await startEmbeddedServer(env);
      return {
        fingerprint: server.fingerprint,
        wsPort: server.wsPort,
        tcpPort: server.port,
        stop: async () => {
          await server.stop();
          removeDataDir(server);
        },
      };
    },
  ],
  [
    'the distributed deployment',
    async (env) => {
      // SECURECHAT_WS_PORT=0: a lone gateway opens the binding only when told to.
      const cluster = await Cluster.start({
        auth: 1,
        relay: 1,
        gateway: 2,
        env: { ...env, SECURECHAT_WS_PORT: '0' },
      });
      const [first, second] = cluster.gateways;
      return {
        fingerprint: first!.fingerprint,
        wsPort: first!.process.ready.ws_port as number,
        tcpPort: second!.port,
        stop: () => cluster.stop(),
      };
    },
  ],
];

type PageCall<K extends keyof SecurechatPage> = Awaited<ReturnType<SecurechatPage[K]>>;

for (const [name, deploy] of DEPLOYMENTS) {
  describeInBrowser(`a browser page over the WebSocket binding of ${name}`, () => {
    let pages: StaticServer | undefined;
    let server: Deployment | undefined;
    let browser: Browser | undefined;
    const clients: TestClient[] = [];
    const homes: string[] = [];

    beforeAll(async () => {
      pages = await servePage(await buildPage('test/browser/page/websocket-login-page.ts'));
      // The page's origin is the one the binding must allow (browsers always send Origin).
      server = await deploy({
        ALLOW_REGISTRATION: 'true',
        SECURECHAT_WS_ORIGINS: pages.origin,
      });
      browser = await launchChromium();
    });

    afterAll(async () => {
      for (const client of clients) client.destroy();
      await browser?.close();
      await pages?.close();
      await server?.stop();
      for (const home of homes) rmSync(home, { recursive: true, force: true });
    });

    /** A fresh page; `call` runs one of its securechatPage functions in it. */
    async function newPage() {
      const { page, log } = await openPage(browser!, pages!.origin);
      const call = <K extends keyof SecurechatPage>(
        name: K,
        ...args: Parameters<SecurechatPage[K]>
      ) =>
        page.evaluate(
          ([n, a]) =>
            (
              (
                globalThis as unknown as {
                  securechatPage: Record<string, (...x: unknown[]) => unknown>;
                }
              ).securechatPage[n] as (...x: unknown[]) => Promise<PageCall<K>>
            )(...a),
          [name, args] as const,
        );
      return { page, log, call };
    }

    it('registers, exchanges signed messages with a TCP user, and closes with a receipt', async () => {
      const tcpKey = generateKeyPairSync('ed25519').privateKey;
      const tcp = await TestClient.connect({
        port: server!.tcpPort,
        transport: 'tcp',
        username: 'tcpuser1',
        password: PASSWORD,
        key: tcpKey,
        action: 'register',
        fingerprint: server!.fingerprint,
      });
      clients.push(tcp);
      const { page, log, call } = await newPage();

      const connected = await call('connect', {
        url: `ws://127.0.0.1:${server!.wsPort}/`,
        fingerprint: server!.fingerprint,
        username: 'webuser1',
        password: PASSWORD,
      });
      expect({ connected, log }).toMatchObject({
        connected: {
          ok: true,
          username: 'webuser1',
          protocol: 'securechat.v1',
          sent: ['client_hello', 'login'],
        },
        log: [],
      });
      const pageSpki = (connected as Extract<typeof connected, { ok: true }>).spki;

      expect(await call('sendTo', 'tcpuser1', 'hello from Chromium')).toMatchObject({
        type: 'ack',
      });
      const atTcp = await tcp.receive();
      expect(atTcp).toMatchObject({
        from: 'webuser1',
        to: 'tcpuser1',
        body: 'hello from Chromium',
      });
      const pageKey = createPublicKey({
        key: Buffer.from(pageSpki, 'base64'),
        format: 'der',
        type: 'spki',
      });
      expect(pageKey.asymmetricKeyType).toBe('ed25519');
      expect(ClientSession.verifyDeliver(atTcp, pageKey)).toBe(true);

      expect(await tcp.sendAndAck('webuser1', 'hello from Node')).toMatchObject({ type: 'ack' });
      const tcpSpki = createPublicKey(tcpKey).export({ format: 'der', type: 'spki' });
      const atPage = await call('receiveFrom', 'tcpuser1', tcpSpki.toString('base64'));
      expect(atPage).toMatchObject({
        deliver: { type: 'deliver', from: 'tcpuser1', to: 'webuser1', body: 'hello from Node' },
        signatureValid: true,
        alteredBodyValid: false,
      });

      expect(await call('close')).toEqual({
        viewsMatch: true,
        signatureValid: true,
        closeCode: 1000,
        sent: ['client_hello', 'login', 'send', 'delivered', 'bye', 'countersign'],
      });
      expect(await tcp.close()).toMatchObject({ viewsMatch: true, signatureValid: true });
      expect(log).toEqual([]);
      await page.close();
    });

    it('chats with a user of the securechat CLI (its default RSA key), both ways, verified', async () => {
      const home = mkdtempSync(join(tmpdir(), 'securechat-cli-browser-'));
      homes.push(home);
      const cli = {
        SECURECHAT_CONFIG_DIR: join(home, 'config'),
        SECURECHAT_DATA_HOME: join(home, 'data'),
        SECURECHAT_SERVER: `127.0.0.1:${server!.tcpPort}`,
        SECURECHAT_USER: 'cliuser1',
        SECURECHAT_PASSWORD: PASSWORD,
        SECURECHAT_KEY_PASSPHRASE: 'cli passphrase',
      };
      expect((await runCli(['keygen'], cli)).code).toBe(0);
      const registered = await runCli(['register', '--trust-on-first-use'], cli);
      expect(registered).toMatchObject({ code: 0 });
      const { page, log, call } = await newPage();
      expect(
        await call('connect', {
          url: `ws://127.0.0.1:${server!.wsPort}/`,
          fingerprint: server!.fingerprint,
          username: 'webuser3',
          password: PASSWORD,
        }),
      ).toMatchObject({ ok: true });

      // CLI → page: the page checks the RSA-PSS signature with WebCrypto.
      const sent = await runCli(['send', '--to', 'webuser3', 'hello from the CLI'], cli);
      expect(sent).toMatchObject({ code: 0, stderr: '' });
      const cliPublicPem = readFileSync(join(cli.SECURECHAT_CONFIG_DIR, 'id_securechat.pub'));
      const cliSpki = createPublicKey(cliPublicPem).export({ format: 'der', type: 'spki' });
      expect(createPublicKey(cliPublicPem).asymmetricKeyType).toBe('rsa');
      expect(await call('receiveFrom', 'cliuser1', cliSpki.toString('base64'))).toMatchObject({
        deliver: { from: 'cliuser1', to: 'webuser3', body: 'hello from the CLI' },
        signatureValid: true,
        alteredBodyValid: false,
      });

      // page → CLI: `securechat listen` fetches the page's key and verifies the signature.
      const listener = spawnCli(['listen', '--count', '1', '--timeout', '60'], cli);
      await listener.waitFor(/^listening as cliuser1/, 'stderr');
      expect(await call('sendTo', 'cliuser1', 'hello from Chromium')).toMatchObject({
        type: 'ack',
      });
      const listened = await listener.done();
      expect(listened.code).toBe(0);
      expect(JSON.parse(listened.stdout.trim())).toMatchObject({
        from: 'webuser3',
        to: 'cliuser1',
        body: 'hello from Chromium',
        verification: 'verified',
      });
      await call('close');
      expect(log).toEqual([]);
      await page.close();
    });

    it('refuses a server whose key is not the pinned one, and sends no login', async () => {
      const { page, call } = await newPage();
      const refused = await call('connect', {
        url: `ws://127.0.0.1:${server!.wsPort}/`,
        fingerprint: `sha256:${'0'.repeat(64)}`,
        username: 'webuser2',
        password: PASSWORD,
      });
      expect(refused).toMatchObject({
        ok: false,
        error: { name: 'ServerIdentityError', reason: 'server_key_mismatch' },
        sent: ['client_hello'],
      });
      await page.close();

      // Nothing reached the server's user table: the name is still free.
      const later = await TestClient.connect({
        port: server!.tcpPort,
        username: 'webuser2',
        password: PASSWORD,
        key: generateKeyPairSync('ed25519').privateKey,
        action: 'register',
        fingerprint: server!.fingerprint,
      });
      clients.push(later);
      expect(later.username).toBe('webuser2');
    });
  });
}
