/**
 * A room's history starts at the member's join (SECURECHAT_ROOM_HISTORY=since-join, the
 * default) or shows the whole room (`all`), against real databases (PGlite and PostgreSQL):
 * RelayService over the real repositories, a fixed clock moved by hand (docs/PROTOCOL.md §7.4
 * "History", docs/PROTOCOL.md §10 item 24).
 */
import { and, eq } from 'drizzle-orm';

import {
  ClockRepository,
  type FanoutEvent,
  loadConfig,
  type HistoryResult,
  type StoredMessage,
} from '@securechat/core';
import { roomMembers, users } from '@db/schema';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { FakeClock } from '../test/fake-clock';
import { MemorySendQuotaRepository } from './memory-send-quota.repository';
import { MessageRepository } from './message.repository';
import { RelayService } from './relay.service';
import { RoomRepository } from './room.repository';
import { type TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

const bodies = (result: HistoryResult) => (result.ok ? result.messages.map((m) => m.body) : []);
const ids = (list: readonly StoredMessage[]) => list.map((m) => m.msg_id);

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('room history on %s', (_name, open) => {
  let handle: TestDatabase;
  let clock: FakeClock;
  let messages: MessageRepository;
  let events: FanoutEvent[];
  /** The same rooms and messages seen under each setting. */
  let sinceJoin: RelayService;
  let all: RelayService;
  let counter = 0;

  beforeAll(async () => {
    handle = await open();
    await handle.db.insert(users).values(
      ['alice', 'bob', 'carol'].map((username) => ({
        username,
        passwordHash: 'x',
        publicKey: Buffer.from([1]),
        fingerprint: 'sha256:00',
      })),
    );
  }, 60_000);
  afterAll(() => handle.close());

  function relay(roomHistory: 'since-join' | 'all', clockNow: { now(): number }) {
    const fanout = {
      publish: (event: FanoutEvent) => {
        events.push(event);
        return Promise.resolve();
      },
      subscribe: () => () => undefined,
      onReconnect: () => () => undefined,
    };
    return new RelayService(
      messages,
      new RoomRepository(handle.db, clockNow),
      new UserDirectoryRepository(handle.db),
      {} as TranscriptRepository,
      fanout,
      clockNow,
      new MemorySendQuotaRepository(loadConfig({})),
      loadConfig({ SECURECHAT_ROOM_HISTORY: roomHistory }),
    );
  }

  beforeEach(() => {
    clock = new FakeClock();
    events = [];
    messages = new MessageRepository(handle.db, clock);
    sinceJoin = relay('since-join', clock);
    all = relay('all', clock);
  });

  /** One ms later than the last step: each step below has a time of its own. */
  const tick = (ms = 1) => (clock.t += ms);

  async function send(from: string, to: string, body: string) {
    const result = await sinceJoin.send({
      from,
      id: `m${counter++}`,
      to,
      body,
      ts: clock.t,
      sig: 'c2ln',
    });
    if (!result.ok) throw new Error(`send refused: ${result.code}`);
    return result;
  }

  const history = (service: RelayService, username: string, room: string, limit = 50) =>
    service.history({ username, with: room, limit });
  /** `username`'s undelivered messages of `room` (the tests share one database). */
  const pendingBodies = async (username: string, room: string) =>
    (await sinceJoin.pending({ username, limit: 100 })).messages
      .filter((m) => m.to === room)
      .map((m) => m.body);
  const joinedAtRow = async (room: string, username: string) => {
    const [row] = await handle.db
      .select({ joinedAt: roomMembers.joinedAt })
      .from(roomMembers)
      .where(and(eq(roomMembers.room, room), eq(roomMembers.username, username)));
    return row?.joinedAt.getTime();
  };

  it('shows a newcomer what was sent from its join on, and only that is delivered to it', async () => {
    await sinceJoin.join({ username: 'alice', room: '#r' });
    for (const body of ['one', 'two', 'three']) {
      tick();
      await send('alice', '#r', body);
    }

    tick();
    expect(await sinceJoin.join({ username: 'bob', room: '#r' })).toMatchObject({
      members: ['alice', 'bob'],
    });
    // joined_at is the relay's clock, the one server_ts comes from, not the database's now()
    expect(await joinedAtRow('#r', 'bob')).toBe(clock.t);
    expect(await history(sinceJoin, 'bob', '#r')).toEqual({ ok: true, with: '#r', messages: [] });
    expect(bodies(await history(all, 'bob', '#r'))).toEqual(['one', 'two', 'three']);
    // nothing from before the join is pending for bob: deliveries are made at send time
    expect(await pendingBodies('bob', '#r')).toEqual([]);
    // the creator sees everything since it created the room
    expect(bodies(await history(sinceJoin, 'alice', '#r'))).toEqual(['one', 'two', 'three']);

    tick();
    const four = await send('alice', '#r', 'four');
    expect(events.at(-1)).toMatchObject({ recipients: ['bob'], message: { body: 'four' } });
    expect(await pendingBodies('bob', '#r')).toEqual(['four']);
    const bobSees = await history(sinceJoin, 'bob', '#r');
    expect(bodies(bobSees)).toEqual(['four']);
    expect(bobSees.ok && bobSees.messages[0]).toMatchObject({
      msg_id: four.msgId,
      from: 'alice',
      to: '#r',
      server_ts: four.serverTs,
    });
    expect(bodies(await history(all, 'bob', '#r'))).toEqual(['one', 'two', 'three', 'four']);

    // joining again while a member changes nothing: the history does not shrink
    tick();
    await sinceJoin.join({ username: 'bob', room: '#r' });
    expect(bodies(await history(sinceJoin, 'bob', '#r'))).toEqual(['four']);

    // bob's own messages count from the join like anyone's
    tick();
    await send('bob', '#r', 'five (bob)');
    expect(bodies(await history(sinceJoin, 'bob', '#r'))).toEqual(['four', 'five (bob)']);
  });

  it('starts over when a member leaves and joins again', async () => {
    await sinceJoin.join({ username: 'alice', room: '#again' });
    await sinceJoin.join({ username: 'bob', room: '#again' });
    tick();
    await send('alice', '#again', 'while bob was in');

    tick();
    expect(await sinceJoin.leave({ username: 'bob', room: '#again' })).toEqual({
      ok: true,
      room: '#again',
    });
    tick();
    await send('alice', '#again', 'while bob was out');
    expect(await history(sinceJoin, 'bob', '#again')).toMatchObject({
      ok: false,
      code: 'forbidden',
    });
    expect(await history(all, 'bob', '#again')).toMatchObject({ ok: false, code: 'forbidden' });
    // what was sent while bob was a member is still his to receive; the rest never was
    expect(await pendingBodies('bob', '#again')).toEqual(['while bob was in']);

    tick();
    await sinceJoin.join({ username: 'bob', room: '#again' });
    expect(await joinedAtRow('#again', 'bob')).toBe(clock.t);
    expect(bodies(await history(sinceJoin, 'bob', '#again'))).toEqual([]);
    expect(bodies(await history(all, 'bob', '#again'))).toEqual([
      'while bob was in',
      'while bob was out',
    ]);
    tick();
    await send('alice', '#again', 'after the rejoin');
    expect(bodies(await history(sinceJoin, 'bob', '#again'))).toEqual(['after the rejoin']);
  });

  it('includes a message stamped in the millisecond of the join', async () => {
    await sinceJoin.join({ username: 'alice', room: '#same-ms' });
    tick();
    await send('alice', '#same-ms', 'before');
    tick();
    await sinceJoin.join({ username: 'carol', room: '#same-ms' });
    await send('alice', '#same-ms', 'same millisecond');
    expect(bodies(await history(sinceJoin, 'carol', '#same-ms'))).toEqual(['same millisecond']);
  });

  it('pages back to the join and stops there, whatever before names', async () => {
    await sinceJoin.join({ username: 'alice', room: '#paged' });
    const before: StoredMessage[] = [];
    for (let i = 0; i < 5; i++) {
      tick();
      const ack = await send('alice', '#paged', `old ${i}`);
      before.push({ msg_id: ack.msgId } as StoredMessage);
    }
    tick();
    await sinceJoin.join({ username: 'carol', room: '#paged' });
    const after: string[] = [];
    for (let i = 0; i < 5; i++) {
      tick();
      after.push((await send('alice', '#paged', `new ${i}`)).msgId);
    }

    const page = async (beforeId?: string) => {
      const result = await sinceJoin.history({
        username: 'carol',
        with: '#paged',
        limit: 3,
        ...(beforeId === undefined ? {} : { before: beforeId }),
      });
      return result.ok ? ids(result.messages) : [];
    };
    const first = await page();
    expect(first).toEqual(after.slice(2));
    const second = await page(first[0]);
    expect(second).toEqual(after.slice(0, 2));
    expect(await page(second[0])).toEqual([]);
    // a msg_id from before the join (say, remembered from an earlier membership) shows nothing
    expect(await page(before[3]!.msg_id)).toEqual([]);
    expect(await page(before[0]!.msg_id)).toEqual([]);
    // under `all` the same pages go on into the room's past
    const older = await all.history({
      username: 'carol',
      with: '#paged',
      before: after[0]!,
      limit: 3,
    });
    expect(older.ok && ids(older.messages)).toEqual(ids(before.slice(2)));
  });

  it('cuts a page at the first message stamped before the join, going back from the newest', async () => {
    // Stamps out of storage order: what two relays whose clocks differ can store.
    const stampedAt = async (t: number, body: string) => {
      clock.t = t;
      return (
        await messages.store({
          sender: 'alice',
          clientId: `m${counter++}`,
          recipient: '#skew',
          conversation: '#skew',
          body,
          clientTs: t,
          sig: 'c2ln',
          recipients: [],
        })
      ).message;
    };
    const join = 1_764_000_100_000;
    const early = await stampedAt(join + 5, 'after the join, stored first');
    await stampedAt(join - 5, 'before the join, from a relay behind');
    const late = await stampedAt(join + 10, 'after the join');
    const sent = await stampedAt(join, 'in the millisecond of the join');

    expect((await messages.history('#skew', undefined, 50, join)).map((m) => m.body)).toEqual([
      'after the join',
      'in the millisecond of the join',
    ]);
    // every message returned is stamped at or after the join, whatever before says
    expect(await messages.history('#skew', BigInt(late.msg_id), 50, join)).toEqual([]);
    expect(await messages.history('#skew', BigInt(sent.msg_id) + 1n, 1, join)).toEqual([sent]);
    expect(ids(await messages.history('#skew', undefined, 50))).toHaveLength(4);
    expect(early.server_ts).toBe(join + 5);
  });

  it('works on the real clock, joined_at and server_ts through the database', async () => {
    messages = new MessageRepository(handle.db, new ClockRepository());
    const live = relay('since-join', new ClockRepository());
    const sendLive = (body: string) =>
      live.send({ from: 'alice', id: `m${counter++}`, to: '#live', body, ts: 1, sig: 'c2ln' });

    await live.join({ username: 'alice', room: '#live' });
    expect((await sendLive('before carol')).ok).toBe(true);
    // a join in the same millisecond as that message would include it ("at or after")
    await new Promise((resolve) => setTimeout(resolve, 5));
    await live.join({ username: 'carol', room: '#live' });
    expect((await sendLive('after carol')).ok).toBe(true);
    expect(bodies(await live.history({ username: 'carol', with: '#live', limit: 50 }))).toEqual([
      'after carol',
    ]);
  });
});
