/**
 * Runs the `securechat` command as a real process (through its bin script, as a user would
 * with `npx securechat`), for the CLI's end-to-end tests.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
export const CLI_BIN = resolve(ROOT, 'apps/cli/bin/securechat.js');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout or stderr (as chosen) has a line matching `pattern`. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code and everything printed. */
  done(): Promise<CliRun>;
}

export function spawnCli(
  args: string[],
  env: Record<string, string>,
  command: { file: string; args: string[]; cwd?: string } = {
    file: process.execPath,
    args: [CLI_BIN],
  },
): CliProcess {
  const child = spawn(command.file, [...command.args, ...args], {
    cwd: command.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: 'pipe',
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<CliRun>((resolveExit) =>
    child.once('close', (code) => resolveExit({ code, stdout: out, stderr: err })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (pattern, stream = 'stdout', timeoutMs = 30_000) =>
      new Promise<string>((resolveWait, reject) => {
        const started = Date.now();
        const poll = (): void => {
          const text = stream === 'stdout' ? out : err;
          const line = text.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) return resolveWait(line);
          if (child.exitCode !== null || Date.now() - started > timeoutMs) {
            return reject(
              new Error(`no line matching ${String(pattern)}\nstdout:\n${out}\nstderr:\n${err}`),
            );
          }
          setTimeout(poll, 50);
        };
        poll();
      }),
    done: () => exited,
  };
}

/** Runs to completion, with `input` on stdin (then end of input). */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<CliRun> {
  const cli = spawnCli(args, env);
  if (input !== undefined) cli.child.stdin.end(input);
  else cli.child.stdin.end();
  return cli.done();
}
