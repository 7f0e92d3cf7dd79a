/**
 * Starts the embedded server (`apps/embedded/src/main.ts`) as a real child process on a
 * random port and a fresh data directory, and stops it again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export interface RunningServer {
  readonly port: number;
  readonly host: string;
  readonly fingerprint: string;
  /** The ops endpoints' port (/healthz, /readyz, /metrics). */
  readonly opsPort: number;
  /** The admin API's port (`http://127.0.0.1:<adminPort>/admin`). */
  readonly adminPort: number;
  /** The WebSocket binding's port (PROTOCOL.md §11); 0 when SECURECHAT_WS_PORT=off. */
  readonly wsPort: number;
  /** The admin bearer token: ADMIN_TOKEN when the test set it, else the generated file's. */
  adminToken(): string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** SIGTERM and wait for exit; `kill` sends SIGKILL instead. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts again on the same port and data directory. */
  restart(): Promise<RunningServer>;
}

/** The TypeScript sources, compiled on load; `COMPILED_ENTRY` runs `npm run build`'s output. */
export const SOURCE_ENTRY = ['-r', '@swc-node/register', 'apps/embedded/src/main.ts'];
export const COMPILED_ENTRY = ['dist/apps/embedded/src/main.js'];

export async function startEmbeddedServer(
  env: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), 'securechat-e2e-')),
  port = 0,
  entry: readonly string[] = SOURCE_ENTRY,
): Promise<RunningServer> {
  const child = spawn(process.execPath, [...entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      SECURECHAT_HOST: '127.0.0.1',
      SECURECHAT_PORT: String(port),
      SECURECHAT_DATA_DIR: dataDir,
      // Parallel test processes must not collide on the default 9090.
      SECURECHAT_OPS_PORT: '0',
      // …nor on the admin API's default 8080, nor on the browser port's 7780.
      SECURECHAT_ADMIN_PORT: '0',
      SECURECHAT_WS_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const ready = await new Promise<{ host: string; port: number; fingerprint: string }>(
    (resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 90_000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        // Complete lines only: a chunk may end inside the ready line.
        const line = output
          .split('\n')
          .slice(0, -1)
          .find((l) => l.startsWith('{"event":"ready"'));
        if (line) {
          clearTimeout(timer);
          resolveReady(JSON.parse(line) as { host: string; port: number; fingerprint: string });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${output}`));
      });
    },
  );
  const exited = new Promise<number | null>((resolveExit) =>
    child.once('exit', (code) => resolveExit(code)),
  );
  const server: RunningServer = {
    ...ready,
    opsPort: (ready as { ops_port?: number }).ops_port ?? 0,
    adminPort: (ready as { admin_port?: number }).admin_port ?? 0,
    wsPort: (ready as { ws_port?: number }).ws_port ?? 0,
    adminToken: () => env.ADMIN_TOKEN ?? readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(),
    dataDir,
    process: child,
    output: () => output,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    restart: async () => {
      await server.stop();
      return startEmbeddedServer(env, dataDir, ready.port, entry);
    },
  };
  return server;
}

export function removeDataDir(server: RunningServer): void {
  rmSync(server.dataDir, { recursive: true, force: true });
}
