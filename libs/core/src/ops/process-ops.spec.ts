/** Shutdown deadline and wiring of ProcessOps, with fake timers and a fake exit. */
import { Writable } from 'node:stream';

import { loadConfig } from '../config/config.schema';
import { MetricsRepository } from './metrics.repository';
import { OpsServer } from './ops.server';
import { PinoLoggerService } from './pino-logger';
import { ProcessOps } from './process-ops';

function makeOps(env: Record<string, string> = {}) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const exit = jest.fn();
  const config = loadConfig({ SECURECHAT_OPS_PORT: '0', ...env });
  const ops = new ProcessOps(config, {
    service: 'test',
    roles: ['auth'],
    logDestination: destination,
    exit,
  });
  return { ops, exit, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

afterEach(() => jest.useRealTimers());

it('exits 1 with a warning when shutdown is not done by the deadline', () => {
  jest.useFakeTimers();
  const { ops, exit, logs } = makeOps({ SECURECHAT_SHUTDOWN_TIMEOUT_MS: '3000' });
  ops.beginShutdown('SIGTERM');
  ops.beginShutdown('SIGTERM'); // a second signal arms nothing more
  jest.advanceTimersByTime(2_999);
  expect(exit).not.toHaveBeenCalled();
  jest.advanceTimersByTime(1);
  expect(exit).toHaveBeenCalledTimes(1);
  expect(exit).toHaveBeenCalledWith(1);
  expect(logs()).toEqual([
    expect.objectContaining({ level: 'info', msg: 'shutting down', signal: 'SIGTERM' }),
    expect.objectContaining({ level: 'warn', msg: 'shutdown did not finish in time; exiting now' }),
  ]);
});

it("hands Nest the signals with process exit, so a finished shutdown exits 0 (Nest's useProcessExit)", () => {
  const { ops } = makeOps();
  const app = { enableShutdownHooks: jest.fn() };
  const before = process.listenerCount('SIGTERM');
  ops.enableShutdown(app);
  try {
    expect(app.enableShutdownHooks).toHaveBeenCalledWith(['SIGTERM', 'SIGINT'], {
      useProcessExit: true,
    });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
  } finally {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const listeners = process.listeners(signal);
      process.removeListener(signal, listeners[listeners.length - 1]!);
    }
  }
});

it('provides its metrics and logger to Nest, and serves ops until closed', async () => {
  const { ops } = makeOps();
  const providers = ops.providers();
  expect(providers).toEqual(
    expect.arrayContaining([
      { provide: MetricsRepository, useValue: ops.metrics },
      { provide: PinoLoggerService, useValue: ops.logger },
    ]),
  );
  const port = await ops.start([]);
  expect(port).toBeGreaterThan(0);
  const answer = await fetch(`http://127.0.0.1:${port}/readyz`);
  expect(answer.status).toBe(200);
  const drain = jest.spyOn(OpsServer.prototype, 'drain');
  jest.useFakeTimers(); // the shutdown deadline must not outlive the test
  ops.beginShutdown('SIGINT');
  jest.clearAllTimers();
  jest.useRealTimers();
  expect(drain).toHaveBeenCalledTimes(1);
  await ops.close();
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
});
