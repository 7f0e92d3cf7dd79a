/**
 * The in-process Nest transport end to end inside one Nest microservice: InProcessClient →
 * InProcessBus → InProcessServer → @MessagePattern handlers, and request() on top of it.
 */
import 'reflect-metadata';

import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload, type WritePacket } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, type Observable, of, toArray } from 'rxjs';

import { InProcessBus } from './in-process.bus';
import { InProcessClient } from './in-process.client';
import { InProcessServer } from './in-process.server';
import { request } from './service-client';
import { ServiceUnavailableError } from './service-unavailable.error';

/** What the handlers were given, for the tests to look at. */
const received: unknown[] = [];

/** An answer the test releases by hand (for the timeout test). */
let releaseSlow: (value: unknown) => void = () => undefined;

/** Server-side state a handler hands out by reference. */
const serverState = { items: ['kept'], nested: { count: 1 } };

@Controller()
class TestController {
  @MessagePattern('test.sync')
  sync(@Payload() data: { n: number }): { doubled: number } {
    return { doubled: data.n * 2 };
  }

  @MessagePattern('test.async')
  async asyncValue(@Payload() data: { n: number }): Promise<{ squared: number }> {
    await new Promise((resolve) => setImmediate(resolve));
    return { squared: data.n * data.n };
  }

  @MessagePattern('test.stream')
  stream(@Payload() data: { from: number }): Observable<number> {
    return of(data.from, data.from + 1, data.from + 2);
  }

  @MessagePattern('test.throws')
  throws(): never {
    throw new Error('handler exploded');
  }

  @MessagePattern('test.rejects')
  async rejects(): Promise<never> {
    await Promise.resolve();
    throw new Error('handler exploded later');
  }

  @MessagePattern('test.echo')
  echo(@Payload() data: { list: string[]; nested: { x: number } }): unknown {
    received.push(structuredClone(data));
    data.list.push('added by the handler');
    data.nested.x = 99;
    return data;
  }

  @MessagePattern('test.inspect')
  inspect(@Payload() data: unknown): { isBuffer: boolean; isDate: boolean } {
    received.push(data);
    const value = data as { buf?: unknown; when?: unknown };
    return { isBuffer: Buffer.isBuffer(value.buf), isDate: value.when instanceof Date };
  }

  @MessagePattern('test.state')
  state(): typeof serverState {
    return serverState;
  }

  @MessagePattern('test.dates')
  dates(): { at: Date; buf: Buffer; gone: undefined } {
    return {
      at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      buf: Buffer.from([1, 2]),
      gone: undefined,
    };
  }

  @MessagePattern('test.refuse')
  refuse(): { ok: false; code: 'not_found' } {
    return { ok: false, code: 'not_found' };
  }

  @MessagePattern('test.slow')
  slow(): Promise<unknown> {
    return new Promise((resolve) => (releaseSlow = resolve));
  }
}

@Module({ controllers: [TestController] })
class TestModule {}

@Controller()
class OtherController {
  @MessagePattern('other.ping')
  ping(): string {
    return 'pong';
  }
}

@Module({ controllers: [OtherController] })
class OtherModule {}

async function startMicroservice(
  module: new () => unknown,
  bus: InProcessBus,
): Promise<{ app: INestMicroservice; server: InProcessServer }> {
  const server = new InProcessServer(bus);
  const app = await NestFactory.createMicroservice(module, { strategy: server, logger: false });
  await app.listen();
  return { app, server };
}

