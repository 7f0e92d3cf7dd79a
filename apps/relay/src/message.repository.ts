/**
 * Messages and their per-recipient delivery state (tables `messages` and `deliveries`,
 * docs/PROTOCOL.md §7.4). Sends go through group commit (GroupCommitBatcher): each batch of up
 * to MAX_BATCH sends is one transaction with multi-row inserts, and every caller learns its
 * own outcome only after that transaction committed, so an `ack` built from it means durable.
 */
import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { and, asc, desc, eq, getTableColumns, gt, isNull, lt, or, sql } from 'drizzle-orm';

import { ClockRepository, DATABASE, type Database, type StoredMessage } from '@securechat/core';
import { deliveries, messages } from '@db/schema';

import { GroupCommitBatcher, type GroupCommitStats } from './message-batcher';
import { describeError, RelayFailure } from './relay-failure.error';

/**
 * Most sends per transaction: enough to amortise the commit, few enough that one batch stays
 * a few milliseconds of work and a failing batch takes few senders with it.
 */
export const MAX_BATCH = 256;

/** A send the service has authorised, ready to store. */
export interface NewMessage {
  readonly sender: string;
  /** The client's `id` (docs/PROTOCOL.md §7.1). */
  readonly clientId: string;
  /** Username or `#room`, as sent. */
  readonly recipient: string;
  readonly conversation: string;
  readonly body: string;
  readonly clientTs: number;
  readonly sig: string;
  /** The users who get a `deliveries` row (docs/PROTOCOL.md §7.4 "Recipients"). */
  readonly recipients: readonly string[];
}

export interface StoreOutcome {
  /** The stored message: for a duplicate, the one stored the first time. */
  readonly message: StoredMessage;
  /** True when (sender, client id) was already stored (docs/PROTOCOL.md §7.4 "Idempotent send"). */
  readonly duplicate: boolean;
}

type MessageRow = typeof messages.$inferSelect;

/** One `delivered` confirmation waiting for its batch. */
interface DeliveredMark {
  readonly recipient: string;
  readonly messageId: bigint;
  readonly at: Date;
}

/** The docs/PROTOCOL.md §7.2 `deliver` members of a stored row. */
export function toStoredMessage(row: MessageRow): StoredMessage {
  return {
    msg_id: row.id.toString(),
    id: row.clientId,
    from: row.sender,
    to: row.recipient,
    body: row.body,
    ts: row.clientTs,
    server_ts: row.serverTs,
    sig: row.sig,
  };
}

/** `execute` answers `{ rows }` on both drivers (pg's QueryResult, PGlite's Results). */
const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;

const dedupeKey = (sender: string, clientId: string) => `${sender}\u0000${clientId}`;

/**
 * A recipient's undelivered messages, oldest first (MessageRepository.pending), built once:
 * every login asks it, and Drizzle spent longer assembling the join than PostgreSQL running it.
 * On PostgreSQL it is also prepared once per connection (named).
 */
function preparePending(db: Database, after: boolean, name: string) {
  return db
    .select(getTableColumns(messages))
    .from(deliveries)
    .innerJoin(messages, eq(messages.id, deliveries.messageId))
    .where(
      and(
        eq(deliveries.recipient, sql.placeholder('recipient')),
        isNull(deliveries.deliveredAt),
        after ? gt(deliveries.messageId, sql.placeholder('after')) : undefined,
      ),
    )
    .orderBy(asc(deliveries.messageId))
    .limit(sql.placeholder('limit'))
    .prepare(name);
}

type PendingStatement = ReturnType<typeof preparePending>;

@Injectable()
export class MessageRepository implements BeforeApplicationShutdown {
  readonly #logger = new Logger(MessageRepository.name);
  readonly #batcher: GroupCommitBatcher<NewMessage, StoreOutcome>;
  /**
   * `delivered` confirmations, one UPDATE per batch: every delivered message costs one, so one
   * statement each was the relay's largest cost after the sends themselves.
   */
  readonly #deliveredBatcher: GroupCommitBatcher<DeliveredMark, boolean>;
  readonly #pendingFirst: PendingStatement;
  readonly #pendingAfter: PendingStatement;

