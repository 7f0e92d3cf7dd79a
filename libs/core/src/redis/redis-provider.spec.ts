/** The one way mains register Redis adapters, on fakes: what is bound, injected, and connected when. */
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import { CONFIG, loadConfig, type SecureChatConfig } from '../config/config.schema';
import { FanoutPort } from '../fanout/fanout.port';
import { RedisFanout } from '../fanout/redis.fanout';
import { RedisSessionCommands } from '../sessions/redis.session-commands';
import { SessionCommandPort } from '../sessions/session-command.port';
import { RedisStreamsClient } from '../transport/redis-streams.client';
import { redisEndpoint, redisProvider } from './redis-provider';

const ADAPTER = Symbol('Adapter');

/** Stands in for a Redis adapter: records connect/close, connect settles when told. */
class FakeAdapter {
  readonly events: string[] = [];
  connected = false;
  /** How many Consumers have been built with this adapter (kept out of `events`). */
  consumersBuilt = 0;
  #settle!: { resolve: () => void; reject: (error: Error) => void };
  readonly #connection = new Promise<void>((resolve, reject) => {
    this.#settle = { resolve, reject };
  });

  constructor(readonly config?: SecureChatConfig) {}

  connect(): Promise<void> {
    this.events.push('connect');
    return this.#connection.then(() => {
      this.connected = true;
    });
  }

  finishConnect(error?: Error): void {
    if (error) this.#settle.reject(error);
    else this.#settle.resolve();
  }

  close(): void {
    this.events.push('close');
  }
}

/** What injects the adapter: it records whether the adapter was connected by then. */
@Injectable()
class Consumer {
  readonly sawConnected: boolean;

  constructor(@Inject(ADAPTER) adapter: FakeAdapter) {
    this.sawConnected = adapter.connected;
    adapter.consumersBuilt += 1;
  }
}

/** Lets `count` turns of the event loop pass (every pending promise job runs in each). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await new Promise(setImmediate);
}

/** Yields a turn at a time until `done()`; fails after `limit` turns. */
async function turnsUntil(done: () => boolean, limit = 100): Promise<void> {
  for (let i = 0; !done(); i += 1) {
    if (i === limit) throw new Error(`not done after ${limit} turns`);
    await turns(1);
  }
}

async function context(providers: unknown[]) {
  @Module({ providers: [...(providers as never[]), Consumer] })
  class TestModule {}
  return NestFactory.createApplicationContext(TestModule, { logger: false });
}

describe('redisProvider', () => {
  it('binds the token to what create makes, without connecting by default', async () => {
    const adapter = new FakeAdapter();
    const app = await context([redisProvider(ADAPTER, () => adapter)]);
    expect(app.get(ADAPTER)).toBe(adapter);
    expect(adapter.events).toEqual([]);
    await app.close();
  });

  it('with connect, resolves only once connect() has: injectors see it connected', async () => {
    const adapter = new FakeAdapter();
    const starting = context([redisProvider(ADAPTER, () => adapter, { connect: true })]);
    // Connect stays pending until finishConnect: wait for the factory to call it, then give
    // Nest turns enough to build the consumer, were the provider not waiting for connect.
    await turnsUntil(() => adapter.events.includes('connect'));
    await turns(5);
    expect(adapter.events).toEqual(['connect']);
    expect(adapter.consumersBuilt).toBe(0);

    adapter.finishConnect();
    const app = await starting;
    expect(adapter.consumersBuilt).toBe(1);
    expect(app.get(Consumer).sawConnected).toBe(true);
    await app.close();
  });

  it('hands create the injected tokens, in order', async () => {
    const config = loadConfig({});
    const provider = redisProvider(ADAPTER, (c: SecureChatConfig) => new FakeAdapter(c), {
      inject: [CONFIG],
    });
    expect(provider.inject).toEqual([CONFIG]);
    const app = await context([{ provide: CONFIG, useValue: config }, provider]);
    expect(app.get<FakeAdapter>(ADAPTER).config).toBe(config);
    await app.close();
  });

  it('closes the adapter when connect fails, and fails with connect’s error', async () => {
    const adapter = new FakeAdapter();
    adapter.finishConnect(new Error('NOAUTH'));
    const provider = redisProvider(ADAPTER, () => adapter, { connect: true });
    await expect(provider.useFactory()).rejects.toThrow('NOAUTH');
    expect(adapter.events).toEqual(['connect', 'close']);
  });

  it('refuses connect for an adapter that has no connect()', async () => {
    const provider = redisProvider(ADAPTER, () => ({}), { connect: true });
    await expect(provider.useFactory()).rejects.toThrow(/Symbol\(Adapter\).*no connect\(\)/);
  });
});

describe('redisEndpoint', () => {
  it('is the configuration’s REDIS_URL and key prefix', () => {
    expect(redisEndpoint({ redisUrl: 'redis://r:6379/2', redisPrefix: 'x:' })).toEqual({
      url: 'redis://r:6379/2',
      prefix: 'x:',
    });
  });
});

describe('the adapters’ provider(redis)', () => {
  const redis = { url: 'redis://127.0.0.1:1', prefix: 'unit:' };

  afterEach(() => jest.restoreAllMocks());

  it.each([
    [
      'RedisFanout',
      FanoutPort,
      RedisFanout,
      (o?: { subscribed: boolean }) => RedisFanout.provider(redis, o),
    ],
    [
      'RedisSessionCommands',
      SessionCommandPort,
      RedisSessionCommands,
      (o?: { subscribed: boolean }) => RedisSessionCommands.provider(redis, o),
    ],
  ] as const)(
    '%s subscribes first only when asked (a gateway)',
    async (_name, token, type, provider) => {
      const connect = jest.spyOn(type.prototype, 'connect').mockResolvedValue();
      for (const [options, calls] of [
        [undefined, 0],
        [{ subscribed: false }, 0],
        [{ subscribed: true }, 1],
      ] as const) {
        connect.mockClear();
        const bound = provider(options) as { provide: unknown; useFactory: () => Promise<unknown> };
        expect(bound.provide).toBe(token);
        const adapter = (await bound.useFactory()) as RedisFanout | RedisSessionCommands;
        expect(adapter).toBeInstanceOf(type);
        expect(connect).toHaveBeenCalledTimes(calls);
        await adapter.close();
      }
    },
  );

  it('RedisStreamsClient is connected before it is handed out', async () => {
    const connect = jest.spyOn(RedisStreamsClient.prototype, 'connect').mockResolvedValue();
    const token = Symbol('AUTH_CLIENT');
    const bound = RedisStreamsClient.provider(token, redis);
    expect(bound.provide).toBe(token);
    const client = await bound.useFactory();
    expect(client).toBeInstanceOf(RedisStreamsClient);
    expect(connect).toHaveBeenCalledTimes(1);
    await client.close();
  });
});
