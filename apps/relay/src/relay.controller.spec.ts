/** Payload validation and failure sanitising at the relay's transport edge. */
import { Logger } from '@nestjs/common';

import { encodeChunk, type SecureChatConfig } from '@securechat/core';

import { RelayFailure } from './relay-failure.error';
import { RelayController } from './relay.controller';
import { type RelayService } from './relay.service';

const config = { limits: { maxBodyBytes: 32, maxFrame: 4096 } } as SecureChatConfig;

const validSend = {
  from: 'alice',
  id: 'm-1',
  to: '#general',
  body: 'secret body',
  ts: 1_764_000_000_000,
  sig: 'c2lnbmF0dXJl',
};

const view = {
  c2sCount: 1,
  c2sChain: Buffer.alloc(32, 1).toString('base64'),
  s2cCount: 2,
  s2cChain: Buffer.alloc(32, 2).toString('base64'),
};

function setup() {
  const relay = {
    send: jest.fn(() => Promise.resolve({ ok: true, msgId: '1', serverTs: 1, duplicate: false })),
    sendBatch: jest.fn(() =>
      Promise.resolve({ results: [{ ok: true, msgId: '2', serverTs: 1, duplicate: false }] }),
    ),
    delivered: jest.fn(() => Promise.resolve({ ok: true, marked: true })),
    deliveredBatch: jest.fn(() => Promise.resolve({ ok: true, marked: 2 })),
    pending: jest.fn(() => Promise.resolve({ messages: [] })),
    join: jest.fn(() => Promise.resolve({ ok: true, room: '#r', members: [] })),
    leave: jest.fn(() => Promise.resolve({ ok: true, room: '#r' })),
    history: jest.fn(() => Promise.resolve({ ok: true, with: 'bob', messages: [] })),
    transcriptAppend: jest.fn(() =>
      Promise.resolve({ ok: true, opened: 0, recorded: 0, closed: 0 }),
    ),
  };
  const controller = new RelayController(relay as unknown as RelayService, config);
  return { relay, controller };
}

async function failure(promise: Promise<unknown>): Promise<RelayFailure> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RelayFailure);
    return error as RelayFailure;
  }
  throw new Error('expected a failure');
}

let logged: jest.SpyInstance[];
beforeEach(() => {
  logged = (['log', 'warn', 'error'] as const).map((level) =>
    jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined),
  );
});
afterEach(() => jest.restoreAllMocks());

/** Everything the controller logged, as one string. */
const logText = () => JSON.stringify(logged.map((spy) => spy.mock.calls as unknown[]));

