/**
 * The rooms a user joined, remembered per server and user. securechat/1 has no request that
 * lists one's rooms (rooms are listed nowhere, docs/PROTOCOL.md §7.1), so a client that wants
 * to show them at start has to remember its own `join`s and `leave`s.
 *
 * A server is named by the fingerprint of its identity key, as `known_servers` pins it: the
 * same server under another address keeps its rooms, and another server at a reused address
 * does not inherit them. The file is a convenience, not a trust decision: one that cannot be
 * read is reported, never a reason to stop. Only a file that was read and is not a joined-rooms
 * file is replaced at the next change; one that could not be read at all (EACCES, EIO, …) is
 * left alone and the change fails, since a rewrite would lose every other identity's rooms.
 */
import { ROOM_PATTERN, USERNAME_PATTERN } from '@securechat/protocol';

import { SerialQueue, readTextIfExists, writeFileAtomic } from './atomic-file';
import { isFingerprint } from './known-servers';

/** Rooms remembered per server and user: more than a screen's list can usefully show. */
export const MAX_JOINED_ROOMS = 100;
/** Server-and-user pairs remembered: the least recently changed is forgotten first. */
export const MAX_JOINED_IDENTITIES = 64;
/** A larger file is not ours (the bounds above keep ours far below): read as corrupt. */
export const MAX_JOINED_ROOMS_FILE_BYTES = 1024 * 1024;

export interface JoinedRoomsEntry {
  /** The server's identity key fingerprint (`sha256:…`). */
  readonly server: string;
  readonly user: string;
  /** In join order, the most recent last. */
  readonly rooms: readonly string[];
}

/** Where joined rooms are remembered. */
export interface JoinedRoomsStore {
  /** The rooms `user` joined on `server`, in join order. */
  list(server: string, user: string): Promise<readonly string[]>;
  /** Remembers a join (again: moves the room to the end). */
  add(server: string, user: string, room: string): Promise<void>;
  /** Forgets a room after a leave (or when the server says we are no member). */
  remove(server: string, user: string, room: string): Promise<void>;
}

export interface ParsedJoinedRooms {
  readonly entries: readonly JoinedRoomsEntry[];
  /** Why the text was not read, when it was not: the caller warns and starts empty. */
  readonly problem?: string;
}

function validIdentity(server: string, user: string): boolean {
  return isFingerprint(server) && USERNAME_PATTERN.test(user);
}

function assertArguments(server: string, user: string, room?: string): void {
  if (!isFingerprint(server)) throw new TypeError('server must be a sha256: fingerprint');
  if (!USERNAME_PATTERN.test(user)) throw new TypeError('user must be a username');
  if (room !== undefined && !ROOM_PATTERN.test(room)) throw new TypeError('room must be a #room');
}

/**
 * Reads the file's text. Never throws: text that is not a joined-rooms file yields no entries
 * and a `problem`; single entries or rooms that break a rule are dropped, and the bounds are
 * applied, so that whatever the file held, what comes out is what `serialize` could write.
 */
export function parseJoinedRooms(text: string): ParsedJoinedRooms {
  if (text.trim() === '') return { entries: [] };
  if (Buffer.byteLength(text) > MAX_JOINED_ROOMS_FILE_BYTES)
    return { entries: [], problem: 'too large' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { entries: [], problem: 'not JSON' };
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    (parsed as { version?: unknown }).version !== 1 ||
    !Array.isArray((parsed as { identities?: unknown }).identities)
  ) {
    return { entries: [], problem: 'not a version 1 joined-rooms file' };
  }
  // Keyed by identity: one listed twice keeps its last place, as a second change would leave it.
  const entries = new Map<string, JoinedRoomsEntry>();
  for (const item of (parsed as { identities: unknown[] }).identities) {
    if (item === null || typeof item !== 'object') continue;
    const { server, user, rooms } = item as Record<string, unknown>;
    if (typeof server !== 'string' || typeof user !== 'string' || !Array.isArray(rooms)) continue;
    if (!validIdentity(server, user)) continue;
    // From the end: a room listed twice keeps its latest place, as a second add leaves it.
    const kept: string[] = [];
    const seen = new Set<string>();
    for (let i = rooms.length - 1; i >= 0 && kept.length < MAX_JOINED_ROOMS; i -= 1) {
      const room: unknown = rooms[i];
      if (typeof room !== 'string' || !ROOM_PATTERN.test(room) || seen.has(room)) continue;
      seen.add(room);
      kept.push(room);
    }
    kept.reverse();
    const key = `${server} ${user}`;
    entries.delete(key);
    if (kept.length > 0) entries.set(key, { server, user, rooms: kept });
  }
  return { entries: [...entries.values()].slice(-MAX_JOINED_IDENTITIES) };
}

export function serializeJoinedRooms(entries: readonly JoinedRoomsEntry[]): string {
  return `${JSON.stringify({ version: 1, identities: entries }, null, 2)}\n`;
}

/** `entries` with `room` added (or moved) to the end of its identity, which moves to the end. */
export function withJoinedRoom(
  entries: readonly JoinedRoomsEntry[],
  server: string,
  user: string,
  room: string,
): JoinedRoomsEntry[] {
  const current = entries.find((e) => e.server === server && e.user === user);
  const rooms = [...(current?.rooms ?? []).filter((r) => r !== room), room].slice(
    -MAX_JOINED_ROOMS,
  );
  const others = entries.filter((e) => e !== current);
  return [...others, { server, user, rooms }].slice(-MAX_JOINED_IDENTITIES);
}

