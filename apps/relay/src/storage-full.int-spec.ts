/**
 * A full disk (or any refusal to write) is an error, never a false `ack` (hardening issue,
 * item 3): on both databases, with the writes refused the way PostgreSQL refuses them when
 * its disk is full (SQLSTATE 53100 disk_full, raised here by a trigger), a run of sends is
 * rejected as a whole — the gateway answers each `internal`, which tells the client to resend
 * — nothing is stored or published, and once space is back the same sends are stored once.
 */
import { Logger } from '@nestjs/common';
import { count, sql } from 'drizzle-orm';

import { type FanoutEvent, loadConfig } from '@securechat/core';
import { deliveries, messages, users } from '@db/schema';

import {
  pgliteTestDatabase,
  postgresTestDatabase,
  type TestDatabase,
} from '../../../libs/core/test/test-database';
import { MemorySendQuotaRepository } from './memory-send-quota.repository';
import { MessageRepository } from './message.repository';
import { RelayService } from './relay.service';
import { RoomRepository } from './room.repository';
import { TranscriptRepository } from './transcript.repository';
import { UserDirectoryRepository } from './user-directory.repository';

const NOW = 1_764_000_000_000;

describe.each([
  ['PGlite', pgliteTestDatabase],
  ['PostgreSQL', postgresTestDatabase],
])('a full disk on %s', (_name, open) => {
  let handle: TestDatabase;
  let service: RelayService;
  let events: FanoutEvent[];

  beforeAll(async () => {
    handle = await open();
    await handle.db.insert(users).values(
      ['full_alice', 'full_bob'].map((username) => ({
        username,
        passwordHash: 'x',
        publicKey: Buffer.from([1]),
        fingerprint: 'sha256:00',
      })),
    );
    await handle.db.execute(sql`
      CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
      END $$`);
  }, 60_000);
  afterAll(() => handle.close());

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    events = [];
    const clock = { now: () => NOW };
    service = new RelayService(
      new MessageRepository(handle.db, clock),
      new RoomRepository(handle.db, clock),
      new UserDirectoryRepository(handle.db),
      new TranscriptRepository(handle.db),
      {
        publish: (event: FanoutEvent) => {
          events.push(event);
          return Promise.resolve();
        },
        subscribe: () => () => undefined,
        onReconnect: () => () => undefined,
      },
      clock,
      new MemorySendQuotaRepository(loadConfig({})),
      loadConfig({}),
    );
  });
  afterEach(() => jest.restoreAllMocks());

  const send = (id: string) => ({
    from: 'full_alice',
    id,
    to: 'full_bob',
    body: `body ${id}`,
    ts: NOW - 1,
    sig: 'c2ln',
  });
  const rows = async (table: typeof messages | typeof deliveries) =>
    (await handle.db.select({ n: count() }).from(table))[0]!.n;

  it.each(['messages', 'deliveries'])(
    'rejects the whole run when %s cannot be written, stores and publishes nothing, and stores it once afterwards',
    async (table) => {
      const before = { messages: await rows(messages), deliveries: await rows(deliveries) };
      const run = { sends: [send(`${table}-1`), send(`${table}-2`)] };
      await handle.db.execute(
        sql.raw(
          `CREATE TRIGGER test_disk_full BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION test_disk_full()`,
        ),
      );
      try {
        await expect(service.sendBatch(run)).rejects.toThrow();
        await expect(service.send(send(`${table}-3`))).rejects.toThrow();
      } finally {
        await handle.db.execute(sql.raw(`DROP TRIGGER test_disk_full ON ${table}`));
      }
      expect(events).toEqual([]);
      expect(await rows(messages)).toBe(before.messages);
      expect(await rows(deliveries)).toBe(before.deliveries);

      // The client resends the unacknowledged run with the same ids: stored once, now acked.
      const retried = await service.sendBatch(run);
      expect(retried.results.map((r) => r.ok && !r.duplicate)).toEqual([true, true]);
      expect(await rows(messages)).toBe(before.messages + 2);
      expect(events).toHaveLength(2);
    },
  );
});
