import 'reflect-metadata';

import { randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Controller,
  type DynamicModule,
  type INestMicroservice,
  IntrinsicException,
  Logger,
  Module,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  Ctx,
  EventPattern,
  MessagePattern,
  type MicroserviceOptions,
  Payload,
} from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom, throwError } from 'rxjs';

import { RedisStreamsClient } from './redis-streams.client';
import {
  RedisStreamsContext,
  RedisStreamsServer,
  type RedisStreamsServerOptions,
} from './redis-streams.server';
import { request } from './service-client';
import { ServiceUnavailableError } from './service-unavailable.error';
import { deleteKeysWithPrefix } from '../../test/redis-test-keys';
import { eventually } from '../../test/eventually';

/**
 * The Redis Streams transport against a real Redis: one answer per request across instances,
 * concurrency, take-over after a crash, failures that quote nothing. Each test gets its own key
 * prefix under this file's random one, so tests (and parallel test files) never share a stream.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const FILE_PREFIX = `sc-test-${randomBytes(6).toString('hex')}:`;
const TIMEOUT_MS = 5000;

/** What the handlers of one server instance saw. */
class Probe {
  readonly seen: number[] = [];
  running = 0;
  maxRunning = 0;
  /** Handlers waiting in gather(), each until `count` run at once. */
  readonly #gathering: { count: number; go: () => void }[] = [];
  /** Handlers waiting in hold() until the test calls release(). */
  readonly #held: (() => void)[] = [];

  /**
   * Resolves once `count` handlers are running at the same time: a server that ran them one
   * after the other, or fewer at once, never gets there and its callers time out.
   */
  gather(count: number): Promise<void> {
    const gathered = new Promise<void>((go) => this.#gathering.push({ count, go }));
    for (const waiter of this.#gathering.filter((w) => this.running >= w.count)) waiter.go();
    return gathered;
  }

  hold(): Promise<void> {
    return new Promise((release) => this.#held.push(release));
  }

  release(): void {
    for (const release of this.#held.splice(0)) release();
  }

  async track<T>(n: number, work: () => Promise<T>): Promise<T> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      return await work();
    } finally {
      this.running--;
      this.seen.push(n);
    }
  }
}

/** Thrown with the payload in its message, as careless code would. Intrinsic: Nest logs nothing. */
class LeakyFailure extends IntrinsicException {}

interface Slow {
  n: number;
  ms: number;
}

interface Gather {
  n: number;
  of: number;
}

@Controller()
class ProbeController {
  constructor(private readonly probe: Probe) {}

  @MessagePattern('relay.echo')
  echo(@Payload() data: { n: number }): Promise<{ n: number }> {
    return this.probe.track(data.n, () => Promise.resolve(data));
  }

  @MessagePattern('relay.slow')
  slow(@Payload() data: Slow): Promise<Slow> {
    return this.probe.track(data.n, () => sleep(data.ms, data));
  }

  @MessagePattern('relay.gather')
  gather(@Payload() data: Gather): Promise<Gather> {
    return this.probe.track(data.n, () => this.probe.gather(data.of).then(() => data));
  }

  @MessagePattern('relay.held')
  held(@Payload() data: { n: number }): Promise<{ n: number }> {
    return this.probe.track(data.n, () => this.probe.hold().then(() => data));
  }

  @EventPattern('relay.note')
  note(@Payload() data: { n: number }): Promise<void> {
    return this.probe.track(data.n, () => Promise.resolve());
  }

  @MessagePattern('relay.context')
  context(@Ctx() ctx: RedisStreamsContext): { pattern: string; entryId: string; again: boolean } {
    return { pattern: ctx.getPattern(), entryId: ctx.getEntryId(), again: ctx.isRedelivery() };
  }

  @MessagePattern('relay.throw')
  throws(@Payload() data: { secret: string }): never {
    throw new LeakyFailure(`cannot handle ${data.secret}`);
  }

  @MessagePattern('relay.error_stream')
  errorStream(@Payload() data: { secret: string }) {
    return throwError(() => new LeakyFailure(`cannot handle ${data.secret}`));
  }
}

@Module({})
class ProbeModule {
  static with(probe: Probe): DynamicModule {
    return {
      module: ProbeModule,
      controllers: [ProbeController],
      providers: [{ provide: Probe, useValue: probe }],
    };
  }
}

let admin: Redis;
let testNumber = 0;
let prefix: string;
let client: RedisStreamsClient;
let apps: INestMicroservice[] = [];

async function startServer(
  probe = new Probe(),
  options: Partial<RedisStreamsServerOptions> = {},
): Promise<{ probe: Probe; server: RedisStreamsServer; app: INestMicroservice }> {
  const server = new RedisStreamsServer({ url: REDIS_URL, service: 'relay', prefix, ...options });
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(ProbeModule.with(probe), {
    strategy: server,
    logger: ['error'],
  });
  apps.push(app);
  await app.listen();
  return { probe, server, app };
}

function call<T>(pattern: string, payload: unknown, timeoutMs = TIMEOUT_MS): Promise<T> {
  return request<T>(client, pattern, payload, timeoutMs);
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, n) => n);
}

