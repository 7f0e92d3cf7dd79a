import { type Readable, type Writable } from 'node:stream';

/** A readable the CLI reads from: stdin, or a pseudo-terminal's. */
export type CliInput = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** A writable the CLI writes to: stdout/stderr, possibly a terminal of known size. */
export type CliOutput = Writable & { isTTY?: boolean; columns?: number; rows?: number };

/**
 * Everything the CLI touches of its process, so that commands run in tests against plain
 * streams and a made-up environment.
 */
export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: CliInput;
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** Resolves when the user asks to stop (SIGINT/SIGTERM); commands finish cleanly then. */
  readonly interrupted: Promise<void>;
}

export function writeLine(out: CliOutput, text = ''): void {
  out.write(`${text}\n`);
}
