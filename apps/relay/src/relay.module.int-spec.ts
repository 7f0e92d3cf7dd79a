/**
 * RelayModule as a process wires it: global providers from a @Global module, the controller
 * reached over the in-process Nest transport, payloads JSON-cloned like on a network.
 */
import 'reflect-metadata';

import { Global, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

import {
  ClockRepository,
  CONFIG,
  DATABASE,
  type FanoutEvent,
  FanoutPort,
  InProcessBus,
  InProcessClient,
  InProcessFanout,
  InProcessServer,
  loadConfig,
  RELAY_PATTERNS,
  request,
  ServiceUnavailableError,
} from '@securechat/core';
import { users } from '@db/schema';

import { pgliteTestDatabase, type TestDatabase } from '../../../libs/core/test/test-database';
import { MemorySendQuotaRepository } from './memory-send-quota.repository';
import { RelayModule } from './relay.module';
import { SendQuotaRepository } from './send-quota.repository';

describe('RelayModule over the in-process transport', () => {
  let handle: TestDatabase;
  let app: INestMicroservice;
  let client: InProcessClient;
  const fanout = new InProcessFanout();
  const events: FanoutEvent[] = [];

  beforeAll(async () => {
    handle = await pgliteTestDatabase();
    await handle.db.insert(users).values(
      ['alice', 'bob'].map((username) => ({
        username,
        passwordHash: 'x',
        publicKey: Buffer.from([1]),
        fingerprint: 'sha256:00',
      })),
    );
    fanout.subscribe((event) => events.push(event));

    @Global()
    @Module({
      providers: [
        { provide: DATABASE, useValue: handle.db },
        { provide: CONFIG, useValue: loadConfig({}) },
        ClockRepository,
        { provide: FanoutPort, useValue: fanout },
        { provide: SendQuotaRepository, useClass: MemorySendQuotaRepository },
      ],
      exports: [DATABASE, CONFIG, ClockRepository, FanoutPort, SendQuotaRepository],
    })
    class TestInfrastructureModule {}

    @Module({ imports: [TestInfrastructureModule, RelayModule] })
    class TestAppModule {}

    const bus = new InProcessBus();
    app = await NestFactory.createMicroservice(TestAppModule, {
      strategy: new InProcessServer(bus),
      logger: false,
    });
    await app.listen();
    client = new InProcessClient(bus);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await handle?.close();
  });

  const call = <T>(pattern: string, payload: unknown) => request<T>(client, pattern, payload, 5000);

  it('answers every pattern with the contract result types', async () => {
    expect(await call(RELAY_PATTERNS.join, { username: 'alice', room: '#team' })).toEqual({
      ok: true,
      room: '#team',
      members: ['alice'],
    });
    expect(await call(RELAY_PATTERNS.join, { username: 'bob', room: '#team' })).toEqual({
      ok: true,
      room: '#team',
      members: ['alice', 'bob'],
    });
    const send = { from: 'alice', id: 'm-1', to: '#team', body: 'hi', ts: 1, sig: 'c2ln' };
    const ack = await call<{ ok: true; msgId: string; serverTs: number; duplicate: boolean }>(
      RELAY_PATTERNS.send,
      send,
    );
    expect(ack).toEqual({
      ok: true,
      msgId: expect.any(String),
      serverTs: expect.any(Number),
      duplicate: false,
    });
    expect(await call(RELAY_PATTERNS.send, send)).toEqual({ ...ack, duplicate: true });
    expect(events).toEqual([
      { recipients: ['bob'], message: { ...send, msg_id: ack.msgId, server_ts: ack.serverTs } },
    ]);

    expect(await call(RELAY_PATTERNS.send, { ...send, id: 'm-2', to: 'nobody' })).toEqual({
      ok: false,
      code: 'not_found',
      message: expect.any(String),
    });
    const pending = await call<{ messages: { msg_id: string }[] }>(RELAY_PATTERNS.pending, {
      username: 'bob',
      limit: 10,
    });
    expect(pending.messages.map((m) => m.msg_id)).toEqual([ack.msgId]);
    expect(await call(RELAY_PATTERNS.delivered, { username: 'bob', msgId: ack.msgId })).toEqual({
      ok: true,
      marked: true,
    });
    expect(await call(RELAY_PATTERNS.pending, { username: 'bob', limit: 10 })).toEqual({
      messages: [],
    });
    expect(
      await call(RELAY_PATTERNS.history, { username: 'bob', with: '#team', limit: 50 }),
    ).toMatchObject({ ok: true, with: '#team', messages: [{ msg_id: ack.msgId, body: 'hi' }] });
    expect(await call(RELAY_PATTERNS.leave, { username: 'bob', room: '#team' })).toEqual({
      ok: true,
      room: '#team',
    });
    expect(
      await call(RELAY_PATTERNS.transcriptAppend, { opens: [], chunks: [], closes: [] }),
    ).toEqual({ ok: true, opened: 0, recorded: 0, closed: 0 });
  });

  it('fails the call (the gateway answers internal) on a malformed payload', async () => {
    await expect(
      call(RELAY_PATTERNS.send, { from: 'alice', id: 'm-3', to: '#team', body: 'x', ts: 1 }),
    ).rejects.toBeInstanceOf(ServiceUnavailableError);
  });
});
