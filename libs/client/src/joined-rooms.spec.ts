import fc from 'fast-check';

import { ROOM_PATTERN, USERNAME_PATTERN } from '@securechat/protocol';

import {
  type JoinedRoomsEntry,
  MAX_JOINED_IDENTITIES,
  MAX_JOINED_ROOMS,
  MAX_JOINED_ROOMS_FILE_BYTES,
  MemoryJoinedRoomsStore,
  parseJoinedRooms,
  serializeJoinedRooms,
  withJoinedRoom,
  withoutJoinedRoom,
} from './joined-rooms';
import { isFingerprint } from './known-servers';

const S1 = `sha256:${'1'.repeat(64)}`;
const S2 = `sha256:${'2'.repeat(64)}`;

const serverArb = fc.integer({ min: 0, max: 3 }).map((n) => `sha256:${n.toString(16).repeat(64)}`);
const userArb = fc.constantFrom('alice', 'bob', '123', 'carol_2');
const roomArb = fc.integer({ min: 0, max: 150 }).map((n) => `#r${n}`);
const changeArb = fc.record({
  add: fc.boolean(),
  server: serverArb,
  user: userArb,
  room: roomArb,
});

function assertWellFormed(entries: readonly JoinedRoomsEntry[]): void {
  expect(entries.length).toBeLessThanOrEqual(MAX_JOINED_IDENTITIES);
  const identities = entries.map((e) => `${e.server} ${e.user}`);
  expect(new Set(identities).size).toBe(identities.length);
  for (const entry of entries) {
    expect(isFingerprint(entry.server)).toBe(true);
    expect(USERNAME_PATTERN.test(entry.user)).toBe(true);
    expect(entry.rooms.length).toBeGreaterThan(0);
    expect(entry.rooms.length).toBeLessThanOrEqual(MAX_JOINED_ROOMS);
    expect(new Set(entry.rooms).size).toBe(entry.rooms.length);
    for (const room of entry.rooms) expect(ROOM_PATTERN.test(room)).toBe(true);
  }
}

