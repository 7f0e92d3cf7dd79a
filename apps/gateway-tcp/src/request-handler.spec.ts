/**
 * The rules of each request inside a session, against fake auth/relay clients and a fake
 * session that only knows its user, its frame room and whether a signature is good.
 */
import { type LoggerService } from '@nestjs/common';
import {
  type GetKeyResult,
  type HistoryQuery,
  type HistoryResult,
  type JoinResult,
  type LeaveResult,
  type RoomCommand,
  type SendBatchCommand,
  type SendBatchResult,
  type SendResult,
  ServiceUnavailableError,
  type StoredMessage,
} from '@securechat/core';
import {
  type Deliver,
  type History,
  type Joined,
  ProtocolError,
  type RecordMessage,
  type SendMessage,
  serializeJson,
} from '@securechat/protocol';

import { type CheckedSend, errorFor, RequestHandler, type RequestSession } from './request-handler';

const BAD_SIG = 'YmFkIHNpZ25hdHVyZQ==';
/** The largest msg_id relay can hand out (a Postgres bigint) and the largest server_ts. */
const LARGEST_IDS = { msg_id: String(2n ** 63n - 1n), server_ts: Number.MAX_SAFE_INTEGER };

function fakeSession(maxPlaintextBytes = 4_096) {
  return {
    username: 'alice',
    maxPlaintextBytes,
    fits: jest.fn((message: RecordMessage) => serializeJson(message).length <= maxPlaintextBytes),
    verifySendSignature: jest.fn((message: SendMessage) => message.sig !== BAD_SIG),
  } satisfies RequestSession;
}

function fakeServices() {
  return {
    auth: { getKey: jest.fn<Promise<GetKeyResult>, [string]>() },
    relay: {
      sendBatch: jest.fn<Promise<SendBatchResult>, [SendBatchCommand]>(),
      deliveredBatch: jest.fn<Promise<{ ok: true; marked: number }>, [string, string[]]>(),
      join: jest.fn<Promise<JoinResult>, [RoomCommand]>(),
      leave: jest.fn<Promise<LeaveResult>, [RoomCommand]>(),
      history: jest.fn<Promise<HistoryResult>, [HistoryQuery]>(),
    },
  };
}

function fakeLogger() {
  return { log: jest.fn(), warn: jest.fn(), error: jest.fn() } satisfies LoggerService;
}

function setup(maxPlaintextBytes?: number) {
  const session = fakeSession(maxPlaintextBytes);
  const services = fakeServices();
  const logger = fakeLogger();
  const handler = new RequestHandler(session, services, logger);
  return { session, services, logger, handler };
}

function send(id: string, overrides: Partial<SendMessage> = {}): SendMessage {
  return {
    type: 'send',
    id,
    to: 'bob',
    body: `hello ${id}`,
    ts: 1_700_000_000_000,
    sig: 'c2lnbmF0dXJl',
    ...overrides,
  };
}

const acked = (n: number): SendResult => ({
  ok: true,
  msgId: String(1000 + n),
  serverTs: 1_700_000_000_500 + n,
  duplicate: false,
});
const refused = (code: 'not_found' | 'forbidden' | 'conflict'): SendResult => ({
  ok: false,
  code,
  message: 'relay says no',
});

function stored(n: number, bodyBytes = 20): StoredMessage {
  return {
    msg_id: String(n),
    id: `c-${n}`,
    from: n % 2 === 0 ? 'alice' : 'bob',
    to: n % 2 === 0 ? 'bob' : 'alice',
    body: 'h'.repeat(bodyBytes),
    ts: 1_700_000_000_000 + n,
    server_ts: 1_700_000_000_000 + n,
    sig: 'c2lnbmF0dXJl',
  };
}

/** A stored message whose `deliver` serializes to exactly `bytes`. */
function storedOfDeliverSize(n: number, bytes: number): StoredMessage {
  const base = serializeJson(deliverOf(stored(n, 0))).length;
  return stored(n, bytes - base);
}

const deliverOf = (m: StoredMessage): Deliver => ({ type: 'deliver', ...m });
const lengthOf = (message: object): number => serializeJson(message).length;
const unavailable = (cause = 'connection refused') =>
  new ServiceUnavailableError('relay.x', new Error(cause));

