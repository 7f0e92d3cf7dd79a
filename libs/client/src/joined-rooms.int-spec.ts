// The file store on the real filesystem (a temporary directory); the rules are unit-tested in
// joined-rooms.spec.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FileJoinedRoomsStore, parseJoinedRooms } from './joined-rooms';

const S1 = `sha256:${'1'.repeat(64)}`;
const S2 = `sha256:${'2'.repeat(64)}`;

describe('FileJoinedRoomsStore', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'joined-rooms-'));
    path = join(dir, 'data', 'joined_rooms.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('remembers joins per server and user across instances, in a 0600 file', async () => {
    const warnings: string[] = [];
    const store = new FileJoinedRoomsStore(path, { onWarning: (w) => warnings.push(w) });
    expect(await store.list(S1, 'alice')).toEqual([]);
    await store.add(S1, 'alice', '#ops');
    await store.add(S1, 'alice', '#dev');
    await store.add(S2, 'alice', '#other');
    await store.remove(S1, 'alice', '#ops');

    const again = new FileJoinedRoomsStore(path);
    expect(await again.list(S1, 'alice')).toEqual(['#dev']);
    expect(await again.list(S2, 'alice')).toEqual(['#other']);
    expect(await again.list(S1, 'bob')).toEqual([]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(parseJoinedRooms(readFileSync(path, 'utf8')).problem).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('serializes concurrent changes of one process', async () => {
    const store = new FileJoinedRoomsStore(path);
    const rooms = Array.from({ length: 20 }, (_, i) => `#r${i}`);
    await Promise.all(rooms.map((room) => store.add(S1, 'alice', room)));
    expect(await store.list(S1, 'alice')).toEqual(rooms);
  });

  it('warns once about a corrupt file, starts empty and replaces it at the next change', async () => {
    mkdirSync(join(dir, 'data'));
    writeFileSync(path, '{"version":1,"identities":[{"server":"sha256:');
    const warnings: string[] = [];
    const store = new FileJoinedRoomsStore(path, { onWarning: (w) => warnings.push(w) });
    expect(await store.list(S1, 'alice')).toEqual([]);
    expect(await store.list(S1, 'alice')).toEqual([]);
    expect(warnings).toEqual([
      `${path} is not JSON: no joined rooms remembered; the file is rewritten at the next join or leave`,
    ]);
    await store.add(S1, 'alice', '#ops');
    expect(await new FileJoinedRoomsStore(path).list(S1, 'alice')).toEqual(['#ops']);
  });

  it('warns about a file it cannot read, and never throws from list', async () => {
    // A directory where the file should be: reading fails with EISDIR (also as root).
    mkdirSync(path, { recursive: true });
    const warnings: string[] = [];
    const store = new FileJoinedRoomsStore(path, { onWarning: (w) => warnings.push(w) });
    expect(await store.list(S1, 'alice')).toEqual([]);
    expect(warnings).toEqual([
      `cannot read ${path} (EISDIR): no joined rooms remembered, and joins and leaves are not saved until it can be read`,
    ]);
    // A change is not made either: that is the caller's to show.
    await expect(store.add(S1, 'alice', '#ops')).rejects.toThrow(`cannot read ${path} (EISDIR)`);
  });

  it('never replaces a file it could not read (EIO, EACCES…), losing the rooms it holds', async () => {
    const others = new FileJoinedRoomsStore(path);
    await others.add(S2, 'bob', '#dev');
    await others.add(S1, 'alice', '#ops');
    const before = readFileSync(path, 'utf8');
    let failing = true;
    const readText = (at: string): Promise<string | undefined> =>
      failing
        ? Promise.reject(Object.assign(new Error('i/o error'), { code: 'EIO' }))
        : readFile(at, 'utf8');
    const warnings: string[] = [];
    const store = new FileJoinedRoomsStore(path, { readText, onWarning: (w) => warnings.push(w) });
    expect(await store.list(S1, 'alice')).toEqual([]);
    await expect(store.add(S1, 'alice', '#new')).rejects.toThrow(`cannot read ${path} (EIO)`);
    await expect(store.remove(S1, 'alice', '#ops')).rejects.toThrow('(EIO)');
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(warnings).toHaveLength(1);
    // Once it can be read again, a change keeps everyone's rooms.
    failing = false;
    await store.add(S1, 'alice', '#new');
    expect(await others.list(S2, 'bob')).toEqual(['#dev']);
    expect(await others.list(S1, 'alice')).toEqual(['#ops', '#new']);
  });
});
