/**
 * `npm run build`'s output is what `npm start`, the start scripts and the image run: it builds,
 * holds no path alias or TypeScript loader, and serves a chat like the sources do.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import {
  COMPILED_ENTRY,
  removeDataDir,
  type RunningServer,
  startEmbeddedServer,
} from '../support/embedded-server';
import { TestClient } from '../support/protocol-client';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '../..');
const DIST = join(ROOT, 'dist');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

let server: RunningServer | undefined;

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'pipe' });
});

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
});

it('emits JavaScript with relative imports only: no alias, no TypeScript loader', () => {
  const js = files(DIST).filter((file) => file.endsWith('.js'));
  expect(js.length).toBeGreaterThan(100);
  for (const file of js) {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(
      /require\("@securechat\/|require\("@db\/|@swc-node|require\("typescript"\)/,
    );
  }
  expect(js.some((file) => /\.(spec|int-spec|e2e-spec)\.js$/.test(file))).toBe(false);
});

it('serves a registration and a message from the compiled build', async () => {
  server = await startEmbeddedServer({ ALLOW_REGISTRATION: 'true' }, undefined, 0, COMPILED_ENTRY);
  const connect = (username: string) =>
    TestClient.connect({
      port: server!.port,
      username,
      password: 'correct horse battery staple',
      key: generateKeyPairSync('ed25519').privateKey,
      action: 'register',
      fingerprint: server!.fingerprint,
    });
  const alice = await connect('alice');
  const bob = await connect('bob');
  expect((await alice.sendAndAck('bob', 'from compiled code')).type).toBe('ack');
  expect((await bob.receive()).body).toBe('from compiled code');
  await Promise.all([alice.close(), bob.close()]);
});

// Linux only: the resident memory of the server just used, as `npm start` runs it on a new data
// directory. PGlite's defaults held over 800 MiB here (initdb's leftovers, 128 MB of buffers).
(existsSync('/proc/self/status') ? it : it.skip)(
  'holds under 400 MiB resident after a first start and a chat',
  () => {
    const status = readFileSync(`/proc/${server!.process.pid}/status`, 'utf8');
    const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
    expect(rssMiB).toBeLessThan(400);
  },
);