describe('RequestHandler', () => {
  describe('checkSend', () => {
    it('passes a good send on as a command from the session’s user', () => {
      const { handler, session } = setup();
      const message = send('m1');
      expect(handler.checkSend(message)).toEqual({
        ok: true,
        command: {
          from: 'alice',
          id: 'm1',
          to: 'bob',
          body: 'hello m1',
          ts: message.ts,
          sig: message.sig,
        },
      });
      expect(session.verifySendSignature).toHaveBeenCalledWith(message);
    });

    it('refuses U+0000 in the body as bad_request with the request id, before the signature', () => {
      const { handler, session } = setup();
      const checked = handler.checkSend(send('m1', { body: 'a\u0000b' }));
      expect(checked.ok).toBe(false);
      const error = (checked as Extract<CheckedSend, { ok: false }>).error;
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error.code).toBe('bad_request');
      expect(error.id).toBe('m1');
      expect(errorFor(error)).toEqual({
        type: 'error',
        code: 'bad_request',
        message: expect.any(String),
        id: 'm1',
      });
      expect(session.verifySendSignature).not.toHaveBeenCalled();
    });

    it('refuses a bad signature as bad_request with the request id', () => {
      const { handler } = setup();
      const checked = handler.checkSend(send('m2', { sig: BAD_SIG }));
      expect(checked).toEqual({ ok: false, error: expect.any(ProtocolError) });
      const error = (checked as Extract<CheckedSend, { ok: false }>).error;
      expect([error.code, error.id]).toEqual(['bad_request', 'm2']);
    });

    it('refuses as too_large a send whose deliver could not fit a frame once given its ids', () => {
      const room = 2_000;
      const { handler, session } = setup(room);
      const withIds = (body: string) =>
        lengthOf({ ...send('m3', { body }), ...LARGEST_IDS, from: 'alice', type: 'deliver' });
      // One byte too many once the relay's largest ids are in: the send itself fits easily.
      const over = 'o'.repeat(room - withIds('') + 1);
      expect(withIds(over)).toBe(room + 1);
      expect(lengthOf(send('m3', { body: over }))).toBeLessThan(room);
      const checked = handler.checkSend(send('m3', { body: over }));
      const error = (checked as Extract<CheckedSend, { ok: false }>).error;
      expect([checked.ok, error.code, error.id]).toEqual([false, 'too_large', 'm3']);
      expect(session.verifySendSignature).not.toHaveBeenCalled();
      // With a digit to spare it is accepted.
      const fits = 'o'.repeat(room - withIds('') - 1);
      expect(handler.checkSend(send('m4', { body: fits })).ok).toBe(true);
    });
  });

  describe('errorFor', () => {
    it('echoes the id as written, and leaves out an echo that would not fit one frame (§10.2, §10.5)', () => {
      const session = fakeSession(200);
      const bad = (id: string) =>
        errorFor(new ProtocolError('bad_request', 'id: must match', { id }), session);
      expect(bad('bad id!')).toEqual({
        type: 'error',
        code: 'bad_request',
        message: 'id: must match',
        id: 'bad id!',
      });
      expect(bad('x'.repeat(200))).toEqual({
        type: 'error',
        code: 'bad_request',
        message: 'id: must match',
      });
    });
  });

  describe('sendBatch', () => {
    it('stores only the valid sends, in order, in one call, and answers in request order', async () => {
      const { handler, services } = setup();
      const requests = [
        send('a'),
        send('b', { body: 'nul\u0000' }),
        send('c'),
        send('d', { sig: BAD_SIG }),
        send('e'),
        send('f'),
      ];
      const checked = requests.map((r) => handler.checkSend(r));
      services.relay.sendBatch.mockResolvedValue({
        results: [acked(1), refused('not_found'), acked(3), refused('conflict')],
      });
      const answers = await handler.sendBatch(checked);
      expect(services.relay.sendBatch).toHaveBeenCalledTimes(1);
      expect(services.relay.sendBatch.mock.calls[0]![0].sends.map((s) => s.id)).toEqual([
        'a',
        'c',
        'e',
        'f',
      ]);
      expect(answers).toEqual([
        { type: 'ack', id: 'a', msg_id: '1001', server_ts: 1_700_000_000_501 },
        { type: 'error', code: 'bad_request', message: expect.any(String), id: 'b' },
        { type: 'error', code: 'not_found', message: expect.any(String), id: 'c' },
        { type: 'error', code: 'bad_request', message: expect.any(String), id: 'd' },
        { type: 'ack', id: 'e', msg_id: '1003', server_ts: 1_700_000_000_503 },
        { type: 'error', code: 'conflict', message: expect.any(String), id: 'f' },
      ]);
    });

    it('maps the relay’s forbidden refusal', async () => {
      const { handler, services } = setup();
      services.relay.sendBatch.mockResolvedValue({ results: [refused('forbidden')] });
      expect(await handler.sendBatch([handler.checkSend(send('r', { to: '#room' }))])).toEqual([
        { type: 'error', code: 'forbidden', message: expect.any(String), id: 'r' },
      ]);
    });

    it('maps the relay’s rate_limited refusal with its retry_after', async () => {
      const { handler, services } = setup();
      services.relay.sendBatch.mockResolvedValue({
        results: [
          { ok: false, code: 'rate_limited', message: 'sending quota exceeded', retryAfter: 7 },
        ],
      });
      expect(await handler.sendBatch([handler.checkSend(send('q'))])).toEqual([
        {
          type: 'error',
          code: 'rate_limited',
          message: expect.any(String),
          id: 'q',
          retry_after: 7,
        },
      ]);
    });

    it('does not call the relay when no send is valid', async () => {
      const { handler, services } = setup();
      const answers = await handler.sendBatch([handler.checkSend(send('x', { sig: BAD_SIG }))]);
      expect(services.relay.sendBatch).not.toHaveBeenCalled();
      expect(answers).toEqual([
        { type: 'error', code: 'bad_request', message: expect.any(String), id: 'x' },
      ]);
      expect(await handler.sendBatch([])).toEqual([]);
    });

    it('answers every valid send internal, with its id, when the relay fails', async () => {
      const { handler, services, logger } = setup();
      services.relay.sendBatch.mockRejectedValue(unavailable('ECONNREFUSED'));
      const answers = await handler.sendBatch(
        [send('a'), send('b', { sig: BAD_SIG }), send('c')].map((r) => handler.checkSend(r)),
      );
      expect(answers).toEqual([
        { type: 'error', code: 'internal', message: expect.any(String), id: 'a' },
        { type: 'error', code: 'bad_request', message: expect.any(String), id: 'b' },
        { type: 'error', code: 'internal', message: expect.any(String), id: 'c' },
      ]);
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('ECONNREFUSED'));
    });

    it('answers internal rather than guess when the relay answers fewer results than sends', async () => {
      const { handler, services } = setup();
      services.relay.sendBatch.mockResolvedValue({ results: [acked(1)] });
      const answers = await handler.sendBatch(
        [send('a'), send('b')].map((r) => handler.checkSend(r)),
      );
      expect(answers).toEqual([
        { type: 'error', code: 'internal', message: expect.any(String), id: 'a' },
        { type: 'error', code: 'internal', message: expect.any(String), id: 'b' },
      ]);
    });
  });

  describe('delivered', () => {
    it('marks the run for the session’s user in one relay call and answers nothing', async () => {
      const { handler, services } = setup();
      services.relay.deliveredBatch.mockResolvedValue({ ok: true, marked: 3 });
      expect(await handler.delivered(['1', '2', '3'])).toEqual([]);
      expect(services.relay.deliveredBatch.mock.calls).toEqual([['alice', ['1', '2', '3']]]);
    });

    it('ignores, without asking the relay, a msg_id that cannot be one of ours (§9)', async () => {
      const { handler, services } = setup();
      services.relay.deliveredBatch.mockResolvedValue({ ok: true, marked: 1 });
      expect(await handler.delivered(['', 'x'.repeat(129)])).toEqual([]);
      expect(services.relay.deliveredBatch).not.toHaveBeenCalled();
      expect(await handler.delivered(['', '7', 'x'.repeat(129)])).toEqual([]);
      expect(services.relay.deliveredBatch.mock.calls).toEqual([['alice', ['7']]]);
    });

    it('answers one internal error when the relay cannot be reached', async () => {
      const { handler, services, logger } = setup();
      services.relay.deliveredBatch.mockRejectedValueOnce(unavailable());
      expect(await handler.delivered(['1', '2', '3'])).toEqual([
        { type: 'error', code: 'internal', message: expect.any(String) },
      ]);
      expect(logger.error).toHaveBeenCalledTimes(1);
    });
  });

  describe('handle', () => {
    it('answers ping with pong and the same n', async () => {
      const { handler } = setup();
      expect(await handler.handle({ type: 'ping', n: 42 })).toEqual({ type: 'pong', n: 42 });
      const pong = await handler.handle({ type: 'ping' });
      expect(pong).toEqual({ type: 'pong' });
      expect(pong).not.toHaveProperty('n');
    });

    it('answers nothing to key_update', async () => {
      const { handler } = setup();
      expect(await handler.handle({ type: 'key_update' })).toBeUndefined();
    });

    it('answers join with the members', async () => {
      const { handler, services } = setup();
      services.relay.join.mockResolvedValue({ ok: true, room: '#r', members: ['alice', 'bob'] });
      expect(await handler.handle({ type: 'join', room: '#r' })).toEqual({
        type: 'joined',
        room: '#r',
        members: ['alice', 'bob'],
      });
      expect(services.relay.join).toHaveBeenCalledWith({ username: 'alice', room: '#r' });
    });

    it('lists as many members of a large room as fit one frame', async () => {
      const room = 1_000;
      const { handler, services } = setup(room);
      const members = Array.from({ length: 2_000 }, (_, i) => `member-${i}`);
      services.relay.join.mockResolvedValue({ ok: true, room: '#big', members });
      const joined = (await handler.handle({ type: 'join', room: '#big' })) as Joined;
      expect(joined.type).toBe('joined');
      expect(lengthOf(joined)).toBeLessThanOrEqual(room);
      expect(joined.members.length).toBeGreaterThan(0);
      expect(joined.members).toEqual(members.slice(0, joined.members.length));
    });

    it('answers leave with left, or the relay’s not_found', async () => {
      const { handler, services } = setup();
      services.relay.leave.mockResolvedValueOnce({ ok: true, room: '#r' });
      expect(await handler.handle({ type: 'leave', room: '#r' })).toEqual({
        type: 'left',
        room: '#r',
      });
      services.relay.leave.mockResolvedValueOnce({
        ok: false,
        code: 'not_found',
        message: 'not a member',
      });
      expect(await handler.handle({ type: 'leave', room: '#r' })).toEqual({
        type: 'error',
        code: 'not_found',
        message: expect.any(String),
      });
    });

    it('answers get_key with the key, or not_found', async () => {
      const { handler, services } = setup();
      services.auth.getKey.mockResolvedValueOnce({
        ok: true,
        user: 'bob',
        publicKey: 'cHVi',
        fingerprint: 'ab:cd',
      });
      expect(await handler.handle({ type: 'get_key', user: 'bob' })).toEqual({
        type: 'key',
        user: 'bob',
        public_key: 'cHVi',
        fingerprint: 'ab:cd',
      });
      services.auth.getKey.mockResolvedValueOnce({ ok: false, code: 'not_found' });
      expect(await handler.handle({ type: 'get_key', user: 'nobody' })).toEqual({
        type: 'error',
        code: 'not_found',
        message: expect.any(String),
      });
      expect(services.auth.getKey.mock.calls).toEqual([['bob'], ['nobody']]);
    });

    it('answers internal when a service cannot be reached, and lets other errors through', async () => {
      const { handler, services, logger } = setup();
      services.relay.join.mockRejectedValueOnce(unavailable('timeout'));
      expect(await handler.handle({ type: 'join', room: '#r' })).toEqual({
        type: 'error',
        code: 'internal',
        message: expect.any(String),
      });
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('timeout'));
      services.relay.join.mockRejectedValueOnce(new TypeError('a bug'));
      await expect(handler.handle({ type: 'join', room: '#r' })).rejects.toThrow('a bug');
    });

    describe('history', () => {
      it('asks for the default limit, or the one given and before', async () => {
        const { handler, services } = setup();
        services.relay.history.mockResolvedValue({ ok: true, with: 'bob', messages: [] });
        await handler.handle({ type: 'history', with: 'bob' });
        await handler.handle({ type: 'history', with: 'bob', limit: 7, before: '99' });
        expect(services.relay.history.mock.calls).toEqual([
          [{ username: 'alice', with: 'bob', limit: 50 }],
          [{ username: 'alice', with: 'bob', limit: 7, before: '99' }],
        ]);
      });

      it('asks with a before that names no message when the one given cannot be ours (§10.11)', async () => {
        const { handler, services } = setup();
        services.relay.history.mockResolvedValue({ ok: true, with: 'bob', messages: [] });
        for (const before of ['', 'x'.repeat(129)]) {
          expect(await handler.handle({ type: 'history', with: 'bob', before })).toEqual({
            type: 'history',
            with: 'bob',
            messages: [],
          });
        }
        const asked = services.relay.history.mock.calls.map(([query]) => query.before);
        expect(asked).toHaveLength(2);
        for (const before of asked) expect(before).toMatch(/^[^0-9]{1,128}$/);
      });

      it('answers a page that fits as it is, oldest first', async () => {
        const { handler, services } = setup();
        const messages = [1, 2, 3].map((n) => stored(n));
        services.relay.history.mockResolvedValue({ ok: true, with: 'bob', messages });
        expect(await handler.handle({ type: 'history', with: 'bob' })).toEqual({
          type: 'history',
          with: 'bob',
          messages: messages.map(deliverOf),
        });
      });

      it('trims a page to the newest messages that fit one frame, oldest first', async () => {
        const room = 4_000;
        const { handler, services } = setup(room);
        const messages = Array.from({ length: 50 }, (_, i) => stored(i + 1, 200));
        services.relay.history.mockResolvedValue({ ok: true, with: 'bob', messages });
        const history = (await handler.handle({ type: 'history', with: 'bob' })) as History;
        const kept = history.messages.map((m) => Number(m.msg_id));
        expect(kept.length).toBeGreaterThan(1);
        expect(kept.length).toBeLessThan(50);
        expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 51 - kept.length + i));
        expect(lengthOf(history)).toBeLessThanOrEqual(room);
        // And no more would fit: the next older one would overflow the frame.
        const oneMore = {
          ...history,
          messages: [deliverOf(messages[50 - kept.length - 1]!), ...history.messages],
        };
        expect(lengthOf(oneMore)).toBeGreaterThan(room);
        expect(history.messages[0]).toEqual(deliverOf(messages[50 - kept.length]!));
      });

      it('skips a message too large to fit even alone rather than empty the page', async () => {
        const room = 2_000;
        const { handler, services } = setup(room);
        const messages = [stored(1), stored(2), stored(3, 3 * room), stored(4)];
        services.relay.history.mockResolvedValue({ ok: true, with: 'bob', messages });
        const history = (await handler.handle({ type: 'history', with: 'bob' })) as History;
        expect(history.messages.map((m) => m.msg_id)).toEqual(['1', '2', '4']);

        services.relay.history.mockResolvedValue({
          ok: true,
          with: 'bob',
          messages: [stored(9, 3 * room)],
        });
        expect(await handler.handle({ type: 'history', with: 'bob' })).toEqual({
          type: 'history',
          with: 'bob',
          messages: [],
        });
      });

      it('stops at the first message that does not fit, rather than list older ones past it', async () => {
        const room = 2_000;
        const { handler, services } = setup(room);
        const envelope = lengthOf({ type: 'history', with: 'bob', messages: [] });
        // 2 fits alone with room to spare, but not next to 3; 1 would fit next to 3.
        const large = storedOfDeliverSize(2, room - envelope - 50);
        services.relay.history.mockResolvedValue({
          ok: true,
          with: 'bob',
          messages: [stored(1), large, stored(3)],
        });
        const history = (await handler.handle({ type: 'history', with: 'bob' })) as History;
        expect(history.messages.map((m) => m.msg_id)).toEqual(['3']);
      });

      it('keeps a message that exactly fills the frame alone', async () => {
        const room = 2_000;
        const { handler, services } = setup(room);
        const envelope = lengthOf({ type: 'history', with: 'bob', messages: [] });
        const whole = storedOfDeliverSize(5, room - envelope);
        services.relay.history.mockResolvedValue({
          ok: true,
          with: 'bob',
          messages: [stored(4), whole],
        });
        const history = (await handler.handle({ type: 'history', with: 'bob' })) as History;
        expect(history.messages.map((m) => m.msg_id)).toEqual(['5']);
        expect(lengthOf(history)).toBe(room);
      });

      // Regression: the "too large to fit even alone" test once counted the comma of a
      // non-empty page, so a message that fits alone by its last byte was skipped instead of
      // ending the page, and older ones were listed past it: a client paging on with `before`
      // = the oldest listed never saw it.
      it('ends the page at a message that fits alone but not with the newer ones, not skip it', async () => {
        const room = 2_000;
        const { handler, services } = setup(room);
        const envelope = lengthOf({ type: 'history', with: 'bob', messages: [] });
        const whole = storedOfDeliverSize(2, room - envelope); // fits alone, exactly
        services.relay.history.mockResolvedValue({
          ok: true,
          with: 'bob',
          messages: [stored(1), whole, stored(3)],
        });
        const history = (await handler.handle({ type: 'history', with: 'bob' })) as History;
        // 2 cannot join 3 in this frame: the page is [3]; the next (before 3) is [2], then [1].
        expect(history.messages.map((m) => m.msg_id)).toEqual(['3']);
      });

      it('answers the relay’s refusal', async () => {
        const { handler, services } = setup();
        services.relay.history.mockResolvedValue({
          ok: false,
          code: 'forbidden',
          message: 'not a member',
        });
        expect(await handler.handle({ type: 'history', with: '#r' })).toEqual({
          type: 'error',
          code: 'forbidden',
          message: expect.any(String),
        });
      });
    });
  });
});
