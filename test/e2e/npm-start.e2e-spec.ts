/**
 * What an operator meets first: `npm start` as a supervisor (or `kill $!`) runs it, and a
 * start on a port that is taken. SIGTERM to the npm process must end every process it
 * started, with a last `stopped` line; a busy port must stop the start with one line and exit 2
 * before any secret is written to the data directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { eventually } from '../../libs/core/test/eventually';
import { SOURCE_ENTRY } from '../support/embedded-server';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '../..');
const onLinux = existsSync('/proc/self/stat');

/** A process as /proc shows it; `start` tells a reused pid from the original. */
interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly start: string;
  /** R, S, D, … or Z: a zombie is our own unreaped child (npm, until Node reaps it). */
  readonly state: string;
}

function readProc(pid: number): ProcEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm, in parentheses, may itself hold spaces and parentheses: fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), start: fields[19]!, state: fields[0]! };
  } catch {
    return undefined; // gone
  }
}

/** `root` and every process below it, now. */
function processTree(root: number): ProcEntry[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => readProc(Number(name)) ?? []);
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) {
    tree.push(...all.filter((p) => p.ppid === tree[i]!.pid));
  }
  return tree;
}

function alive(entry: ProcEntry): boolean {
  const now = readProc(entry.pid);
  return now !== undefined && now.start === entry.start && now.state !== 'Z';
}

const baseEnv = (dataDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_OPTIONS: '',
  SECURECHAT_HOST: '127.0.0.1',
  SECURECHAT_PORT: '0',
  SECURECHAT_DATA_DIR: dataDir,
  SECURECHAT_OPS_PORT: '0',
  SECURECHAT_ADMIN_PORT: '0',
  SECURECHAT_WS_PORT: '0',
});

const dataDirs: string[] = [];
const freshDataDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'securechat-npm-start-'));
  dataDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

(onLinux ? describe : describe.skip)('npm start under a supervisor', () => {
  let leftovers: ProcEntry[] = [];

  afterEach(() => {
    // Whatever survived a failed assertion is ours: do not leave it serving.
    for (const entry of leftovers.filter(alive)) process.kill(entry.pid, 'SIGKILL');
    leftovers = [];
  });

  it.each([
    // What `kill $!` or a supervisor sends: npm hands it on to the server it exec'd.
    ['SIGTERM', 'SIGTERM'],
    // npm killed outright cannot hand anything on: the server sees its parent gone.
    ['SIGKILL', 'parent_exited'],
  ] as const)(
    '%s to the npm process ends every process it started, with a last `stopped` line (%s)',
    async (signal, reason) => {
      const npm = spawn('npm', ['start'], {
        cwd: ROOT,
        env: baseEnv(freshDataDir()),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      npm.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      npm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // Closed when the last process holding the pipe (npm's child too) is gone.
      const outputClosed = new Promise<void>((r) => npm.stdout.once('close', () => r()));
      let npmGone = false;
      const npmExited = new Promise<void>((r) =>
        npm.once('exit', () => {
          npmGone = true;
          r();
        }),
      );
      const isReady = () => /^\{"event":"ready"/m.test(stdout);
      await eventually(() => isReady() || npmGone, {
        what: () => `npm start to get ready:\n${stdout}\n${stderr}`,
        timeoutMs: 90_000,
      });
      if (!isReady()) throw new Error(`npm start exited before ready:\n${stdout}\n${stderr}`);

      const tree = processTree(npm.pid!);
      leftovers = tree;
      const server = tree.find((p) =>
        readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes('apps/embedded/src/main.js'),
      );
      expect(server).toBeDefined();

      npm.kill(signal);
      await npmExited;
      // Shutdown takes a moment (clients told, PGlite closed); 30 s is far beyond it.
      await eventually(() => !tree.some(alive), {
        what: () => `every process to exit: ${JSON.stringify(tree.filter(alive))}`,
        timeoutMs: 30_000,
      }).catch(() => undefined);
      expect(tree.filter(alive)).toEqual([]);

      await outputClosed;
      const lines = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped', reason, code: 0 });
    },
  );
});

/** Runs an entry point to its exit: code, stdout, stderr. */
function runToExit(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child: ChildProcess = spawn(process.execPath, [...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('a port already in use', () => {
  let busy: Server;
  let busyPort: number;

  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    busyPort = (busy.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => busy.close(() => r())));

  const ENTRIES: Record<string, readonly string[]> = {
    'the embedded server': SOURCE_ENTRY,
    'a gateway': ['-r', '@swc-node/register', 'apps/gateway-tcp/src/main.ts'],
  };

  it.each([
    ['the embedded server', 'SECURECHAT_PORT'],
    ['the embedded server', 'SECURECHAT_ADMIN_PORT'],
    ['the embedded server', 'SECURECHAT_OPS_PORT'],
    ['the embedded server', 'SECURECHAT_WS_PORT'],
    ['a gateway', 'SECURECHAT_PORT'],
  ])(
    '%s on a busy %s exits 2 with one line naming it, and writes no key or token',
    async (name, variable) => {
      const entry = ENTRIES[name]!;
      const dataDir = freshDataDir();
      const run = await runToExit(entry, {
        ...baseEnv(dataDir),
        // The gateway stops before it would connect: no Redis is needed to see it refuse.
        REDIS_URL: 'redis://127.0.0.1:1',
        [variable]: String(busyPort),
      });
      expect(run.code).toBe(2);
      const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
      expect(lines).toEqual([
        `${variable}=${busyPort}: 127.0.0.1:${busyPort} is already in use by another process; stop it or set ${variable} to a free port (0: any free port)`,
      ]);
      expect(run.stdout).toBe('');
      // No identity key, admin token, login-seal key or database: nothing was started.
      expect(readdirSync(dataDir)).toEqual([]);
    },
  );
});
