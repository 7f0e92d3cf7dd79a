/** Shutdown deadline and wiring of ProcessOps, with fake timers and a fake exit. */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';

import { loadConfig } from '../config/config.schema';
import { MetricsRepository } from './metrics.repository';
import { OpsServer } from './ops.server';
import { PinoLoggerService } from './pino-logger';
import { ProcessOps, type ProcessOpsOptions } from './process-ops';

function makeOps(env: Record<string, string> = {}, more: Partial<ProcessOpsOptions> = {}) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const exit = jest.fn();
  // `exit` and uncaught exceptions of a stand-in process: the test runner's must stay untouched.
  const processEvents = new EventEmitter();
  const config = loadConfig({ SECURECHAT_OPS_PORT: '0', ...env });
  const ops = new ProcessOps(config, {
    service: 'test',
    roles: ['auth'],
    logDestination: destination,
    exit,
    processEvents,
    stopWithParent: false,
    ...more,
  });
  return {
    ops,
    exit,
    processEvents,
    lines,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Undoes enableShutdown's signal listeners on the test runner's process. */
function removeSignalListeners(): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const listeners = process.listeners(signal);
    process.removeListener(signal, listeners[listeners.length - 1]!);
  }
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
    removeSignalListeners();
  }
});

describe('the last line', () => {
  const enabled = (env: Record<string, string> = {}) => {
    const made = makeOps(env);
    made.ops.enableShutdown({ enableShutdownHooks: jest.fn() });
    removeSignalListeners();
    return made;
  };

  it('is `stopped` with the signal that ended the process', () => {
    jest.useFakeTimers(); // the shutdown deadline must not outlive the test
    const { ops, processEvents, logs } = enabled();
    ops.beginShutdown('SIGTERM');
    processEvents.emit('exit', 0);
    expect(logs().at(-1)).toMatchObject({
      level: 'info',
      msg: 'stopped',
      reason: 'SIGTERM',
      code: 0,
    });
  });

  it('is `stopped` with the error when a failed start or an uncaught exception ends it', () => {
    const started = enabled();
    ProcessOps.noteFailure(new Error('listen EADDRINUSE: address already in use 127.0.0.1:7777'));
    started.processEvents.emit('exit', 1);
    expect(started.logs().at(-1)).toMatchObject({
      level: 'error',
      msg: 'stopped',
      reason: 'error',
      error: 'listen EADDRINUSE: address already in use 127.0.0.1:7777',
      code: 1,
    });

    const crashed = enabled();
    crashed.processEvents.emit('uncaughtExceptionMonitor', new TypeError('x is undefined'));
    crashed.processEvents.emit('exit', 7);
    expect(crashed.logs().at(-1)).toMatchObject({
      reason: 'error',
      error: 'x is undefined',
      code: 7,
    });
  });

  it('says `exit` when nothing else is known, and is written once', () => {
    const { processEvents, logs } = enabled();
    processEvents.emit('exit', 0);
    processEvents.emit('exit', 0);
    expect(logs().filter((l) => l.msg === 'stopped')).toEqual([
      expect.objectContaining({ reason: 'exit', code: 0 }),
    ]);
  });
});

describe('started by npm', () => {
  it('shuts down, as on SIGTERM, once its parent process is gone', () => {
    jest.useFakeTimers();
    let parent = 4242;
    const signalSelf = jest.fn();
    const { ops, processEvents, logs } = makeOps(
      {},
      { stopWithParent: true, parentPid: () => parent, signalSelf },
    );
    ops.enableShutdown({ enableShutdownHooks: jest.fn() });
    removeSignalListeners();
    jest.advanceTimersByTime(5_000);
    expect(signalSelf).not.toHaveBeenCalled();
    parent = 1; // re-parented to init: npm was killed outright
    jest.advanceTimersByTime(1_000);
    expect(signalSelf).toHaveBeenCalledWith('SIGTERM');
    ops.beginShutdown('SIGTERM'); // what that signal does
    jest.advanceTimersByTime(5_000);
    expect(signalSelf).toHaveBeenCalledTimes(1);
    jest.clearAllTimers();
    processEvents.emit('exit', 0);
    expect(logs().at(-1)).toMatchObject({ msg: 'stopped', reason: 'parent_exited', code: 0 });
  });

  it('notices a parent that went away before shutdown was enabled (a slow first start)', () => {
    jest.useFakeTimers();
    let parent = 4242;
    const signalSelf = jest.fn();
    const { ops } = makeOps({}, { stopWithParent: true, parentPid: () => parent, signalSelf });
    parent = 1; // npm killed while the database was still being set up
    ops.enableShutdown({ enableShutdownHooks: jest.fn() });
    removeSignalListeners();
    jest.advanceTimersByTime(1_000);
    expect(signalSelf).toHaveBeenCalledWith('SIGTERM');
    jest.clearAllTimers();
  });

  it.each([
    ['start', true],
    ['start:auth', true],
    ['test', false],
    ['bench', false],
    [undefined, false],
  ])('watches its parent by default only under an npm start script (%s → %s)', (event, on) => {
    jest.useFakeTimers();
    const saved = process.env.npm_lifecycle_event;
    if (event === undefined) delete process.env.npm_lifecycle_event;
    else process.env.npm_lifecycle_event = event;
    try {
      let parent = 4242;
      const signalSelf = jest.fn();
      const { ops } = makeOps(
        {},
        { stopWithParent: undefined, parentPid: () => parent, signalSelf },
      );
      ops.enableShutdown({ enableShutdownHooks: jest.fn() });
      removeSignalListeners();
      parent = 1;
      jest.advanceTimersByTime(2_000);
      expect(signalSelf.mock.calls.length > 0).toBe(on);
    } finally {
      if (saved === undefined) delete process.env.npm_lifecycle_event;
      else process.env.npm_lifecycle_event = saved;
      jest.clearAllTimers();
    }
  });

  it('does not watch its parent when told not to (run directly, or under a supervisor)', () => {
    jest.useFakeTimers();
    let parent = 4242;
    const signalSelf = jest.fn();
    const { ops } = makeOps({}, { stopWithParent: false, parentPid: () => parent, signalSelf });
    ops.enableShutdown({ enableShutdownHooks: jest.fn() });
    removeSignalListeners();
    parent = 1;
    jest.advanceTimersByTime(5_000);
    expect(signalSelf).not.toHaveBeenCalled();
  });
});

it('announces through the log output, after every line logged so far: ready line, then banner', () => {
  const { ops, lines } = makeOps();
  ops.logger.log('listening on 127.0.0.1:7777', 'Gateway');
  ops.announce({ port: 7777 }, 'SecureChat is listening on 127.0.0.1:7777\n  more');
  expect(lines).toEqual([
    expect.stringMatching(/"msg":"listening on 127.0.0.1:7777"/),
    '{"event":"ready","port":7777}',
    'SecureChat is listening on 127.0.0.1:7777',
    '  more',
  ]);
});

it('reads SECURECHAT_LOG_FORMAT: auto by default, json or pretty when set, nothing else', () => {
  expect(loadConfig({}).logFormat).toBe('auto');
  expect(loadConfig({ SECURECHAT_LOG_FORMAT: 'json' }).logFormat).toBe('json');
  expect(loadConfig({ SECURECHAT_LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
  expect(() => loadConfig({ SECURECHAT_LOG_FORMAT: 'yaml' })).toThrow(
    'SECURECHAT_LOG_FORMAT: must be auto, json or pretty',
  );
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
