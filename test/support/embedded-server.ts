/**
 * Starts the embedded server (`apps/embedded/src/main.ts`) as a real child process on a
 * random port and a fresh data directory, and stops it again.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export interface RunningServer {
  readonly port: number;
  readonly host: string;
  readonly fingerprint: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** SIGTERM and wait for exit; `kill` sends SIGKILL instead. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts again on the same port and data directory. */
  restart(): Promise<RunningServer>;
}

export async function startEmbeddedServer(
  env: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), 'securechat-e2e-')),
  port = 0,
): Promise<RunningServer> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/embedded/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      SECURECHAT_HOST: '127.0.0.1',
      SECURECHAT_PORT: String(port),
      SECURECHAT_DATA_DIR: dataDir,
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
        const line = output.split('\n').find((l) => l.startsWith('{"event":"ready"'));
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
    dataDir,
    process: child,
    output: () => output,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    restart: async () => {
      await server.stop();
      return startEmbeddedServer(env, dataDir, ready.port);
    },
  };
  return server;
}

export function removeDataDir(server: RunningServer): void {
  rmSync(server.dataDir, { recursive: true, force: true });
}
