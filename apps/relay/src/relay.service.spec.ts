/** RelayService rules (docs/PROTOCOL.md §7.4) against mocked repositories, fan-out and clock. */
import { Logger } from '@nestjs/common';

import { type SecureChatConfig, type StoredMessage } from '@securechat/core';

import { type MessageRepository, type NewMessage, type StoreOutcome } from './message.repository';
import { RECIPIENT_CACHE_TTL_MS, RelayService } from './relay.service';
import { type RoomRepository } from './room.repository';
import { type TranscriptRepository } from './transcript.repository';
import { type DirectoryEntry, type UserDirectoryRepository } from './user-directory.repository';

const NOW = 1_764_000_000_000;
/** When the members of #general joined it (carol last). */
const JOINED = { alice: NOW - 60_000, bob: NOW - 60_000, carol: NOW - 30_000 };

function stored(message: NewMessage, msgId: string): StoredMessage {
  return {
    msg_id: msgId,
    id: message.clientId,
    from: message.sender,
    to: message.recipient,
    body: message.body,
    ts: message.clientTs,
    server_ts: NOW,
    sig: message.sig,
  };
}

function setup(config: Partial<SecureChatConfig> = { roomHistory: 'since-join' }) {
  const userTable: Record<string, DirectoryEntry> = {
    alice: { username: 'alice', deleted: false, publicKey: Buffer.alloc(0) },
    bob: { username: 'bob', deleted: false, publicKey: Buffer.alloc(0) },
    carol: { username: 'carol', deleted: false, publicKey: Buffer.alloc(0) },
    gone: { username: 'gone', deleted: true, publicKey: Buffer.alloc(0) },
  };
  const clock = { now: jest.fn(() => NOW) };
  /** room → member → when it joined. */
  const roomTable: Record<string, Map<string, number>> = {
    '#general': new Map(Object.entries(JOINED)),
  };
  const membersOf = (room: string) => [...(roomTable[room]?.keys() ?? [])].sort();
  let nextId = 1;
  const messages = {
    store: jest.fn((m: NewMessage): Promise<StoreOutcome> =>
      Promise.resolve({ message: stored(m, String(nextId++)), duplicate: false }),
    ),
    storeAll: jest.fn((ms: readonly NewMessage[]): Promise<StoreOutcome[]> =>
      Promise.resolve(ms.map((m) => ({ message: stored(m, String(nextId++)), duplicate: false }))),
    ),
    pending: jest.fn(() => Promise.resolve([] as StoredMessage[])),
    markDelivered: jest.fn(() => Promise.resolve(true)),
    history: jest.fn(() => Promise.resolve([] as StoredMessage[])),
  };
  const rooms = {
    members: jest.fn((room: string) => Promise.resolve(membersOf(room))),
    joinedAt: jest.fn((room: string, user: string) => Promise.resolve(roomTable[room]?.get(user))),
    join: jest.fn((room: string, user: string) => {
      const members = (roomTable[room] ??= new Map());
      if (!members.has(user)) members.set(user, clock.now());
      return Promise.resolve(membersOf(room));
    }),
    leave: jest.fn((room: string, user: string) =>
      Promise.resolve(roomTable[room]?.delete(user) ?? false),
    ),
  };
  const users = { find: jest.fn((u: string) => Promise.resolve(userTable[u])) };
  const transcripts = {
    append: jest.fn(() => Promise.resolve({ ok: true, opened: 0, recorded: 0, closed: 0 })),
  };
  const fanout = {
    publish: jest.fn(() => Promise.resolve()),
    subscribe: jest.fn(),
    onReconnect: jest.fn(),
  };
  // Everything accepted unless a test says otherwise.
  const quotas = {
    charge: jest.fn((_user: string, sizes: readonly number[], _now: number) =>
      Promise.resolve({ accepted: sizes.length, retryAfter: 0 }),
    ),
  };
  const service = new RelayService(
    messages as unknown as MessageRepository,
    rooms as unknown as RoomRepository,
    users as unknown as UserDirectoryRepository,
    transcripts as unknown as TranscriptRepository,
    fanout,
    clock,
    quotas,
    config as SecureChatConfig,
  );
  return { service, messages, rooms, users, transcripts, fanout, clock, quotas };
}

