/**
 * Messages, deliveries and rooms against real databases (PGlite and PostgreSQL): group commit,
 * idempotent sends, pending order, delivery marks, history pages, room membership
 * (docs/PROTOCOL.md §7.4).
 */
import { Logger } from '@nestjs/common';
import { count, eq } from 'drizzle-orm';

import { type FanoutEvent, loadConfig, type StoredMessage } from '@securechat/core';
import { deliveries, messages, rooms, users } from '@db/schema';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { FakeClock } from '../test/fake-clock';
import { MemorySendQuotaRepository } from './memory-send-quota.repository';
import { MessageRepository, type NewMessage } from './message.repository';
import { RelayFailure } from './relay-failure.error';
import { RelayService } from './relay.service';
import { RoomRepository } from './room.repository';
import { type TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

const dm = (sender: string, to: string, clientId: string, body = `body of ${clientId}`) => {
  const [a, b] = [sender, to].sort();
  return {
    sender,
    clientId,
    recipient: to,
    conversation: `dm:${a}:${b}`,
    body,
    clientTs: 1_764_000_000_000,
    sig: 'c2ln',
    recipients: [to],
  } satisfies NewMessage;
};

const ids = (list: StoredMessage[]) => list.map((m) => m.msg_id);
const asc = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('relay storage on %s', (_name, open) => {
  let handle: TestDatabase;
  let clock: FakeClock;
  let repo: MessageRepository;
  let roomRepo: RoomRepository;

  beforeAll(async () => {
    handle = await open();
  }, 60_000);
  afterAll(() => handle.close());

  beforeEach(() => {
    clock = new FakeClock();
    repo = new MessageRepository(handle.db, clock);
    roomRepo = new RoomRepository(handle.db, clock);
  });
  afterEach(() => jest.restoreAllMocks());

  async function rowCount(table: typeof messages | typeof deliveries, sender?: string) {
    if (sender === undefined) {
      const [row] = await handle.db.select({ n: count() }).from(table);
      return row!.n;
    }
    const [row] = await handle.db
      .select({ n: count() })
      .from(messages)
      .where(eq(messages.sender, sender));
    return row!.n;
  }

  describe('group commit', () => {
    it('stores 500 concurrent sends and their deliveries in far fewer statements', async () => {
      const statements = jest.spyOn(handle.db, 'execute');
      const before = { messages: await rowCount(messages), deliveries: await rowCount(deliveries) };
      const sends = Array.from({ length: 500 }, (_, i) => ({
        ...dm('gc_sender', 'gc_bob', `gc-${i}`),
        recipients: i % 2 === 0 ? ['gc_bob'] : ['gc_bob', 'gc_carol'],
      }));
      const outcomes = await Promise.all(sends.map((s) => repo.store(s)));

      expect(await rowCount(messages)).toBe(before.messages + 500);
      expect(await rowCount(deliveries)).toBe(before.deliveries + 750);
      expect(outcomes.every((o) => !o.duplicate)).toBe(true);
      expect(outcomes.map((o) => o.message.id)).toEqual(sends.map((s) => s.clientId));
      // Storage order is submission order: msg_ids increase along the submissions.
      const msgIds = outcomes.map((o) => BigInt(o.message.msg_id));
      expect(msgIds).toEqual([...msgIds].sort(asc));
      expect(new Set(msgIds).size).toBe(500);
      expect(statements.mock.calls.length).toBe(repo.batchStats.batches);
      expect(repo.batchStats.batches).toBeLessThanOrEqual(10);
      expect(repo.batchStats.items).toBe(500);
    });

    it('stores a connection’s run of sends in one statement, in its order, beside single sends', async () => {
      const statements = jest.spyOn(handle.db, 'execute');
      const run = Array.from({ length: 40 }, (_, i) => dm('run_a', 'run_b', `run-${i}`));
      const [before, outcomes, after] = await Promise.all([
        repo.store(dm('run_c', 'run_b', 'single-before')),
        repo.storeAll(run),
        repo.store(dm('run_c', 'run_b', 'single-after')),
      ]);
      expect(outcomes.map((o) => o.message.id)).toEqual(run.map((m) => m.clientId));
      const ids = [before, ...outcomes, after].map((o) => BigInt(o.message.msg_id));
      expect(ids).toEqual([...ids].sort(asc));
      expect(statements.mock.calls.length).toBe(1);
    });

    it('stores a send repeated inside one batch once, answering the first msg_id to all', async () => {
      const message = dm('dup_a', 'dup_b', 'same-id');
      const [first, second, other, third] = await Promise.all([
        repo.store(message),
        repo.store({ ...message, body: 'a retry' }),
        repo.store(dm('dup_a', 'dup_b', 'other-id')),
        repo.store(message),
      ]);
      expect(repo.batchStats.batches).toBe(1);
      expect(first.duplicate).toBe(false);
      expect([second.duplicate, third.duplicate]).toEqual([true, true]);
      expect(second.message).toEqual(first.message);
      expect(third.message).toEqual(first.message);
      expect(other.message.msg_id).not.toBe(first.message.msg_id);
      expect(await rowCount(messages, 'dup_a')).toBe(2);
      const rows = await handle.db
        .select()
        .from(deliveries)
        .where(eq(deliveries.messageId, BigInt(first.message.msg_id)));
      expect(rows).toHaveLength(1);
    });

    it('answers a send repeated in a later batch with the stored msg_id and server_ts', async () => {
      const message = dm('dup_c', 'dup_d', 'again');
      const first = await repo.store(message);
      clock.t += 60_000;
      const deliveriesBefore = await rowCount(deliveries);
      const [retry, mixed] = await Promise.all([
        repo.store(message),
        repo.store(dm('dup_c', 'dup_d', 'fresh')),
      ]);
      expect(retry).toEqual({ message: first.message, duplicate: true });
      expect(retry.message.server_ts).toBe(clock.t - 60_000);
      expect(mixed).toMatchObject({ duplicate: false, message: { server_ts: clock.t } });
      expect(await rowCount(messages, 'dup_c')).toBe(2);
      expect(await rowCount(deliveries)).toBe(deliveriesBefore + 1);
      // and through a fresh repository (another process): same answer
      const other = new MessageRepository(handle.db, clock);
      expect(await other.store(message)).toEqual({ message: first.message, duplicate: true });
    });

    it('lets accepted sends commit before shutdown goes on', async () => {
      let settled = 0;
      const sends = Array.from({ length: 300 }, (_, i) =>
        repo.store(dm('sd_a', 'sd_b', `sd-${i}`)).then(() => (settled += 1)),
      );
      await repo.beforeApplicationShutdown();
      expect(settled).toBe(300);
      await Promise.all(sends);
    });

    it('rejects every send of a failed batch and stores none of them', async () => {
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      const before = await rowCount(messages);
      // Postgres text cannot hold U+0000 (the controller refuses it; here it reaches the batch)
      const results = await Promise.allSettled([
        repo.store(dm('fail_a', 'fail_b', 'ok-1')),
        repo.store(dm('fail_a', 'fail_b', 'poison', 'nul \u0000 inside')),
        repo.store(dm('fail_a', 'fail_b', 'ok-2')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const r of results) {
        const reason = (r as PromiseRejectedResult).reason as Error;
        expect(reason).toBeInstanceOf(RelayFailure);
        // never the statement's parameters (bodies) in the error
        expect(reason.message).not.toMatch(/body of|nul/);
      }
      expect(repo.batchStats).toMatchObject({ batches: 1, failedBatches: 1 });
      expect(logged).toHaveBeenCalledTimes(1); // once per batch, not per caller
      expect(JSON.stringify(logged.mock.calls)).toMatch(/a batch of 3 sends failed: \w+/);
      expect(JSON.stringify(logged.mock.calls)).not.toMatch(/body of|nul/);
      expect(await rowCount(messages)).toBe(before);
      // the next batch is unaffected, and a resend of the same ids is stored
      const again = await repo.store(dm('fail_a', 'fail_b', 'ok-1'));
      expect(again.duplicate).toBe(false);
    });
  });

  describe('pending and delivered', () => {
    it('lists undelivered messages oldest first, after a msg_id, within the limit; marks once', async () => {
      const stored = [];
      for (let i = 0; i < 6; i++) {
        const sender = i % 2 === 0 ? 'pd_alice' : 'pd_carol';
        stored.push((await repo.store(dm(sender, 'pd_bob', `p-${i}`))).message);
      }
      await repo.store(dm('pd_alice', 'pd_dave', 'not-for-bob'));

      expect(ids(await repo.pending('pd_bob', undefined, 100))).toEqual(ids(stored));
      expect(await repo.pending('pd_bob', undefined, 2)).toEqual(stored.slice(0, 2));
      expect(ids(await repo.pending('pd_bob', BigInt(stored[2]!.msg_id), 100))).toEqual(
        ids(stored.slice(3)),
      );

      const target = BigInt(stored[1]!.msg_id);
      expect(await repo.markDelivered('pd_dave', target, new Date())).toBe(false); // not his
      expect(await repo.markDelivered('pd_bob', target, new Date())).toBe(true);
      expect(await repo.markDelivered('pd_bob', target, new Date())).toBe(false); // already
      expect(await repo.markDelivered('pd_bob', 999_999_999n, new Date())).toBe(false); // unknown
      expect(ids(await repo.pending('pd_bob', undefined, 100))).toEqual(
        ids([stored[0]!, ...stored.slice(2)]),
      );
      expect(ids(await repo.pending('pd_dave', undefined, 100))).toHaveLength(1);
    });

    it('marks concurrent confirmations in one batch, each answered for itself', async () => {
      const stored: StoredMessage[] = [];
      for (let i = 0; i < 5; i++) {
        stored.push((await repo.store(dm('bd_alice', 'bd_bob', `bd-${i}`))).message);
      }
      const at = new Date();
      const before = repo.deliveredBatchStats.batches;
      const answers = await Promise.all([
        ...stored.map((m) => repo.markDelivered('bd_bob', BigInt(m.msg_id), at)),
        repo.markDelivered('bd_bob', BigInt(stored[0]!.msg_id), at), // the same pair again
        repo.markDelivered('bd_carol', BigInt(stored[1]!.msg_id), at), // not hers
      ]);
      expect(answers).toEqual([true, true, true, true, true, false, false]);
      // The first call starts a batch at once; the six made in the same tick share the next.
      expect(repo.deliveredBatchStats.batches - before).toBeLessThanOrEqual(2);
      expect(await repo.pending('bd_bob', undefined, 100)).toEqual([]);
    });

    it('counts pending deliveries of every recipient, for the metrics gauge', async () => {
      const before = await repo.countPending();
      const first = await repo.store({
        ...dm('cp_alice', 'cp_bob', 'cp-1'),
        recipients: ['cp_bob', 'cp_carol'],
      });
      await repo.store(dm('cp_alice', 'cp_bob', 'cp-2'));
      expect(await repo.countPending()).toBe(before + 3);
      await repo.markDelivered('cp_carol', BigInt(first.message.msg_id), new Date());
      expect(await repo.countPending()).toBe(before + 2);
    });
  });

  describe('history', () => {
    it('pages a conversation backwards: before is exclusive, limit most recent, oldest first', async () => {
      const conversation: StoredMessage[] = [];
      for (let i = 0; i < 7; i++) {
        const [from, to] = i % 2 === 0 ? ['hs_alice', 'hs_bob'] : ['hs_bob', 'hs_alice'];
        conversation.push((await repo.store(dm(from, to, `h-${i}`))).message);
        await repo.store(dm('hs_alice', 'hs_carol', `noise-${i}`));
      }
      const key = 'dm:hs_alice:hs_bob';
      const newest = await repo.history(key, undefined, 3);
      expect(ids(newest)).toEqual(ids(conversation.slice(4)));
      expect(newest[0]).toEqual(conversation[4]);
      const older = await repo.history(key, BigInt(newest[0]!.msg_id), 3);
      expect(ids(older)).toEqual(ids(conversation.slice(1, 4)));
      const oldest = await repo.history(key, BigInt(older[0]!.msg_id), 3);
      expect(ids(oldest)).toEqual(ids(conversation.slice(0, 1)));
      expect(await repo.history(key, BigInt(oldest[0]!.msg_id), 3)).toEqual([]);
      // history marks nothing delivered
      expect(ids(await repo.pending('hs_bob', undefined, 100))).toEqual(
        ids(conversation.filter((_, i) => i % 2 === 0)),
      );
    });
  });

  describe('rooms', () => {
    it('creates on first join, adds members idempotently, lists them sorted, and leaves', async () => {
      expect(await roomRepo.join('#lobby', 'rm_zed')).toEqual(['rm_zed']);
      expect(await roomRepo.join('#lobby', 'rm_amy')).toEqual(['rm_amy', 'rm_zed']);
      expect(await roomRepo.join('#lobby', 'rm_amy')).toEqual(['rm_amy', 'rm_zed']);
      expect(await roomRepo.join('#lobby', 'rm_9_x')).toEqual(['rm_9_x', 'rm_amy', 'rm_zed']);
      const [room] = await handle.db.select().from(rooms).where(eq(rooms.name, '#lobby'));
      expect(room!.createdBy).toBe('rm_zed');

      expect(await roomRepo.joinedAt('#lobby', 'rm_amy')).toBe(clock.t);
      expect(await roomRepo.leave('#lobby', 'rm_amy')).toBe(true);
      expect(await roomRepo.leave('#lobby', 'rm_amy')).toBe(false);
      expect(await roomRepo.joinedAt('#lobby', 'rm_amy')).toBeUndefined();
      expect(await roomRepo.leave('#nowhere', 'rm_amy')).toBe(false);
      expect(await roomRepo.members('#lobby')).toEqual(['rm_9_x', 'rm_zed']);
      expect(await roomRepo.members('#nowhere')).toEqual([]);
      // concurrent first joins of a new room all succeed
      const joined = await Promise.all(
        ['rc_a', 'rc_b', 'rc_c'].map((u) => roomRepo.join('#race', u)),
      );
      joined.forEach((members, i) => expect(members).toContain(['rc_a', 'rc_b', 'rc_c'][i]));
      expect(await roomRepo.members('#race')).toEqual(['rc_a', 'rc_b', 'rc_c']);
    });
  });

  describe('RelayService over the real repositories', () => {
    it('fans out 500 concurrent room sends after storing them, in storage order', async () => {
      await handle.db.insert(users).values(
        ['sv_alice', 'sv_bob', 'sv_carol'].map((username) => ({
          username,
          passwordHash: 'x',
          publicKey: Buffer.from([1]),
          fingerprint: 'sha256:00',
        })),
      );
      for (const u of ['sv_alice', 'sv_bob', 'sv_carol']) await roomRepo.join('#busy', u);
      const events: FanoutEvent[] = [];
      const fanout = {
        publish: (event: FanoutEvent) => {
          events.push(event);
          return Promise.resolve();
        },
        subscribe: () => () => undefined,
        onReconnect: () => () => undefined,
      };
      const service = new RelayService(
        repo,
        roomRepo,
        new UserDirectoryRepository(handle.db),
        {} as TranscriptRepository,
        fanout,
        clock,
        new MemorySendQuotaRepository(loadConfig({})),
        loadConfig({}),
      );
      const statements = jest.spyOn(handle.db, 'execute');
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          service.send({
            from: i % 2 ? 'sv_alice' : 'sv_bob',
            id: `busy-${i}`,
            to: '#busy',
            body: `message ${i}`,
            ts: clock.t,
            sig: 'c2ln',
          }),
        ),
      );
      expect(results.every((r) => r.ok && !r.duplicate)).toBe(true);
      expect(events).toHaveLength(500);
      const published = events.map((e) => BigInt(e.message.msg_id));
      expect(published).toEqual([...published].sort(asc));
      expect(events[0]!.recipients).toEqual(
        events[0]!.message.from === 'sv_bob' ? ['sv_alice', 'sv_carol'] : ['sv_bob', 'sv_carol'],
      );
      expect(await repo.pending('sv_carol', undefined, 1000)).toHaveLength(500);
      expect(statements.mock.calls.length).toBeLessThan(100);

      // a DM to an unknown user is refused and nothing is stored
      expect(
        await service.send({
          from: 'sv_alice',
          id: 'to-nobody',
          to: 'sv_nobody',
          body: 'x',
          ts: 1,
          sig: 'c2ln',
        }),
      ).toMatchObject({ ok: false, code: 'not_found' });
      expect(events).toHaveLength(500);
    });
  });
});