/** `entries` without `room`; an identity left with no rooms is dropped. */
export function withoutJoinedRoom(
  entries: readonly JoinedRoomsEntry[],
  server: string,
  user: string,
  room: string,
): JoinedRoomsEntry[] {
  return entries.flatMap((e) => {
    if (e.server !== server || e.user !== user) return [e];
    const rooms = e.rooms.filter((r) => r !== room);
    return rooms.length === 0 ? [] : [{ ...e, rooms }];
  });
}

/** For tests and for callers that keep nothing on disk. */
export class MemoryJoinedRoomsStore implements JoinedRoomsStore {
  #entries: JoinedRoomsEntry[] = [];

  list(server: string, user: string): Promise<readonly string[]> {
    const entry = this.#entries.find((e) => e.server === server && e.user === user);
    return Promise.resolve(entry?.rooms ?? []);
  }

  add(server: string, user: string, room: string): Promise<void> {
    return Promise.resolve().then(() => {
      assertArguments(server, user, room);
      this.#entries = withJoinedRoom(this.#entries, server, user, room);
    });
  }

  remove(server: string, user: string, room: string): Promise<void> {
    this.#entries = withoutJoinedRoom(this.#entries, server, user, room);
    return Promise.resolve();
  }
}

export interface FileJoinedRoomsStoreOptions {
  /**
   * Told once when the file cannot be read as a joined-rooms file (it is then listed as empty;
   * a corrupt one is replaced at the next change, an unreadable one is not). Without it, the
   * warning goes to process.emitWarning.
   */
  readonly onWarning?: (message: string) => void;
  /** Reads the file's text, undefined when there is none (for tests: readTextIfExists). */
  readonly readText?: (path: string) => Promise<string | undefined>;
}

/** What was read: the entries, and whether a change may rewrite the file from them. */
interface JoinedRoomsRead {
  readonly entries: JoinedRoomsEntry[];
  /** Why the file could not be read at all, when it could not: it must not be replaced. */
  readonly unreadable?: Error;
}

/**
 * `{"version":1,"identities":[{"server":"sha256:…","user":"alice","rooms":["#ops"]}]}`,
 * rewritten atomically with mode 0600 on every change.
 */
export class FileJoinedRoomsStore implements JoinedRoomsStore {
  readonly #queue = new SerialQueue();
  readonly #onWarning: (message: string) => void;
  readonly #readText: (path: string) => Promise<string | undefined>;
  #warned = false;

  constructor(
    readonly path: string,
    options: FileJoinedRoomsStoreOptions = {},
  ) {
    this.#onWarning =
      options.onWarning ?? ((message) => process.emitWarning(message, 'SecureChatWarning'));
    this.#readText = options.readText ?? readTextIfExists;
  }

  async list(server: string, user: string): Promise<readonly string[]> {
    const { entries } = await this.#read();
    return entries.find((e) => e.server === server && e.user === user)?.rooms ?? [];
  }

  async add(server: string, user: string, room: string): Promise<void> {
    assertArguments(server, user, room);
    await this.#queue.run(async () => {
      const entries = await this.#readForChange();
      const current = entries.find((e) => e.server === server && e.user === user);
      // Already the most recent join: nothing to write.
      if (current !== undefined && current.rooms.at(-1) === room && entries.at(-1) === current) {
        return;
      }
      await this.#write(withJoinedRoom(entries, server, user, room));
    });
  }

  remove(server: string, user: string, room: string): Promise<void> {
    return this.#queue.run(async () => {
      const entries = await this.#readForChange();
      const next = withoutJoinedRoom(entries, server, user, room);
      const changed = next.length !== entries.length || next.some((e, i) => e !== entries[i]);
      if (changed) await this.#write(next);
    });
  }

  /**
   * The entries a change starts from. A file that could not be read (EACCES, EIO, EMFILE, a
   * directory in its place) may hold every other server's and user's rooms: the change fails
   * (whoever called reports it) rather than replace the file with this one room. A file that
   * was read but is corrupt is replaced, as its warning said.
   */
  async #readForChange(): Promise<JoinedRoomsEntry[]> {
    const { entries, unreadable } = await this.#read();
    if (unreadable !== undefined) throw unreadable;
    return entries;
  }

  async #read(): Promise<JoinedRoomsRead> {
    let text: string | undefined;
    try {
      text = await this.#readText(this.path);
    } catch (error) {
      // The rooms are a convenience, not a reason to stop the chat: listed as none.
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      this.#warn(
        `cannot read ${this.path} (${code}): no joined rooms remembered, and joins and leaves ` +
          'are not saved until it can be read',
      );
      return {
        entries: [],
        unreadable: new Error(`cannot read ${this.path} (${code}); it was left as it is`, {
          cause: error,
        }),
      };
    }
    if (text === undefined) return { entries: [] };
    const parsed = parseJoinedRooms(text);
    // The problem names the kind of damage, never the file's content.
    if (parsed.problem !== undefined) {
      this.#warn(
        `${this.path} is ${parsed.problem}: no joined rooms remembered; the file is rewritten ` +
          'at the next join or leave',
      );
    }
    return { entries: [...parsed.entries] };
  }

  #warn(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#onWarning(message);
  }

  #write(entries: readonly JoinedRoomsEntry[]): Promise<void> {
    return writeFileAtomic(this.path, serializeJoinedRooms(entries));
  }
}
