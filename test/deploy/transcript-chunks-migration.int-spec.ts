/**
 * Migration 0002 moves the records stored one row each (transcript_records) into chunks, one
 * chunk per record, byte-exact: a store upgraded with sessions in it verifies as before.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';

import { decodeChunk } from '@securechat/core';

const migrations = join(__dirname, '../../db/migrations');

async function apply(db: PGlite, file: string): Promise<void> {
  const text = readFileSync(join(migrations, file), 'utf8');
  for (const statement of text.split('--> statement-breakpoint')) {
    if (statement.trim()) await db.exec(statement);
  }
}

it('turns every stored record into a one-record chunk with the same bytes', async () => {
  const db = new PGlite();
  try {
    await apply(db, '0000_init.sql');
    await apply(db, '0001_admin_audit.sql');
    await db.query(
      `insert into transcript_sessions (session_id, username, gateway, mode, h2, started_at, status)
       values ('s-old', 'alice', 'gw', 'full', '\\x00', now(), 'open')`,
    );
    const plaintexts = ['{"type":"login_ok"}', '{"type":"ping","n":1}', '{"type":"bye"}', ''];
    const stored = plaintexts.map((text, position) => ({
      position,
      direction: position % 2 === 0 ? 's2c' : 'c2s',
      chained: position !== 2,
      plaintext: Buffer.from(text),
    }));
    for (const r of stored) {
      await db.query(
        `insert into transcript_records (session_id, position, direction, chained, plaintext)
         values ('s-old', $1, $2, $3, $4)`,
        [r.position, r.direction, r.chained, r.plaintext],
      );
    }

    await apply(db, '0002_transcript_chunks.sql');
    await apply(db, '0003_drop_transcript_records.sql');

    const { rows } = await db.query<{
      first_position: number;
      record_count: number;
      records: Uint8Array;
    }>(
      `select first_position, record_count, records from transcript_chunks
       where session_id = 's-old' order by first_position`,
    );
    expect(rows.map((row) => [row.first_position, row.record_count])).toEqual(
      stored.map((r) => [r.position, 1]),
    );
    const decoded = rows.flatMap((row) => decodeChunk(Buffer.from(row.records)));
    expect(decoded).toEqual(
      stored.map((r) => ({ direction: r.direction, chained: r.chained, plaintext: r.plaintext })),
    );
    const tables = await db.query<{ n: number }>(
      `select count(*)::int as n from information_schema.tables where table_name = 'transcript_records'`,
    );
    expect(tables.rows[0]!.n).toBe(0);
  } finally {
    await db.close();
  }
});