describe('parseJoinedRooms', () => {
  it('reads what serializeJoinedRooms writes', () => {
    const entries = [
      { server: S1, user: 'alice', rooms: ['#ops', '#dev'] },
      { server: S2, user: 'alice', rooms: ['#ops'] },
    ];
    expect(parseJoinedRooms(serializeJoinedRooms(entries))).toEqual({ entries });
  });

  it('names what is wrong with a file it cannot read, without quoting it', () => {
    expect(parseJoinedRooms('')).toEqual({ entries: [] });
    expect(parseJoinedRooms('{"version":1,"identities":[')).toEqual({
      entries: [],
      problem: 'not JSON',
    });
    for (const text of ['null', '[]', '{"version":2,"identities":[]}', '{"version":1}']) {
      expect(parseJoinedRooms(text)).toEqual({
        entries: [],
        problem: 'not a version 1 joined-rooms file',
      });
    }
    const huge = `{"version":1,"identities":[],"pad":"${'x'.repeat(MAX_JOINED_ROOMS_FILE_BYTES)}"}`;
    expect(parseJoinedRooms(huge)).toEqual({ entries: [], problem: 'too large' });
  });

  it('drops entries and rooms that break a rule, and keeps the rest', () => {
    const text = JSON.stringify({
      version: 1,
      identities: [
        { server: 'example.org:7777', user: 'alice', rooms: ['#ops'] },
        { server: S1, user: 'Alice', rooms: ['#ops'] },
        { server: S1, user: 'alice', rooms: ['#ops', 'dev', 7, '#ops', '#dev', '#OPS'] },
        { server: S2, user: 'bob', rooms: 'not a list' },
        { server: S2, user: 'bob', rooms: [] },
        null,
        'alice',
      ],
    });
    expect(parseJoinedRooms(text)).toEqual({
      entries: [{ server: S1, user: 'alice', rooms: ['#ops', '#dev'] }],
    });
  });

  it('never throws, and whatever it reads is within the bounds (fast-check)', () => {
    const roomsArb = fc.array(fc.oneof(roomArb, fc.string(), fc.integer()), { maxLength: 300 });
    const entryArb = fc.record({
      server: fc.oneof(serverArb, fc.string()),
      user: fc.oneof(userArb, fc.string()),
      rooms: fc.oneof(roomsArb, fc.anything()),
    });
    const fileArb = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .array(fc.oneof(entryArb, fc.anything()), { maxLength: 100 })
        .map((identities) => JSON.stringify({ version: 1, identities })),
    );
    fc.assert(
      fc.property(fileArb, (text) => {
        const parsed = parseJoinedRooms(text);
        assertWellFormed(parsed.entries);
        // What it reads is a fixed point: written and read again, nothing changes.
        expect(parseJoinedRooms(serializeJoinedRooms(parsed.entries))).toEqual({
          entries: parsed.entries,
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('withJoinedRoom / withoutJoinedRoom', () => {
  it('keeps join order, the latest join last, and forgets an identity with no rooms', () => {
    let entries = withJoinedRoom([], S1, 'alice', '#ops');
    entries = withJoinedRoom(entries, S1, 'alice', '#dev');
    entries = withJoinedRoom(entries, S2, 'alice', '#ops');
    entries = withJoinedRoom(entries, S1, 'alice', '#ops');
    expect(entries).toEqual([
      { server: S2, user: 'alice', rooms: ['#ops'] },
      { server: S1, user: 'alice', rooms: ['#dev', '#ops'] },
    ]);
    entries = withoutJoinedRoom(entries, S2, 'alice', '#ops');
    entries = withoutJoinedRoom(entries, S1, 'alice', '#nothere');
    expect(entries).toEqual([{ server: S1, user: 'alice', rooms: ['#dev', '#ops'] }]);
  });

  it('forgets the oldest join, and the least recently changed identity, past the bounds', () => {
    let entries: JoinedRoomsEntry[] = [];
    for (let i = 0; i <= MAX_JOINED_ROOMS; i += 1) {
      entries = withJoinedRoom(entries, S1, 'alice', `#r${i}`);
    }
    expect(entries[0]?.rooms).toHaveLength(MAX_JOINED_ROOMS);
    expect(entries[0]?.rooms[0]).toBe('#r1');

    const users = Array.from({ length: MAX_JOINED_IDENTITIES + 1 }, (_, i) => `user_${i}`);
    entries = [];
    for (const user of users) entries = withJoinedRoom(entries, S1, user, '#ops');
    expect(entries).toHaveLength(MAX_JOINED_IDENTITIES);
    expect(entries.map((e) => e.user)).not.toContain('user_0');
  });

  it('stays within the bounds and agrees with a plain model after any changes (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 400 }), (changes) => {
        let entries: JoinedRoomsEntry[] = [];
        const model = new Map<string, string[]>();
        for (const { add, server, user, room } of changes) {
          const key = `${server} ${user}`;
          const rooms = (model.get(key) ?? []).filter((r) => r !== room);
          if (add) {
            entries = withJoinedRoom(entries, server, user, room);
            model.delete(key);
            model.set(key, [...rooms, room].slice(-MAX_JOINED_ROOMS));
          } else {
            entries = withoutJoinedRoom(entries, server, user, room);
            if (rooms.length === 0) model.delete(key);
            else model.set(key, rooms);
          }
        }
        assertWellFormed(entries);
        expect(entries.map((e) => [`${e.server} ${e.user}`, e.rooms])).toEqual(
          [...model].slice(-MAX_JOINED_IDENTITIES),
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('MemoryJoinedRoomsStore', () => {
  it('keeps rooms per server and user, and refuses what is not a room', async () => {
    const store = new MemoryJoinedRoomsStore();
    await store.add(S1, 'alice', '#ops');
    await store.add(S2, 'alice', '#dev');
    expect(await store.list(S1, 'alice')).toEqual(['#ops']);
    expect(await store.list(S2, 'alice')).toEqual(['#dev']);
    expect(await store.list(S1, 'bob')).toEqual([]);
    await expect(store.add(S1, 'alice', 'ops')).rejects.toThrow(TypeError);
    await expect(store.add('example.org:7777', 'alice', '#ops')).rejects.toThrow(TypeError);
    await store.remove(S1, 'alice', '#ops');
    expect(await store.list(S1, 'alice')).toEqual([]);
  });
});