  constructor(
    @Inject(DATABASE) private readonly db: Database,
    private readonly clock: ClockRepository,
  ) {
    this.#pendingFirst = preparePending(db, false, 'relay_pending_first');
    this.#pendingAfter = preparePending(db, true, 'relay_pending_after');
    this.#batcher = new GroupCommitBatcher(async (batch) => {
      try {
        return await this.#writeBatch(batch);
      } catch (error) {
        // Logged once here rather than once per caller; every caller gets the same safe error.
        const reason = `a batch of ${batch.length} sends failed: ${describeError(error)}`;
        this.#logger.error(reason);
        throw new RelayFailure(reason);
      }
    }, MAX_BATCH);
    this.#deliveredBatcher = new GroupCommitBatcher(async (batch) => {
      try {
        return await this.#markBatch(batch);
      } catch (error) {
        const reason = `a batch of ${batch.length} delivered marks failed: ${describeError(error)}`;
        this.#logger.error(reason);
        throw new RelayFailure(reason);
      }
    }, MAX_BATCH);
  }

  /**
   * Stores `message` and one pending delivery per recipient in the same transaction, shared
   * with concurrent calls. Resolves after the commit; rejects if the batch failed (nothing of
   * it is stored then, and the client may resend: docs/PROTOCOL.md §9 `internal`).
   */
  store(message: NewMessage): Promise<StoreOutcome> {
    return this.#batcher.submit(message);
  }

  /**
   * Stores one connection's run of sends in one transaction, in this order (PROTOCOL.md §6 order
   * per sender): all of them or, on failure, none.
   */
  storeAll(messages: readonly NewMessage[]): Promise<StoreOutcome[]> {
    return this.#batcher.submitAll(messages);
  }

  /** Group commit counters: how many transactions the stored messages took. */
  get batchStats(): GroupCommitStats {
    return this.#batcher.stats;
  }

  /** The same for `delivered` confirmations. */
  get deliveredBatchStats(): GroupCommitStats {
    return this.#deliveredBatcher.stats;
  }

  /**
   * Lets sends already accepted finish their transaction. `before…` because the process
   * wiring closes the database in an `onApplicationShutdown` hook, which runs after this.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([this.#batcher.drain(), this.#deliveredBatcher.drain()]);
  }

  /**
   * Undelivered messages of `recipient`, oldest first (docs/PROTOCOL.md §7.4 "Redelivery"), with
   * ids above `after` when given.
   */
  async pending(
    recipient: string,
    after: bigint | undefined,
    limit: number,
  ): Promise<StoredMessage[]> {
    const rows =
      after === undefined
        ? await this.#pendingFirst.execute({ recipient, limit })
        : await this.#pendingAfter.execute({ recipient, limit, after: after.toString() });
    return rows.map(toStoredMessage);
  }

  /**
   * Deliveries not yet confirmed, all recipients together (the pending-deliveries gauge). The
   * partial index on pending rows keeps this to an index scan of the pending set.
   */
  async countPending(): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<string>`count(*)` })
      .from(deliveries)
      .where(isNull(deliveries.deliveredAt));
    return Number(row?.n ?? 0);
  }

  /**
   * Marks one delivery done if it is still pending; returns whether it was (docs/PROTOCOL.md §7.4).
   * Calls made together share one UPDATE (group commit, like `store`).
   */
  markDelivered(recipient: string, messageId: bigint, at: Date): Promise<boolean> {
    return this.#deliveredBatcher.submit({ recipient, messageId, at });
  }

  async #markBatch(batch: readonly DeliveredMark[]): Promise<boolean[]> {
    const values = sql.join(
      batch.map(
        (m) =>
          sql`(${m.recipient}::text, ${m.messageId.toString()}::bigint, ${m.at.toISOString()}::timestamptz)`,
      ),
      sql`, `,
    );
    const result = await this.db.execute(sql`
      update ${deliveries} as d set delivered_at = v.at
      from (values ${values}) as v(recipient, message_id, at)
      where d.recipient = v.recipient and d.message_id = v.message_id and d.delivered_at is null
      returning d.recipient, d.message_id`);
    const marked = new Set(
      rowsOf<{ recipient: string; message_id: string | number | bigint }>(result).map((row) =>
        dedupeKey(row.recipient, String(row.message_id)),
      ),
    );
    // A pair confirmed twice in one batch was pending once: only its first call marked it.
    return batch.map((m) => marked.delete(dedupeKey(m.recipient, m.messageId.toString())));
  }

  /**
   * The `limit` most recent messages of a conversation with ids below `before` (when given),
   * oldest first (docs/PROTOCOL.md §7.4 "History").
   *
   * With `since` (a member's join of a room, RelayService.history) the page also ends, going
   * back from the newest, at the first message stamped (`server_ts`) before `since`: a member
   * sees the room's messages down to the last one stored before its join, and every message
   * returned is stamped at or after `since`. The cut is made on the rows this query reads
   * anyway, so it costs nothing: a `server_ts` condition in SQL would, once a client paged back
   * to the join, read every older message of the room to find that none qualifies (no index
   * holds `server_ts`), on every such request. One relay stamps its batches in storage order,
   * so ids and stamps rise together; only between relays whose clocks differ can a message
   * stamped after `since` sit below an older one, and paging back from the newest stops at the
   * older one.
   */
  async history(
    conversation: string,
    before: bigint | undefined,
    limit: number,
    since?: number,
  ): Promise<StoredMessage[]> {
    const rows = await this.db
      .select()
      .from(messages)
      .where(
        and(
          eq(messages.conversation, conversation),
          before === undefined ? undefined : lt(messages.id, before),
        ),
      )
      .orderBy(desc(messages.id))
      .limit(limit);
    const end = since === undefined ? -1 : rows.findIndex((row) => row.serverTs < since);
    return (end === -1 ? rows : rows.slice(0, end)).reverse().map(toStoredMessage);
  }

  /**
   * One batch, one statement: insert the messages that are new (`on conflict do nothing` on
   * (sender, client_id)) and the deliveries of the new ones, then look up the ones that were
   * not new. Identical (sender, client_id) pairs inside the batch are written once; the later
   * ones are answered as duplicates of the first.
   */
  async #writeBatch(batch: readonly NewMessage[]): Promise<StoreOutcome[]> {
    // Index of the first occurrence of each key; later occurrences follow it.
    const leaderOf = new Map<string, number>();
    const leaders: NewMessage[] = [];
    const follows = batch.map((message) => {
      const key = dedupeKey(message.sender, message.clientId);
      const index = leaderOf.get(key);
      if (index !== undefined) return { leader: index, first: false };
      leaderOf.set(key, leaders.length);
      leaders.push(message);
      return { leader: leaders.length - 1, first: true };
    });

    // One timestamp per batch: the moment of storage (docs/PROTOCOL.md §7.2 `ack.server_ts`) for
    // all of it.
    const serverTs = this.clock.now();

    // Every recipient of every message, keyed by (sender, client id): the deliveries to write
    // for whichever of them the insert below really inserts.
    const deliveryKeys = leaders.flatMap((m) =>
      [...new Set(m.recipients)].map((recipient) => [m.sender, m.clientId, recipient] as const),
    );
    const column = (pick: (m: NewMessage) => string) => sql.param(leaders.map(pick));
    const deliveryColumn = (at: 0 | 1 | 2) => sql.param(deliveryKeys.map((key) => key[at]));
    // One statement, so one implicit transaction: no BEGIN and COMMIT round trips. Arrays go
    // through unnest, one parameter per column: Drizzle's builder spends longer assembling
    // thousands of placeholders than Postgres spends inserting the rows. The deliveries of the
    // messages it inserts are written by the same statement (a data-modifying CTE); only ids
    // come back, the rest we have.
    const inserted = rowsOf<{ id: string | number | bigint; sender: string; client_id: string }>(
      await this.db.execute(sql`
        with ins as (
          insert into ${messages}
            (sender, client_id, recipient, conversation, body, client_ts, server_ts, sig)
          select s, c, r, conv, b, ts::bigint, ${String(serverTs)}::bigint, sig
          from unnest(
            ${column((m) => m.sender)}::text[],
            ${column((m) => m.clientId)}::text[],
            ${column((m) => m.recipient)}::text[],
            ${column((m) => m.conversation)}::text[],
            ${column((m) => m.body)}::text[],
            ${column((m) => String(m.clientTs))}::text[],
            ${column((m) => m.sig)}::text[]
          ) with ordinality as t(s, c, r, conv, b, ts, sig, n)
          -- ids are drawn in this order: storage order is batch order (§7.4 "Order")
          order by n
          on conflict (sender, client_id) do nothing
          returning id, sender, client_id
        ), dels as (
          insert into ${deliveries} (recipient, message_id)
          select d.r, ins.id
          from unnest(
            ${deliveryColumn(0)}::text[],
            ${deliveryColumn(1)}::text[],
            ${deliveryColumn(2)}::text[]
          ) as d(s, c, r)
          join ins on ins.sender = d.s and ins.client_id = d.c
          on conflict do nothing
        )
        select id, sender, client_id from ins`),
    );

    const stored = new Map<string, StoreOutcome>();
    for (const row of inserted) {
      const key = dedupeKey(row.sender, row.client_id);
      const m = leaders[leaderOf.get(key)!]!;
      stored.set(key, {
        message: {
          msg_id: BigInt(row.id).toString(),
          id: m.clientId,
          from: m.sender,
          to: m.recipient,
          body: m.body,
          ts: m.clientTs,
          server_ts: serverTs,
          sig: m.sig,
        },
        duplicate: false,
      });
    }

    // Stored before (by an earlier batch, or by another relay whose statement the insert waited
    // for, committed by now): answer with what was stored then, not with what this send says.
    const existing = leaders.filter((m) => !stored.has(dedupeKey(m.sender, m.clientId)));
    if (existing.length > 0) {
      const rows = await this.db
        .select()
        .from(messages)
        .where(
          or(
            ...existing.map((m) =>
              and(eq(messages.sender, m.sender), eq(messages.clientId, m.clientId)),
            ),
          ),
        );
      for (const row of rows) {
        stored.set(dedupeKey(row.sender, row.clientId), {
          message: toStoredMessage(row),
          duplicate: true,
        });
      }
    }

    const outcomes = leaders.map((m) => {
      const outcome = stored.get(dedupeKey(m.sender, m.clientId));
      // Neither inserted nor found: only possible if the row vanished, which the schema does
      // not allow. Fail the batch rather than acknowledge something not stored.
      if (!outcome) throw new Error('a message of the batch was neither inserted nor found');
      return outcome;
    });

    return follows.map(({ leader, first }) => {
      const outcome = outcomes[leader]!;
      return first ? outcome : { message: outcome.message, duplicate: true };
    });
  }
}
