/** Rooms and their members (tables `rooms`, `room_members`; docs/PROTOCOL.md §7.4 "Rooms"). */
import { Inject, Injectable } from '@nestjs/common';
import { and, eq } from 'drizzle-orm';

import { ClockRepository, DATABASE, type Database } from '@securechat/core';
import { roomMembers, rooms } from '@db/schema';

/**
 * Code-point order, the same on every database: `order by` would follow the server's
 * collation, which differs between PGlite and a Postgres cluster set up with a locale.
 */
const sorted = (names: string[]) => names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

@Injectable()
export class RoomRepository {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly clock: ClockRepository,
  ) {}

  /**
   * Creates the room if it does not exist (owned by `username`), adds `username` as a member
   * and returns the members afterwards, sorted.
   *
   * `joined_at` is stamped with the relay's clock, the one that stamps `server_ts`, rather than
   * left to the database's `now()`: a member's history of the room starts at the messages
   * stamped at or after it (RelayService.history), and stamps from two clocks would move that
   * boundary by their difference. A repeated join changes nothing, `joined_at` included, so
   * joining again never hides what a member could already read; `leave` deletes the row, so a
   * join after it starts a new membership, and its history, afresh.
   */
  async join(room: string, username: string): Promise<string[]> {
    const joinedAt = new Date(this.clock.now());
    return this.db.transaction(async (tx) => {
      await tx.insert(rooms).values({ name: room, createdBy: username }).onConflictDoNothing();
      await tx.insert(roomMembers).values({ room, username, joinedAt }).onConflictDoNothing();
      const rows = await tx
        .select({ username: roomMembers.username })
        .from(roomMembers)
        .where(eq(roomMembers.room, room));
      return sorted(rows.map((r) => r.username));
    });
  }

  /** Removes `username` from `room`; false when it was not a member. The room itself stays. */
  async leave(room: string, username: string): Promise<boolean> {
    const rows = await this.db
      .delete(roomMembers)
      .where(and(eq(roomMembers.room, room), eq(roomMembers.username, username)))
      .returning({ username: roomMembers.username });
    return rows.length > 0;
  }

  /** The members of `room`, sorted; empty when the room does not exist. */
  async members(room: string): Promise<string[]> {
    const rows = await this.db
      .select({ username: roomMembers.username })
      .from(roomMembers)
      .where(eq(roomMembers.room, room));
    return sorted(rows.map((r) => r.username));
  }

  /**
   * When `username`'s current membership of `room` began, in ms since the epoch (comparable
   * with `server_ts`); undefined when it is not a member.
   */
  async joinedAt(room: string, username: string): Promise<number | undefined> {
    const rows = await this.db
      .select({ joinedAt: roomMembers.joinedAt })
      .from(roomMembers)
      .where(and(eq(roomMembers.room, room), eq(roomMembers.username, username)))
      .limit(1);
    return rows[0]?.joinedAt.getTime();
  }
}