describe('RelayController validation', () => {
  it('passes well-formed payloads through and returns the service answer unchanged', async () => {
    const { relay, controller } = setup();
    expect(await controller.send(validSend)).toEqual({
      ok: true,
      msgId: '1',
      serverTs: 1,
      duplicate: false,
    });
    expect(relay.send).toHaveBeenCalledWith(validSend);
    expect(await controller.sendBatch({ sends: [validSend] })).toEqual({
      results: [{ ok: true, msgId: '2', serverTs: 1, duplicate: false }],
    });
    expect(relay.sendBatch).toHaveBeenCalledWith({ sends: [validSend] });
    await controller.delivered({ username: 'bob', msgId: 'whatever-the-client-sent' });
    expect(await controller.deliveredBatch({ username: 'bob', msgIds: ['1', 'x'] })).toEqual({
      ok: true,
      marked: 2,
    });
    await controller.pending({ username: 'bob', after: '17', limit: 100 });
    await controller.join({ username: 'bob', room: '#r' });
    await controller.leave({ username: 'bob', room: '#r' });
    await controller.history({ username: 'bob', with: 'alice', before: 'x', limit: 200 });
    await controller.transcriptAppend({
      opens: [
        {
          sessionId: 's-1',
          username: 'bob',
          gateway: 'gw-1',
          mode: 'full',
          h2: view.c2sChain,
          startedAt: 5,
        },
      ],
      chunks: [
        {
          sessionId: 's-1',
          firstPosition: 0,
          records: encodeChunk([
            { direction: 's2c', chained: true, plaintext: Buffer.from('{}') },
          ]).toString('base64'),
        },
      ],
      closes: [{ sessionId: 's-1', endedAt: 6, status: 'incomplete', serverView: view }],
    });
    for (const fn of Object.values(relay)) expect(fn).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['an unknown member', { ...validSend, extra: 1 }],
    ['a missing member', { ...validSend, sig: undefined }],
    ['a bad username', { ...validSend, from: 'Alice' }],
    ['a bad target', { ...validSend, to: 'general!' }],
    ['a bad client id', { ...validSend, id: 'has space' }],
    ['a fractional ts', { ...validSend, ts: 1.5 }],
    ['a negative ts', { ...validSend, ts: -1 }],
    ['non-canonical base64', { ...validSend, sig: 'c2lnbmF0dXJl=' }],
    ['a body over the limit', { ...validSend, body: 'x'.repeat(33) }],
    ['a body with U+0000', { ...validSend, body: 'secret\u0000body' }],
    ['not an object', 'secret body'],
  ])('refuses a send with %s, without quoting it', async (_what, payload) => {
    const { relay, controller } = setup();
    const error = await failure(controller.send(payload));
    expect(error.message).toMatch(/^relay\.send: malformed payload/);
    expect(error.message).not.toContain('secret');
    expect(logText()).toContain('malformed payload');
    expect(logText()).not.toContain('secret');
    expect(relay.send).not.toHaveBeenCalled();
  });

  it.each([
    ['pending without limit', 'pending', { username: 'bob' }],
    ['pending after not a number', 'pending', { username: 'bob', after: 'x', limit: 1 }],
    ['history limit 201', 'history', { username: 'bob', with: 'alice', limit: 201 }],
    ['join a username', 'join', { username: 'bob', room: 'general' }],
    ['delivered without msgId', 'delivered', { username: 'bob' }],
    ['an empty delivered batch', 'deliveredBatch', { username: 'bob', msgIds: [] }],
    [
      'a record with a short h2',
      'transcriptAppend',
      {
        opens: [
          { sessionId: 's', username: 'bob', gateway: 'g', mode: 'full', h2: 'AAAA', startedAt: 1 },
        ],
        chunks: [],
        closes: [],
      },
    ],
    ['an empty send batch', 'sendBatch', { sends: [] }],
    ['a send batch with a bad send', 'sendBatch', { sends: [validSend, { ...validSend, ts: -1 }] }],
    [
      'a chunk in non-canonical base64',
      'transcriptAppend',
      { opens: [], chunks: [{ sessionId: 's', firstPosition: 0, records: 'e30' }], closes: [] },
    ],
    [
      'a close with status open',
      'transcriptAppend',
      {
        opens: [],
        chunks: [],
        closes: [{ sessionId: 's', endedAt: 1, status: 'open', serverView: view }],
      },
    ],
  ] as const)('refuses %s', async (_what, method, payload) => {
    const { relay, controller } = setup();
    await failure(controller[method](payload));
    expect(relay[method]).not.toHaveBeenCalled();
  });
});

describe('RelayController failures', () => {
  it('turns a storage error into a RelayFailure that quotes neither statement nor values', async () => {
    const { relay, controller } = setup();
    const cause = Object.assign(new Error('insert failed for "secret body"'), { code: '23505' });
    const drizzleError = new Error('Failed query: insert … params: alice,m-1,secret body', {
      cause,
    });
    relay.send.mockRejectedValueOnce(drizzleError);
    const error = await failure(controller.send(validSend));
    expect(error.message).toBe('relay.send failed: Error caused by Error 23505');
    expect(error.cause).toBeUndefined();
    expect(logText()).toContain('relay.send failed');
    expect(logText()).not.toContain('secret');
  });

  it('passes a RelayFailure on as it is', async () => {
    const { relay, controller } = setup();
    const original = new RelayFailure('a batch of 3 sends failed: DatabaseError 57P01');
    relay.send.mockRejectedValueOnce(original);
    expect(await failure(controller.send(validSend))).toBe(original);
  });
});

describe('RelayController metrics', () => {
  function counted() {
    const { relay } = setup();
    const metrics = { messageStored: jest.fn(), deliveryAcked: jest.fn() };
    const controller = new RelayController(
      relay as unknown as RelayService,
      config,
      metrics as never,
    );
    return { relay, metrics, controller };
  }

  it('counts a stored send with its latency, but not a duplicate or a refusal', async () => {
    const { relay, metrics, controller } = counted();
    await controller.send(validSend);
    expect(metrics.messageStored).toHaveBeenCalledTimes(1);
    expect(metrics.messageStored).toHaveBeenCalledWith(expect.any(Number));
    relay.send.mockResolvedValueOnce({ ok: true, msgId: '1', serverTs: 1, duplicate: true });
    await controller.send(validSend);
    relay.send.mockResolvedValueOnce({ ok: false, code: 'not_found' } as never);
    await controller.send(validSend);
    expect(metrics.messageStored).toHaveBeenCalledTimes(1);
  });

  it('counts a delivered ack only when it marked a pending delivery', async () => {
    const { relay, metrics, controller } = counted();
    await controller.delivered({ username: 'bob', msgId: '1' });
    relay.delivered.mockResolvedValueOnce({ ok: true, marked: false });
    await controller.delivered({ username: 'bob', msgId: '1' });
    expect(metrics.deliveryAcked).toHaveBeenCalledTimes(1);
  });
});