/** The Redis-side id of the connection whose CLIENT SETNAME ends with `suffix`. */
async function connectionInfo(suffix: string): Promise<string> {
  const list = (await admin.client('LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(`name=${prefix}`) && l.includes(suffix));
  if (line === undefined) throw new Error(`no connection named …${suffix}`);
  return line;
}

async function connectionId(suffix: string): Promise<string> {
  const id = (await connectionInfo(suffix)).match(/\bid=(\d+)/)?.[1];
  if (id === undefined) throw new Error(`no id for …${suffix}`);
  return id;
}

/** Whether the connection waits in a blocking command (flag `b` in CLIENT LIST). */
async function isBlocked(suffix: string): Promise<boolean> {
  return /\bflags=\w*b/.test(await connectionInfo(suffix));
}

/** A TCP relay to Redis that can be cut, as when Redis goes away without a word. */
async function startRedisProxy(): Promise<{ url: string; cut: () => Promise<void> }> {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  const proxy = createServer((inbound) => {
    const outbound = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      const drop = (): void => {
        sockets.delete(socket);
        inbound.destroy();
        outbound.destroy();
      };
      socket.on('error', drop).on('close', drop);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = new URL(REDIS_URL);
  url.hostname = '127.0.0.1';
  url.port = String((proxy.address() as AddressInfo).port);
  return {
    url: url.toString(),
    cut: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Error message of the cause behind a ServiceUnavailableError. */
async function failureOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ServiceUnavailableError);
  return ((error as ServiceUnavailableError).cause as Error).message;
}

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  // Fails the file (never skips it) when Redis is not there.
  await admin.connect();
});

beforeEach(async () => {
  prefix = `${FILE_PREFIX}t${testNumber++}:`;
  client = new RedisStreamsClient({ url: REDIS_URL, prefix });
  await client.connect();
});

afterEach(async () => {
  await client.close();
  await Promise.all(apps.map((app) => app.close()));
  apps = [];
});

afterAll(async () => {
  await deleteKeysWithPrefix(admin, FILE_PREFIX);
  await admin.quit();
});

it('answers a request through request() and leaves nothing in the stream', async () => {
  await startServer();
  await expect(call('relay.echo', { n: 7, text: 'hello' })).resolves.toEqual({
    n: 7,
    text: 'hello',
  });
  const context = await call<{ pattern: string; entryId: string; again: boolean }>(
    'relay.context',
    {},
  );
  expect(context).toEqual({ pattern: 'relay.context', entryId: expect.any(String), again: false });
  // Answered entries are acknowledged and deleted: no payload lingers in Redis.
  await eventually(async () => (await admin.xlen(`${prefix}req:relay`)) === 0);
  expect(await admin.xpending(`${prefix}req:relay`, 'relay')).toEqual([0, null, null, null]);
});

it('delivers events (emit) without a reply', async () => {
  const { probe } = await startServer();
  await lastValueFrom(client.emit('relay.note', { n: 3 }), { defaultValue: undefined });
  await eventually(() => probe.seen.includes(3));
  await eventually(async () => (await admin.xlen(`${prefix}req:relay`)) === 0);
});

it('runs 200 concurrent requests concurrently and answers each', async () => {
  const { probe } = await startServer();
  // Each handler waits until all 200 run at once: only a server that runs them concurrently
  // (more than readCount of them, so over several reads) answers any.
  const results = await Promise.all(
    range(200).map((n) => call<Gather>('relay.gather', { n, of: 200 })),
  );
  expect(results.map((r) => r.n)).toEqual(range(200));
  expect(probe.seen).toHaveLength(200);
  expect(probe.maxRunning).toBe(200);
});

it('runs at most maxInFlight handlers at once', async () => {
  const { probe } = await startServer(new Probe(), { maxInFlight: 5 });
  await Promise.all(range(40).map((n) => call<Slow>('relay.slow', { n, ms: 10 })));
  expect(probe.seen).toHaveLength(40);
  expect(probe.maxRunning).toBeLessThanOrEqual(5);
  expect(probe.maxRunning).toBeGreaterThan(1);
});

it('hands each request to exactly one of two instances', async () => {
  const a = await startServer(new Probe(), { readCount: 16 });
  const b = await startServer(new Probe(), { readCount: 16 });
  const results = await Promise.all(range(400).map((n) => call<Slow>('relay.slow', { n, ms: 5 })));
  expect(results.map((r) => r.n)).toEqual(range(400));
  expect(a.probe.seen.length + b.probe.seen.length).toBe(400);
  expect(new Set([...a.probe.seen, ...b.probe.seen]).size).toBe(400);
  expect(a.probe.seen.length).toBeGreaterThan(0);
  expect(b.probe.seen.length).toBeGreaterThan(0);
});

/**
 * Sends a request that an "instance" reads and then dies with (a bare consumer that is never
 * heard of again), after `laterDeliveries` more instances took it over and died too. Resolves
 * with the caller's pending answer once the request sits abandoned in the pending list.
 */
async function requestHeldByDeadInstances<T>(
  pattern: string,
  payload: unknown,
  laterDeliveries = 0,
): Promise<{ answer: Promise<T> }> {
  const stream = `${prefix}req:relay`;
  const doomed = new Redis(REDIS_URL);
  await doomed.xgroup('CREATE', stream, 'relay', '$', 'MKSTREAM');
  const read = doomed.xreadgroup(
    'GROUP',
    'relay',
    'doomed',
    'COUNT',
    1,
    'BLOCK',
    5000,
    'STREAMS',
    stream,
    '>',
  );
  const answer = call<T>(pattern, payload, TIMEOUT_MS);
  const reply = (await read) as [stream: string, entries: [id: string, fields: string[]][]][];
  expect(reply).toEqual([[stream, [[expect.any(String), expect.any(Array)]]]]);
  const id = reply[0]![1][0]![0];
  for (let i = 0; i < laterDeliveries; i++)
    await doomed.xclaim(stream, 'relay', `doomed${i}`, 0, id);
  doomed.disconnect();
  return { answer };
}

it('takes over a request held by an instance that died', async () => {
  const stream = `${prefix}req:relay`;
  const { answer } = await requestHeldByDeadInstances<{ again: boolean }>('relay.context', {});

  await startServer(new Probe(), { claimIdleMs: 500 });
  await expect(answer).resolves.toMatchObject({ again: true });
  expect(await admin.xpending(stream, 'relay')).toEqual([0, null, null, null]);
});

it('abandons a request that every instance before it died on, without running it again', async () => {
  const stream = `${prefix}req:relay`;
  // Four more instances took it over and died too: five deliveries in all.
  const { answer } = await requestHeldByDeadInstances('relay.echo', { n: 7 }, 4);

  const { probe } = await startServer(new Probe(), { claimIdleMs: 300, maxDeliveries: 5 });
  expect(await failureOf(answer)).toContain('abandoned');
  expect(probe.seen).toEqual([]);
  expect(await admin.xpending(stream, 'relay')).toEqual([0, null, null, null]);
  expect(await admin.xlen(stream)).toBe(0);
});

it('still takes over a request delivered fewer than maxDeliveries times', async () => {
  const { answer } = await requestHeldByDeadInstances<{ n: number }>('relay.echo', { n: 8 }, 3);

  const { probe } = await startServer(new Probe(), { claimIdleMs: 300, maxDeliveries: 5 });
  await expect(answer).resolves.toEqual({ n: 8 });
  expect(probe.seen).toEqual([8]);
});

it('does not take over requests from a live instance whose handlers are slow', async () => {
  const probe = new Probe();
  await startServer(probe, { claimIdleMs: 300 });
  await startServer(probe, { claimIdleMs: 300 });
  // Each handler runs 1200 ms, four times claimIdleMs: without keep-alive, the other instance
  // (or the same one) would run it again.
  const results = await Promise.all(range(6).map((n) => call<Slow>('relay.slow', { n, ms: 1200 })));
  expect(results).toHaveLength(6);
  await sleep(400);
  expect(probe.seen.sort((x, y) => x - y)).toEqual(range(6));
});

it('answers an unknown pattern with an error', async () => {
  await startServer();
  expect(await failureOf(call('relay.nope', {}))).toBe('service error: no handler for relay.nope');
  expect(await failureOf(call('nodot', {}))).toMatch(/pattern names no service/);
});

it('reports a failed handler by class only, never with its message', async () => {
  const { server } = await startServer();
  const thrown = await failureOf(call('relay.throw', { secret: 'hunter2' }));
  expect(thrown).toBe('service error: handler failed');
  const errored = await failureOf(call('relay.error_stream', { secret: 'hunter2' }));
  expect(errored).toBe('service error: handler failed');
  // Nest's exception filter has made both plain objects; a handler outside Nest's pipeline
  // still gets its class reported.
  server.addHandler('relay.bare', () => Promise.reject(new TypeError('cannot handle hunter2')));
  const bare = await failureOf(call('relay.bare', {}));
  expect(bare).toBe('service error: handler failed (TypeError)');
  // And the server goes on answering.
  await expect(call('relay.echo', { n: 1 })).resolves.toEqual({ n: 1 });
});

it('fails waiting requests when the reply connection drops, and resubscribes', async () => {
  await startServer();
  const waiting = call('relay.slow', { n: 1, ms: 500 });
  await sleep(100);
  await admin.client('KILL', 'ID', await connectionId(':replies'));
  expect(await failureOf(waiting)).toBe('reply channel connection lost');
  // ioredis reconnects and subscribes to the reply channel again by itself.
  await eventually(async () => {
    const channels = (await admin.pubsub('CHANNELS', `${prefix}reply:*`)) as string[];
    return channels.length === 1;
  });
  await expect(call('relay.echo', { n: 2 })).resolves.toEqual({ n: 2 });
});

it('goes on reading after its read connection drops', async () => {
  const { server } = await startServer();
  await expect(call('relay.echo', { n: 1 })).resolves.toEqual({ n: 1 });
  await admin.client('KILL', 'ID', await connectionId(`${server.consumer}:reader`));
  await expect(call('relay.echo', { n: 2 })).resolves.toEqual({ n: 2 });
});

it('recreates its group when Redis loses the stream', async () => {
  await startServer();
  await expect(call('relay.echo', { n: 1 })).resolves.toEqual({ n: 1 });
  // As after a restart without persistence: the stream, its group and pending list are gone.
  await admin.del(`${prefix}req:relay`);
  await expect(call('relay.echo', { n: 2 })).resolves.toEqual({ n: 2 });
});

it('close() ends its read at once, lets running handlers answer, then disconnects', async () => {
  // A read that would block, and a drain that would wait, for a minute: close() finishing
  // within the test's bound shows that it ended the read, and stopped waiting when the
  // handler finished, rather than waiting either out.
  const { probe, server, app } = await startServer(new Probe(), {
    blockMs: 60_000,
    closeDrainMs: 60_000,
  });
  const answer = call<{ n: number }>('relay.held', { n: 1 });
  await eventually(() => probe.running === 1);
  await eventually(() => isBlocked(`${server.consumer}:reader`));
  const logged = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  let closed = false;
  const closing = app.close().then(() => (closed = true));
  await eventually(async () => !(await isBlocked(`${server.consumer}:reader`)));
  // Reading has stopped; close() now waits for the running handler, and says so.
  await eventually(() =>
    logged.mock.calls.some(([line]) => String(line).startsWith('closing: waiting up to 60000 ms')),
  );
  logged.mockRestore();
  expect(closed).toBe(false);
  probe.release();
  await closing;
  await expect(answer).resolves.toEqual({ n: 1 });
  const [reader, commands] = server.unwrap<[Redis, Redis]>();
  expect([reader.status, commands.status]).toEqual(['end', 'end']);
  // Nothing pending, so the consumer left the group.
  const consumers = (await admin.xinfo('CONSUMERS', `${prefix}req:relay`, 'relay')) as unknown[];
  expect(consumers).toEqual([]);
});

it('close() leaves a handler still running after closeDrainMs to another instance', async () => {
  const { probe, app } = await startServer(new Probe(), { closeDrainMs: 1 });
  const answer = call<{ n: number }>('relay.held', { n: 1 });
  await eventually(() => probe.running === 1);
  await app.close();
  // The handler never finished here: its entry is still pending, for another instance.
  expect(probe.running).toBe(1);
  expect((await admin.xpending(`${prefix}req:relay`, 'relay'))[0]).toBe(1);
  const other = await startServer(new Probe(), { claimIdleMs: 300 });
  await eventually(() => other.probe.running === 1);
  other.probe.release();
  await expect(answer).resolves.toEqual({ n: 1 });
  probe.release();
});

it('fails to listen when Redis cannot be reached', async () => {
  await expect(startServer(new Probe(), { url: 'redis://127.0.0.1:1' })).rejects.toThrow();
});

it('fails waiting requests and closes in bounded time when Redis goes away', async () => {
  const proxy = await startRedisProxy();
  // As above, a read left to block would outlast the test: close() must not wait for it.
  const { app } = await startServer(new Probe(), { url: proxy.url, blockMs: 60_000 });
  const proxied = new RedisStreamsClient({ url: proxy.url, prefix });
  await proxied.connect();
  await expect(request(proxied, 'relay.echo', { n: 1 }, TIMEOUT_MS)).resolves.toEqual({ n: 1 });
  const waiting = request(proxied, 'relay.slow', { n: 2, ms: 300 }, TIMEOUT_MS);
  await sleep(100);
  await proxy.cut();
  expect(await failureOf(waiting)).toBe('reply channel connection lost');
  // Each Redis step of close() is bounded; without those bounds this never settles.
  await Promise.all([app.close(), proxied.close()]);
});
