/**
 * One schema, one writer per table (docs/ARCHITECTURE.md "The parts"): every INSERT, UPDATE
 * or DELETE of a table in the production sources — Drizzle's `.insert(table)` and raw SQL
 * alike — comes from the app that owns the table. Reading another app's table is allowed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

/** The owner of each table, as docs/ARCHITECTURE.md states it. */
const OWNERS: Record<string, string> = {
  users: 'apps/auth',
  messages: 'apps/relay',
  deliveries: 'apps/relay',
  rooms: 'apps/relay',
  room_members: 'apps/relay',
  transcript_sessions: 'apps/relay',
  transcript_chunks: 'apps/relay',
  admin_audit: 'apps/admin',
};

/** `export const users = pgTable('users', …` → identifier → table name. */
function schemaTables(): Map<string, string> {
  const schema = readFileSync(join(ROOT, 'db/schema.ts'), 'utf8');
  const tables = new Map<string, string>();
  for (const [, ident, name] of schema.matchAll(/export const (\w+) = pgTable\(\s*'([a-z_]+)'/g)) {
    tables.set(ident!, name!);
  }
  return tables;
}

function productionSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'test' ? [] : productionSources(path);
    return /(?<!\.(spec|int-spec|e2e-spec))\.ts$/.test(entry.name) ? [path] : [];
  });
}

/**
 * The tables `code` writes: Drizzle calls on schema identifiers, and SQL statements naming a
 * table literally or through Drizzle's `sql` interpolation (`insert into ${messages}`).
 */
export function writtenTables(code: string, tables: Map<string, string>): string[] {
  const names = new Set(tables.values());
  const found = new Set<string>();
  for (const [, ident] of code.matchAll(/\.(?:insert|update|delete)\(\s*(\w+)\s*\)/g)) {
    const table = tables.get(ident!);
    if (table !== undefined) found.add(table);
  }
  for (const [, name] of code.matchAll(
    /\b(?:insert\s+into|update|delete\s+from)\s+"?([a-z_]+)"?/gi,
  )) {
    if (names.has(name!.toLowerCase())) found.add(name!.toLowerCase());
  }
  for (const [, ident] of code.matchAll(
    /\b(?:insert\s+into|update|delete\s+from)\s+\$\{\s*(\w+)\s*\}/gi,
  )) {
    const table = tables.get(ident!);
    if (table !== undefined) found.add(table);
  }
  return [...found];
}

describe('table writers', () => {
  const tables = schemaTables();

  it('every table of db/schema.ts has an owner', () => {
    expect([...tables.values()].sort()).toEqual(Object.keys(OWNERS).sort());
  });

  it('only the owning app writes a table', () => {
    const strangers: string[] = [];
    const writers = new Set<string>();
    for (const part of ['apps', 'libs']) {
      for (const name of readdirSync(join(ROOT, part))) {
        const dir = `${part}/${name}`;
        for (const file of productionSources(join(ROOT, dir))) {
          for (const table of writtenTables(readFileSync(file, 'utf8'), tables)) {
            writers.add(table);
            if (OWNERS[table] !== dir) strangers.push(`${relative(ROOT, file)} writes ${table}`);
          }
        }
      }
    }
    expect(strangers).toEqual([]);
    // The scan finds the owners' own writes, so it is looking at the right code.
    expect([...writers].sort()).toEqual(Object.keys(OWNERS).sort());
  });

  it('recognises Drizzle calls and SQL in any case, and nothing else', () => {
    const code = [
      'await db.insert(users).values(row);',
      'await tx.update(rooms).set({});',
      'sql`DELETE FROM deliveries WHERE id = ${id}`;',
      'sql`insert into ${messages} (a) select * from unnest(${ids})`;',
      'const q = \'insert into "transcript_chunks" (a) values ($1)\';',
      'cache.delete(key); hash.update(users2);',
      '// we update nothing here; the users table belongs to auth',
    ].join('\n');
    const all = new Map([
      ['users', 'users'],
      ['rooms', 'rooms'],
      ['deliveries', 'deliveries'],
      ['chunks', 'transcript_chunks'],
      ['messages', 'messages'],
    ]);
    expect(writtenTables(code, all).sort()).toEqual([
      'deliveries',
      'messages',
      'rooms',
      'transcript_chunks',
      'users',
    ]);
  });
});
