/**
 * The client as people install it: `npm run pack:client` builds securechat-<version>.tgz,
 * `npm install -g` puts it into a fresh prefix with the network off (`--offline`: everything
 * it needs is inside the tarball), and the installed `securechat`, run from a directory
 * outside the repository, registers two users and carries a signed message between them
 * through the embedded server.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { type CliRun, spawnCli } from '../support/cli-process';
import { type RunningServer, removeDataDir, startEmbeddedServer } from '../support/embedded-server';

jest.setTimeout(180_000);

const ROOT = resolve(__dirname, '../..');
const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'apps/cli/package.json'), 'utf8')) as { version: string }
).version;
/** The bound the README states for the installed command. */
const MAX_INSTALLED_BYTES = 20 * 1024 * 1024;

let work: string;
let prefix: string;
let bin: string;
let server: RunningServer;

function installedFiles(dir: string): { bytes: number; links: string[] } {
  let bytes = 0;
  const links: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) links.push(path);
    else if (entry.isDirectory()) {
      const inner = installedFiles(path);
      bytes += inner.bytes;
      links.push(...inner.links);
    } else bytes += lstatSync(path).size;
  }
  return { bytes, links };
}

function installed(args: string[], env: Record<string, string>) {
  return spawnCli(args, env, { file: bin, args: [], cwd: work });
}

async function run(args: string[], env: Record<string, string>): Promise<CliRun> {
  const cli = installed(args, env);
  cli.child.stdin.end();
  return cli.done();
}

function userEnv(name: string): Record<string, string> {
  return {
    // A home of its own: nothing read from the developer's ~/.config.
    HOME: join(work, 'home', name),
    SECURECHAT_CONFIG_DIR: join(work, 'home', name, 'config'),
    SECURECHAT_DATA_HOME: join(work, 'home', name, 'data'),
    SECURECHAT_SERVER: `127.0.0.1:${server.port}`,
    SECURECHAT_USER: name,
    SECURECHAT_PASSWORD: `${name}-password-1`,
    SECURECHAT_KEY_PASSPHRASE: `${name} passphrase`,
    NODE_PATH: '',
  };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'securechat-pack-'));
  prefix = join(work, 'prefix');
  const packed = execFileSync(
    process.execPath,
    [join(ROOT, 'scripts/pack-client.mjs'), '--out', join(work, 'packages')],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tarball = packed
    .trim()
    .split('\n')
    .find((line) => line.endsWith(`/securechat-${VERSION}.tgz`));
  if (tarball === undefined) throw new Error(`no securechat-${VERSION}.tgz in:\n${packed}`);
  execFileSync(
    'npm',
    ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball],
    // Outside the repository, so npm sees no workspace and no lockfile.
    { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  bin = join(prefix, 'bin', 'securechat');
  server = await startEmbeddedServer({
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_INSECURE_FAST_HASH: 'true',
  });
});

afterAll(async () => {
  await server?.stop();
  if (server) removeDataDir(server);
  rmSync(work, { recursive: true, force: true });
});

describe('the securechat package, installed from its tarball', () => {
  it('is self-contained and within the size the README states', () => {
    const packageDir = join(prefix, 'lib', 'node_modules', 'securechat');
    const { bytes, links } = installedFiles(packageDir);
    // A link would mean npm resolved a workspace of this repository instead of the tarball.
    expect(links).toEqual([]);
    expect(realpathSync(packageDir).startsWith(ROOT)).toBe(false);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(MAX_INSTALLED_BYTES);
    for (const dep of ['@securechat/protocol', '@securechat/client', 'zod']) {
      expect(lstatSync(join(packageDir, 'node_modules', dep, 'package.json')).isFile()).toBe(true);
    }
  });

  it('runs the compiled command, not the repository sources', async () => {
    const result = await run(['--version'], {});
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(`securechat ${VERSION} (protocol securechat/1)`);
    expect(result.code).toBe(0);
  });

  it('registers two users and carries a verified message between them', async () => {
    const alice = userEnv('alice');
    const bob = userEnv('bob');
    for (const env of [alice, bob]) {
      const keygen = await run(['keygen', '--type', 'ed25519'], env);
      expect(keygen.code).toBe(0);
      const register = await run(['register', '--trust-on-first-use'], env);
      expect(register.stderr).toBe('');
      expect(register.code).toBe(0);
    }

    const listener = installed(['listen', '--count', '1', '--timeout', '60'], bob);
    listener.child.stdin.end();
    await listener.waitFor(/^listening as bob/, 'stderr');
    const sent = await run(['send', '--to', 'bob', 'installed from a tarball'], alice);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);

    const line = await listener.waitFor(/"body":"installed from a tarball"/);
    const message = JSON.parse(line) as Record<string, unknown>;
    expect(message).toMatchObject({ from: 'alice', verification: 'verified' });
    expect((await listener.done()).code).toBe(0);
  });
});