const newMessage = (): NewMessage => ({
  sender: 'alice',
  clientId: 'm',
  recipient: 'bob',
  conversation: 'dm:alice:bob',
  body: '',
  clientTs: 1,
  sig: 'c2ln',
  recipients: ['bob'],
});

const send = (to: string, id = 'm-1', from = 'alice') => ({
  from,
  id,
  to,
  body: 'hello ✓',
  ts: NOW - 5,
  sig: 'c2ln',
});

describe('RelayService.send', () => {
  it('sends a direct message to that user, in the sorted dm conversation, and publishes it', async () => {
    const { service, messages, fanout } = setup();
    const result = await service.send(send('bob', 'm-1', 'carol'));
    expect(result).toEqual({ ok: true, msgId: '1', serverTs: NOW, duplicate: false });
    expect(messages.store).toHaveBeenCalledWith({
      sender: 'carol',
      clientId: 'm-1',
      recipient: 'bob',
      conversation: 'dm:bob:carol',
      body: 'hello ✓',
      clientTs: NOW - 5,
      sig: 'c2ln',
      recipients: ['bob'],
    });
    expect(fanout.publish).toHaveBeenCalledWith({
      recipients: ['bob'],
      message: {
        msg_id: '1',
        id: 'm-1',
        from: 'carol',
        to: 'bob',
        body: 'hello ✓',
        ts: NOW - 5,
        server_ts: NOW,
        sig: 'c2ln',
      },
    });
  });

  it('sends a room message to every member except the sender, keyed by the room', async () => {
    const { service, messages, fanout } = setup();
    await service.send(send('#general', 'm-2', 'bob'));
    expect(messages.store).toHaveBeenCalledWith(
      expect.objectContaining({
        recipient: '#general',
        conversation: '#general',
        recipients: ['alice', 'carol'],
      }),
    );
    expect(fanout.publish).toHaveBeenCalledWith(
      expect.objectContaining({ recipients: ['alice', 'carol'] }),
    );
  });

  it('answers not_found for an unknown or deleted user and stores nothing', async () => {
    const { service, messages, fanout } = setup();
    for (const to of ['nobody', 'gone']) {
      expect(await service.send(send(to))).toEqual({
        ok: false,
        code: 'not_found',
        message: expect.any(String),
      });
    }
    expect(messages.store).not.toHaveBeenCalled();
    expect(fanout.publish).not.toHaveBeenCalled();
  });

  it('looks a direct recipient up once per few seconds, never a room, and re-checks after', async () => {
    const { service, users, rooms, clock } = setup();
    await service.send(send('bob'));
    await service.send(send('bob'));
    expect(users.find).toHaveBeenCalledTimes(1);
    await service.send(send('#general'));
    await service.send(send('#general'));
    expect(rooms.members).toHaveBeenCalledTimes(2);
    clock.now.mockReturnValue(NOW + RECIPIENT_CACHE_TTL_MS);
    await service.send(send('bob'));
    expect(users.find).toHaveBeenCalledTimes(2);
  });

  it('does not remember recipients that do not exist', async () => {
    const { service, users } = setup();
    await service.send(send('nobody'));
    await service.send(send('nobody'));
    expect(users.find).toHaveBeenCalledTimes(2);
  });

  it('answers forbidden for a room the sender is not in, or that does not exist', async () => {
    const { service, messages, fanout } = setup();
    await service.leave({ username: 'alice', room: '#general' });
    for (const to of ['#general', '#nowhere']) {
      expect(await service.send(send(to))).toMatchObject({ ok: false, code: 'forbidden' });
    }
    expect(messages.store).not.toHaveBeenCalled();
    expect(fanout.publish).not.toHaveBeenCalled();
  });

  it('acknowledges a duplicate with the first msg_id and publishes nothing', async () => {
    const { service, messages, fanout } = setup();
    messages.store.mockImplementationOnce((m) =>
      Promise.resolve({ message: { ...stored(m, '41'), server_ts: NOW - 1000 }, duplicate: true }),
    );
    expect(await service.send(send('bob'))).toEqual({
      ok: true,
      msgId: '41',
      serverTs: NOW - 1000,
      duplicate: true,
    });
    expect(fanout.publish).not.toHaveBeenCalled();
  });

  it('publishes only after the store has resolved', async () => {
    const { service, messages, fanout } = setup();
    let commit!: () => void;
    messages.store.mockImplementationOnce(
      (m) =>
        new Promise((resolve) => {
          commit = () => resolve({ message: stored(m, '7'), duplicate: false });
        }),
    );
    const pending = service.send(send('bob'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(messages.store).toHaveBeenCalledTimes(1);
    expect(fanout.publish).not.toHaveBeenCalled();
    commit();
    await pending;
    expect(fanout.publish).toHaveBeenCalledTimes(1);
    expect(messages.store.mock.invocationCallOrder[0]).toBeLessThan(
      fanout.publish.mock.invocationCallOrder[0]!,
    );
  });

  it('neither acknowledges nor publishes when the store fails', async () => {
    const { service, messages, fanout } = setup();
    messages.store.mockRejectedValueOnce(new Error('disk full'));
    await expect(service.send(send('bob'))).rejects.toThrow('disk full');
    expect(fanout.publish).not.toHaveBeenCalled();
  });

  it('still acknowledges when the fan-out fails: the message is stored and stays pending', async () => {
    const { service, fanout } = setup();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    fanout.publish.mockRejectedValueOnce(new Error('redis down'));
    expect(await service.send(send('bob'))).toMatchObject({ ok: true, duplicate: false });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(warn.mock.calls)).not.toContain('hello');
    warn.mockRestore();
  });

  it('publishes nothing for a room where the sender is alone', async () => {
    const { service, fanout } = setup();
    await service.join({ username: 'alice', room: '#solo' });
    expect(await service.send(send('#solo'))).toMatchObject({ ok: true });
    expect(fanout.publish).not.toHaveBeenCalled();
  });
});

describe('RelayService.sendBatch', () => {
  it('stores the batch in its order, answers each send in place, and publishes in storage order', async () => {
    const { service, messages, fanout } = setup();
    const result = await service.sendBatch({
      sends: [send('bob', 'a'), send('nobody', 'b'), send('#general', 'c'), send('#secret', 'd')],
    });
    expect(result.results).toEqual([
      { ok: true, msgId: '1', serverTs: NOW, duplicate: false },
      { ok: false, code: 'not_found', message: expect.any(String) },
      { ok: true, msgId: '2', serverTs: NOW, duplicate: false },
      { ok: false, code: 'forbidden', message: expect.any(String) },
    ]);
    // One unit for the accepted sends: stored together, in their order.
    expect(messages.storeAll.mock.calls.map(([ms]) => ms.map((m) => m.clientId))).toEqual([
      ['a', 'c'],
    ]);
    expect(messages.store).not.toHaveBeenCalled();
    expect(
      (fanout.publish.mock.calls as unknown as [{ message: StoredMessage }][]).map(
        ([event]) => event.message.id,
      ),
    ).toEqual(['a', 'c']);
  });

  it('charges the sender’s quota for the addressed sends only, and stores the prefix it allows', async () => {
    const { service, messages, fanout, quotas } = setup();
    quotas.charge.mockResolvedValueOnce({ accepted: 2, retryAfter: 3 });
    const result = await service.sendBatch({
      sends: [send('bob', 'a'), send('nobody', 'b'), send('#general', 'c'), send('bob', 'd')],
    });
    // 'b' is not addressed (not_found) and is not charged; 'a' and 'c' fit, 'd' does not.
    expect(quotas.charge).toHaveBeenCalledTimes(1);
    expect(quotas.charge.mock.calls[0]?.[1]).toEqual([9, 9, 9]); // UTF-8 bytes of 'hello ✓'
    expect(quotas.charge.mock.calls[0]?.[2]).toBe(NOW);
    expect(result.results).toEqual([
      { ok: true, msgId: '1', serverTs: NOW, duplicate: false },
      { ok: false, code: 'not_found', message: expect.any(String) },
      { ok: true, msgId: '2', serverTs: NOW, duplicate: false },
      { ok: false, code: 'rate_limited', message: expect.any(String), retryAfter: 3 },
    ]);
    expect(messages.storeAll.mock.calls.map(([ms]) => ms.map((m) => m.clientId))).toEqual([
      ['a', 'c'],
    ]);
    expect(fanout.publish).toHaveBeenCalledTimes(2);
  });

  it('refuses a single send over quota without storing it', async () => {
    const { service, messages, quotas } = setup();
    quotas.charge.mockResolvedValueOnce({ accepted: 0, retryAfter: 1 });
    expect(await service.send(send('bob', 'a'))).toEqual({
      ok: false,
      code: 'rate_limited',
      message: expect.any(String),
      retryAfter: 1,
    });
    expect(messages.store).not.toHaveBeenCalled();
  });

  it('fails the whole request when storage fails (the gateway answers each send internal)', async () => {
    const { service, messages } = setup();
    messages.storeAll.mockRejectedValueOnce(new Error('batch failed'));
    await expect(
      service.sendBatch({ sends: [send('bob', 'a'), send('bob', 'b')] }),
    ).rejects.toThrow('batch failed');
  });
});

describe('RelayService.deliveredBatch', () => {
  it('marks every id of the run and counts the ones that were pending', async () => {
    const { service, messages } = setup();
    messages.markDelivered.mockResolvedValueOnce(true).mockResolvedValueOnce(false);
    expect(await service.deliveredBatch({ username: 'bob', msgIds: ['3', '4', 'junk'] })).toEqual({
      ok: true,
      marked: 1,
    });
    expect(messages.markDelivered.mock.calls).toEqual([
      ['bob', 3n, new Date(NOW)],
      ['bob', 4n, new Date(NOW)],
    ]);
  });
});

describe('RelayService.delivered and pending', () => {
  it('marks with the parsed id and the clock time; ignores ids that cannot be ours', async () => {
    const { service, messages } = setup();
    expect(await service.delivered({ username: 'bob', msgId: '12' })).toEqual({
      ok: true,
      marked: true,
    });
    expect(messages.markDelivered).toHaveBeenCalledWith('bob', 12n, new Date(NOW));
    for (const msgId of ['abc', '0', '-1', '1e3', '99999999999999999999']) {
      expect(await service.delivered({ username: 'bob', msgId })).toEqual({
        ok: true,
        marked: false,
      });
    }
    expect(messages.markDelivered).toHaveBeenCalledTimes(1);
  });

  it('cuts a page at maxBytes of bodies, never below one message, and says more may follow', async () => {
    const { service, messages } = setup();
    const body = (n: number) => ({ ...stored(newMessage(), String(n)), body: 'x'.repeat(100) });
    messages.pending.mockResolvedValue([body(1), body(2), body(3)]);
    expect(await service.pending({ username: 'bob', limit: 10, maxBytes: 250 })).toEqual({
      messages: [body(1), body(2)],
      more: true,
    });
    expect(await service.pending({ username: 'bob', limit: 10, maxBytes: 10 })).toEqual({
      messages: [body(1)],
      more: true,
    });
    expect(await service.pending({ username: 'bob', limit: 10, maxBytes: 300 })).toEqual({
      messages: [body(1), body(2), body(3)],
    });
  });

  it('pages pending messages after a msg_id', async () => {
    const { service, messages } = setup();
    await service.pending({ username: 'bob', limit: 10 });
    await service.pending({ username: 'bob', after: '5', limit: 10 });
    expect(messages.pending.mock.calls).toEqual([
      ['bob', undefined, 10],
      ['bob', 5n, 10],
    ]);
  });
});

describe('RelayService.history', () => {
  it('needs room membership: forbidden otherwise, and nothing is read', async () => {
    const { service, messages } = setup();
    expect(await service.history({ username: 'dave', with: '#general', limit: 50 })).toEqual({
      ok: false,
      code: 'forbidden',
      message: expect.any(String),
    });
    expect(messages.history).not.toHaveBeenCalled();
  });

  it('needs the other user to exist: not_found otherwise; a deleted user still has history', async () => {
    const { service, messages } = setup();
    expect(await service.history({ username: 'alice', with: 'nobody', limit: 50 })).toMatchObject({
      ok: false,
      code: 'not_found',
    });
    expect(await service.history({ username: 'alice', with: 'gone', limit: 50 })).toEqual({
      ok: true,
      with: 'gone',
      messages: [],
    });
    expect(messages.history).toHaveBeenCalledWith('dm:alice:gone', undefined, 50, undefined);
  });

  it('reads the conversation with before and limit, and never marks anything delivered', async () => {
    const { service, messages } = setup();
    await service.history({ username: 'bob', with: 'alice', before: '100', limit: 20 });
    await service.history({ username: 'carol', with: '#general', limit: 5 });
    expect(messages.history.mock.calls).toEqual([
      ['dm:alice:bob', 100n, 20, undefined],
      ['#general', undefined, 5, JOINED.carol],
    ]);
    expect(messages.markDelivered).not.toHaveBeenCalled();
  });

  it('answers an empty page for a before that is no msg_id, and no bound past every id', async () => {
    const { service, messages } = setup();
    expect(
      await service.history({ username: 'bob', with: 'alice', before: 'xyz', limit: 20 }),
    ).toEqual({ ok: true, with: 'alice', messages: [] });
    expect(messages.history).not.toHaveBeenCalled();
    await service.history({ username: 'bob', with: 'alice', before: '9'.repeat(30), limit: 20 });
    expect(messages.history).toHaveBeenCalledWith('dm:alice:bob', undefined, 20, undefined);
  });

  it('starts a room’s history at the caller’s join by default, and a DM’s nowhere', async () => {
    const { service, messages, rooms } = setup();
    expect(service.roomHistory).toBe('since-join');
    await service.history({ username: 'carol', with: '#general', before: '50', limit: 10 });
    await service.history({ username: 'alice', with: '#general', limit: 10 });
    await service.history({ username: 'alice', with: 'carol', limit: 10 });
    expect(rooms.joinedAt.mock.calls).toEqual([
      ['#general', 'carol'],
      ['#general', 'alice'],
    ]);
    expect(messages.history.mock.calls).toEqual([
      ['#general', 50n, 10, JOINED.carol],
      ['#general', undefined, 10, JOINED.alice],
      ['dm:alice:carol', undefined, 10, undefined],
    ]);
  });

  it('starts a rejoined room’s history at the new join', async () => {
    const { service, messages, clock } = setup();
    await service.leave({ username: 'carol', room: '#general' });
    expect(await service.history({ username: 'carol', with: '#general', limit: 10 })).toMatchObject(
      { ok: false, code: 'forbidden' },
    );
    clock.now.mockReturnValue(NOW + 5_000);
    await service.join({ username: 'carol', room: '#general' });
    await service.history({ username: 'carol', with: '#general', limit: 10 });
    expect(messages.history).toHaveBeenCalledWith('#general', undefined, 10, NOW + 5_000);
  });

  it('shows a room’s whole history with SECURECHAT_ROOM_HISTORY=all, to members only', async () => {
    const { service, messages } = setup({ roomHistory: 'all' });
    expect(service.roomHistory).toBe('all');
    await service.history({ username: 'carol', with: '#general', limit: 10 });
    expect(messages.history).toHaveBeenCalledWith('#general', undefined, 10, undefined);
    expect(await service.history({ username: 'dave', with: '#general', limit: 10 })).toMatchObject({
      ok: false,
      code: 'forbidden',
    });
    expect(messages.history).toHaveBeenCalledTimes(1);
  });

  it('starts at the join when a config leaves the setting out', async () => {
    const { service, messages } = setup({});
    expect(service.roomHistory).toBe('since-join');
    await service.history({ username: 'bob', with: '#general', limit: 10 });
    expect(messages.history).toHaveBeenCalledWith('#general', undefined, 10, JOINED.bob);
  });
});

describe('RelayService rooms', () => {
  it('joins (members sorted) and leaves; leaving a room one is not in is not_found', async () => {
    const { service } = setup();
    expect(await service.join({ username: 'dave', room: '#general' })).toEqual({
      ok: true,
      room: '#general',
      members: ['alice', 'bob', 'carol', 'dave'],
    });
    expect(await service.leave({ username: 'dave', room: '#general' })).toEqual({
      ok: true,
      room: '#general',
    });
    expect(await service.leave({ username: 'dave', room: '#general' })).toEqual({
      ok: false,
      code: 'not_found',
      message: expect.any(String),
    });
    expect(await service.leave({ username: 'dave', room: '#nowhere' })).toMatchObject({
      ok: false,
      code: 'not_found',
    });
  });
});