describe('in-process transport', () => {
  const bus = new InProcessBus();
  const client = new InProcessClient(bus);
  let app: INestMicroservice;
  let server: InProcessServer;

  beforeAll(async () => {
    ({ app, server } = await startMicroservice(TestModule, bus));
  });

  afterAll(async () => {
    await app.close();
  });

  beforeEach(() => {
    received.length = 0;
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  describe('responses', () => {
    it('answers with a handler’s synchronous value', async () => {
      await expect(firstValueFrom(client.send('test.sync', { n: 21 }))).resolves.toEqual({
        doubled: 42,
      });
    });

    it('answers with a handler’s asynchronous value', async () => {
      await expect(firstValueFrom(client.send('test.async', { n: 7 }))).resolves.toEqual({
        squared: 49,
      });
    });

    it('passes on every value of an Observable, then completes', async () => {
      await expect(
        lastValueFrom(client.send<number>('test.stream', { from: 5 }).pipe(toArray())),
      ).resolves.toEqual([5, 6, 7]);
    });

    it('answers concurrent requests each with its own result', async () => {
      const answers = await Promise.all(
        [1, 2, 3, 4].map((n) => firstValueFrom(client.send('test.async', { n }))),
      );
      expect(answers).toEqual([{ squared: 1 }, { squared: 4 }, { squared: 9 }, { squared: 16 }]);
    });

    it('finds the server by pattern on the bus', () => {
      expect(bus.find('test.sync')).toBe(server);
      expect(bus.find('test.unknown')).toBeUndefined();
      expect(server.handles('test.echo')).toBe(true);
      expect(server.handles('test.unknown')).toBe(false);
    });
  });

  describe('JSON cloning', () => {
    it('delivers a Buffer as its JSON form, a Date as a string, and drops undefined members', async () => {
      const answer = await firstValueFrom(
        client.send('test.inspect', {
          buf: Buffer.from('hi'),
          when: new Date(Date.UTC(2020, 1, 3)),
          gone: undefined,
          kept: null,
        }),
      );
      expect(answer).toEqual({ isBuffer: false, isDate: false });
      expect(received).toEqual([
        {
          buf: { type: 'Buffer', data: [104, 105] },
          when: '2020-02-03T00:00:00.000Z',
          kept: null,
        },
      ]);
      expect(received[0]).not.toHaveProperty('gone');
    });

    it('gives the handler a copy: its changes do not reach the caller’s object', async () => {
      const payload = { list: ['from the caller'], nested: { x: 1 } };
      const answer = await firstValueFrom(client.send('test.echo', payload));
      expect(received).toEqual([{ list: ['from the caller'], nested: { x: 1 } }]);
      expect(payload).toEqual({ list: ['from the caller'], nested: { x: 1 } });
      expect(answer).toEqual({
        list: ['from the caller', 'added by the handler'],
        nested: { x: 99 },
      });
      expect(answer).not.toBe(payload);
    });

    it('gives the caller a copy of the answer: its changes do not reach the server’s state', async () => {
      const first = await firstValueFrom(client.send<typeof serverState>('test.state', {}));
      expect(first).not.toBe(serverState);
      first.items.push('changed by the caller');
      first.nested.count = 1000;
      expect(serverState).toEqual({ items: ['kept'], nested: { count: 1 } });
      await expect(firstValueFrom(client.send('test.state', {}))).resolves.toEqual({
        items: ['kept'],
        nested: { count: 1 },
      });
    });

    it('clones answers through JSON too', async () => {
      await expect(firstValueFrom(client.send('test.dates', {}))).resolves.toEqual({
        at: '2024-01-02T03:04:05.000Z',
        buf: { type: 'Buffer', data: [1, 2] },
      });
    });
  });

  describe('failures', () => {
    it('errors for a pattern no server handles', async () => {
      await expect(firstValueFrom(client.send('test.unknown', {}))).rejects.toThrow(
        'no in-process server handles test.unknown',
      );
    });

    it('errors when a handler throws, without passing on the thrown message', async () => {
      const error: unknown = await firstValueFrom(client.send('test.throws', {})).catch(
        (e: unknown) => e,
      );
      expect(error).toEqual({ status: 'error', message: 'Internal server error' });
    });

    it('errors when an async handler rejects', async () => {
      await expect(firstValueFrom(client.send('test.rejects', {}))).rejects.toEqual({
        status: 'error',
        message: 'Internal server error',
      });
    });

    it('answers a dispatch for an unknown pattern with a disposed error packet', async () => {
      const respond = jest.fn<void, [WritePacket]>();
      await server.dispatch({ pattern: 'test.unknown', data: {} }, respond);
      expect(respond).toHaveBeenCalledTimes(1);
      expect(respond).toHaveBeenCalledWith({
        err: 'no handler for test.unknown',
        isDisposed: true,
      });
    });

    it('supports no events on the server side', () => {
      expect(() => server.on()).toThrow('the in-process transport emits no events');
    });

    it('unwraps to the bus on both sides', () => {
      expect(client.unwrap<InProcessBus>()).toBe(bus);
      expect(server.unwrap<InProcessBus>()).toBe(bus);
    });
  });

  describe('request()', () => {
    it('returns the answer', async () => {
      await expect(request(client, 'test.sync', { n: 4 }, 1000)).resolves.toEqual({ doubled: 8 });
    });

    it('returns a service’s refusal as a value, not an error', async () => {
      await expect(request(client, 'test.refuse', {}, 1000)).resolves.toEqual({
        ok: false,
        code: 'not_found',
      });
    });

    it('wraps an unknown pattern in ServiceUnavailableError', async () => {
      const error = await request(client, 'test.unknown', {}, 1000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect(error).toMatchObject({
        name: 'ServiceUnavailableError',
        pattern: 'test.unknown',
        message: 'service call test.unknown failed',
      });
      expect(((error as Error).cause as Error).message).toBe(
        'no in-process server handles test.unknown',
      );
    });

    it('wraps a failing handler in ServiceUnavailableError', async () => {
      const error = await request(client, 'test.throws', {}, 1000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect((error as ServiceUnavailableError).pattern).toBe('test.throws');
      expect((error as Error).cause).toEqual({ status: 'error', message: 'Internal server error' });
    });

    it('wraps a timeout in ServiceUnavailableError, at the deadline and not before', async () => {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      let outcome: unknown;
      const pending = request(client, 'test.slow', {}, 15_000).then(
        (value) => (outcome = { value }),
        (error: unknown) => (outcome = { error }),
      );
      await jest.advanceTimersByTimeAsync(14_999);
      expect(outcome).toBeUndefined();
      await jest.advanceTimersByTimeAsync(1);
      await pending;
      const { error } = outcome as { error: unknown };
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect((error as ServiceUnavailableError).pattern).toBe('test.slow');
      expect(((error as Error).cause as Error).name).toBe('TimeoutError');
      // A late answer after the deadline goes nowhere.
      releaseSlow({ late: true });
      await new Promise((resolve) => setImmediate(resolve));
      expect(outcome).toEqual({ error });
    });
  });

  describe('several servers on one bus', () => {
    it('routes each pattern to its server, and forgets a server once its app closes', async () => {
      const other = await startMicroservice(OtherModule, bus);
      try {
        expect(bus.find('other.ping')).toBe(other.server);
        await expect(firstValueFrom(client.send('other.ping', {}))).resolves.toBe('pong');
        await expect(firstValueFrom(client.send('test.sync', { n: 1 }))).resolves.toEqual({
          doubled: 2,
        });
      } finally {
        await other.app.close();
      }
      expect(bus.find('other.ping')).toBeUndefined();
      await expect(firstValueFrom(client.send('other.ping', {}))).rejects.toThrow(
        'no in-process server handles other.ping',
      );
      // The first server is still there.
      await expect(firstValueFrom(client.send('test.sync', { n: 2 }))).resolves.toEqual({
        doubled: 4,
      });
    });
  });
});
