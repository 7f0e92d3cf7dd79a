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
// directory. PGlite's defaults held over 800 MiB here (initdb's leftovers, 128 MB of buffers);
// V8's optimizing recompilation of PGlite's WebAssembly then kept 50-110 MiB more.
(existsSync('/proc/self/status') ? it : it.skip)(
  'holds under 400 MiB resident after a first start and a chat',
  () => {
    const status = readFileSync(`/proc/${server!.process.pid}/status`, 'utf8');
    const rssMiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
    expect(rssMiB).toBeLessThan(400);
  },
);

/**
 * Resident MiB in glibc's per-thread malloc arenas: anonymous mappings that start on a 64 MiB
 * boundary and are at most 64 MiB long (glibc's HEAP_MAX_SIZE on 64-bit). The threads that
 * fill them here are V8's compiler threads.
 */
function mallocArenasMiB(pid: number): number {
  let kb = 0;
  let arena = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    // A mapping's first line: range, permissions, offset, device, inode, then its name if any.
    const head = /^([0-9a-f]+)-([0-9a-f]+) (?:\S+ ){3}\d+ *(.*)$/.exec(line);
    if (head) {
      const [start, end] = [BigInt(`0x${head[1]}`), BigInt(`0x${head[2]}`)];
      const aligned = start % (64n << 20n) === 0n && end - start <= 64n << 20n;
      arena = aligned && head[3] === '';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && arena) kb += Number(rss[1]);
  }
  return kb / 1024;
}

// V8 recompiles hot WebAssembly with its optimizing compiler on background threads, whose
// scratch memory stays in their arenas (50-110 MiB measured); PGlite runs baseline code only.
(existsSync('/proc/self/smaps') ? it : it.skip)(
  "keeps compiler threads' scratch memory out of the resident set",
  () => {
    expect(mallocArenasMiB(server!.process.pid!)).toBeLessThan(24);
  },
);
