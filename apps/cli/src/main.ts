/**
 * The `securechat` process: wires runCli to the real stdin/stdout/stderr and signals, and
 * exits with its code once the output is flushed.
 */
import { once } from 'node:events';

import { runCli } from './cli';
import { EXIT } from './exit-codes';

let signals = 0;
const interrupted = new Promise<void>((resolve) => {
  const onSignal = (): void => {
    signals += 1;
    // The first signal asks the command to finish cleanly (bye → receipt); a second one quits.
    if (signals > 1) process.exit(EXIT.interrupted);
    resolve();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
});

async function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableNeedDrain) await once(stream, 'drain');
}

void runCli(process.argv.slice(2), {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  interrupted,
}).then(
  async (code) => {
    await Promise.all([flush(process.stdout), flush(process.stderr)]);
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`securechat: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(EXIT.failure);
  },
);
