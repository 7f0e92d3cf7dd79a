/** Starts one SecureChat entry point as a child process and waits for its ready line. */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

export interface ServiceProcess {
  readonly name: string;
  readonly ready: Record<string, unknown> & { event: 'ready' };
  /** The ops endpoints' port (/healthz, /readyz, /metrics), from the ready line. */
  readonly opsPort: number;
  readonly child: ChildProcess;
  output(): string;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit code once it exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export async function spawnService(
  name: string,
  entry: string,
  env: Record<string, string>,
  timeoutMs = 90_000,
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', entry], {
    cwd: ROOT,
    // SECURECHAT_OPS_PORT=0 by default: parallel test processes must not collide on 9090.
    // SECURECHAT_ADMIN_PORT=0 likewise for 8080 (auth processes serve the admin API).
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      SECURECHAT_OPS_PORT: '0',
      SECURECHAT_ADMIN_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) =>
    child.once('exit', (code) => resolveExit(code)),
  );
  const ready = await new Promise<ServiceProcess['ready']>((resolveReady, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start:\n${output}`)),
      timeoutMs,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      // Complete lines only: a chunk may end inside the ready line.
      const line = output
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith('{"event":"ready"'));
      if (line) {
        clearTimeout(timer);
        resolveReady(JSON.parse(line) as ServiceProcess['ready']);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output}`));
    });
  });
  return {
    name,
    ready,
    opsPort: typeof ready.ops_port === 'number' ? ready.ops_port : 0,
    child,
    exited,
    output: () => output,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
