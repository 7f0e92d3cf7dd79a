/**
 * `securechat admin` prints what the admin API answers: the server's text. A stand-in for
 * fetch answers with names and messages that try to disguise themselves (bidi overrides,
 * zero-width and tag characters, look-alike letters, newlines); nothing of it may reach the
 * terminal raw.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { runCli } from '../cli';
import { adminBaseUrl } from './admin.command';
import { type CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';

/** Characters a terminal would not show as themselves. */
const INVISIBLE = /[\u200B-\u200F\u202A-\u202E\u2066-\u2069\u009b]|[\u{E0000}-\u{E007F}]/u;
/** …and a look-alike letter, which names (not JSON data) also show escaped. */
const DISGUISE = new RegExp(`${INVISIBLE.source}|\u0430`, 'u');

const TOKEN = 't'.repeat(40);

interface FakeIo extends CliIo {
  out(): string;
  err(): string;
}

function fakeIo(stdoutIsTty = false): FakeIo {
  const stdout = Object.assign(new PassThrough(), { isTTY: stdoutIsTty });
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  return {
    env: { ADMIN_TOKEN: TOKEN },
    stdin: new PassThrough(),
    stdout,
    stderr,
    interrupted: new Promise<void>(() => undefined),
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

let fetchSpy: jest.SpiedFunction<typeof fetch>;

function answer(status: number, body: unknown, type = 'application/json'): void {
  fetchSpy.mockResolvedValue(
    new Response(typeof body === 'string' ? body : JSON.stringify(body), {
      status,
      headers: { 'content-type': type },
    }),
  );
}

async function run(argv: string[], io: FakeIo): Promise<number> {
  const code = await runCli(['admin', ...argv], io);
  await new Promise((resolve) => setImmediate(resolve));
  return code;
}

beforeEach(() => {
  fetchSpy = jest.spyOn(globalThis, 'fetch');
});
afterEach(() => fetchSpy.mockRestore());

const disguised = {
  username: '\u0430lice\u200B',
  fingerprint: `sha256:${'a'.repeat(8)}\u202E`,
  disabled: false,
  deleted: false,
  deleted_at: null,
  created_at: '2026-01-01T00:00:00Z\u2066',
};

describe('securechat admin', () => {
  it('prints names from the API with their hidden characters visible', async () => {
    answer(200, { users: [disguised], next_cursor: null });
    const io = fakeIo();
    expect(await run(['user', 'list'], io)).toBe(EXIT.ok);
    expect(io.out()).not.toMatch(DISGUISE);
    expect(io.out()).toContain('<U+0430>lice<U+200B>');
    expect(io.out()).toContain(`sha256:${'a'.repeat(8)}<U+202E>`);
  });

  it('prints --json as the same values, with invisible characters as \\u escapes', async () => {
    answer(200, { users: [disguised], next_cursor: null });
    const io = fakeIo();
    expect(await run(['user', 'list', '--json'], io)).toBe(EXIT.ok);
    expect(io.out()).not.toMatch(INVISIBLE);
    expect(JSON.parse(io.out())).toEqual({ users: [disguised] });
  });

  it('prints audit entries and their details without raw controls', async () => {
    answer(200, {
      entries: [
        {
          id: '1',
          at: '2026-01-01T00:00:00Z',
          actor: 'token:abc\u202E',
          action: 'user.disable',
          target: 'b\u200Dob',
          details: { note: 'x\u009b2J\u{E0041}' },
          source_address: null,
        },
      ],
      next_cursor: null,
    });
    const io = fakeIo();
    expect(await run(['audit'], io)).toBe(EXIT.ok);
    expect(io.out()).not.toMatch(DISGUISE);
    expect(io.out()).toContain('b<U+200D>ob');
    expect(io.out()).toContain('{"note":"x\\u009b2J\\udb40\\udc41"}');
  });

  it("shows a refusal's message and field errors as one sanitized line each", async () => {
    answer(400, {
      code: 'bad_request',
      message: 'the request is invalid\u202E\nsecurechat admin: all good',
      errors: [{ field: 'user\u2067name', message: 'taken\u200B' }],
    });
    const io = fakeIo();
    expect(await run(['user', 'show', 'alice'], io)).toBe(EXIT.usage);
    expect(io.err()).not.toMatch(DISGUISE);
    expect(io.err().split('\n')).toEqual([
      'securechat admin: the request is invalid<U+202E> securechat admin: all good',
      '  - user<U+2067>name: taken<U+200B>',
      '',
    ]);
  });

  it('says how many live sessions a password reset closed, or why none could be', async () => {
    answer(200, { username: 'alice', password_reset: true, sessions_closed: 2 });
    const io = fakeIo();
    (io.stdin as PassThrough).end('a brand new password\n');
    expect(await run(['user', 'password', 'alice', '--password-stdin'], io)).toBe(EXIT.ok);
    expect(io.out()).toBe('password of alice replaced; 2 live session(s) closed\n');
    const [url, init] = fetchSpy.mock.calls[0]!;
    expect([init?.method, url]).toEqual([
      'POST',
      'http://127.0.0.1:8080/admin/users/alice/password',
    ]);

    answer(200, {
      username: 'alice',
      password_reset: true,
      sessions_closed: null,
      sessions_close_error:
        'session control unavailable; close them with DELETE /admin/users/alice/sessions',
    });
    const down = fakeIo();
    (down.stdin as PassThrough).end('a brand new password\n');
    expect(await run(['user', 'password', 'alice', '--password-stdin'], down)).toBe(EXIT.ok);
    expect(down.out()).toContain('live sessions could not be closed: session control unavailable');
  });

  it('says how many live sessions a key change closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'securechat-admin-spec-'));
    const keyFile = join(dir, 'alice.pub');
    writeFileSync(keyFile, 'MCowBQYDK2VwAyEA' + 'A'.repeat(43) + '=\n');
    try {
      answer(200, { ...disguised, username: 'alice', sessions_closed: 1 });
      const io = fakeIo();
      expect(await run(['user', 'set-key', 'alice', '--public-key', keyFile], io)).toBe(EXIT.ok);
      expect(io.out()).toMatch(
        /^key of alice replaced: .*\(from the next login on\); 1 live session\(s\) closed\n$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exports a transcript byte for byte to a pipe, sanitized to a terminal', async () => {
    const lines = '{"kind":"header","username":"eve\u202E"}\n{"kind":"record"}\n';
    answer(200, lines, 'application/x-ndjson');
    const piped = fakeIo(false);
    expect(await run(['transcript', 'export', 's-1'], piped)).toBe(EXIT.ok);
    expect(piped.out()).toBe(lines);

    answer(200, lines, 'application/x-ndjson');
    const terminal = fakeIo(true);
    expect(await run(['transcript', 'export', 's-1'], terminal)).toBe(EXIT.ok);
    expect(terminal.out()).toBe('{"kind":"header","username":"eve<U+202E>"}\n{"kind":"record"}\n');
  });
});

describe('securechat admin transcript purge', () => {
  const purged = (id: string, receipt: boolean) => ({
    session_id: id,
    username: 'alice',
    mode: 'full',
    status: receipt ? 'agreed' : 'incomplete',
    started_at: '2025-01-01T00:00:00.000Z',
    ended_at: '2025-01-01T01:00:00.000Z',
    receipt,
    countersigned: receipt,
    chunks: 2,
    bytes: 100,
  });
  const totals = (sessions: ReturnType<typeof purged>[]) => ({
    sessions: sessions.length,
    chunks: 2 * sessions.length,
    bytes: 100 * sessions.length,
    with_receipt: sessions.filter((s) => s.receipt).length,
    without_receipt: sessions.filter((s) => !s.receipt).length,
  });
  const page = (
    sessions: ReturnType<typeof purged>[],
    more: boolean,
    options: { dryRun?: boolean; next?: string } = {},
  ) => ({
    before: '2026-01-01T00:00:00.000Z',
    dry_run: options.dryRun === true,
    sessions,
    totals: totals(sessions),
    more,
    next_cursor: options.next ?? null,
  });

  /** One fresh response per call, in order. */
  function answers(...bodies: unknown[]): void {
    for (const body of bodies) {
      fetchSpy.mockResolvedValueOnce(
        new Response(JSON.stringify(body), {
          status: 200,
          headers: { 'content-type': 'application/json' },
        }),
      );
    }
  }

  const bodies = () =>
    fetchSpy.mock.calls.map(([url, init]) => {
      expect(url).toBe('http://127.0.0.1:8080/admin/transcripts/purge');
      expect(init?.method).toBe('POST');
      return JSON.parse(init?.body as string) as Record<string, unknown>;
    });

  it('lists in a dry run what would go, and says that nothing was deleted', async () => {
    answers(page([purged('s-1', true), purged('s-2', false)], false, { dryRun: true }));
    const io = fakeIo();
    expect(await run(['transcript', 'purge', '--before', '2026-01-01', '--dry-run'], io)).toBe(
      EXIT.ok,
    );
    expect(bodies()).toEqual([{ before: '2026-01-01T00:00:00Z', dry_run: true }]);
    const out = io.out();
    expect(out).toMatch(/^s-1 .* receipt and countersignature kept$/m);
    expect(out).toMatch(/^s-2 .* no receipt: nothing signed remains$/m);
    expect(out).toContain('dry run: would delete the records of 2 session(s)');
    expect(out).toContain('1 keep their receipt, which still verifies against the stored');
    expect(out).toContain('1 had no receipt');
    expect(out).toContain('nothing was deleted');
  });

  it('pages a dry run with --all, and stops after one page without it', async () => {
    answers(
      page([purged('s-1', true)], true, { dryRun: true, next: '1.s-1' }),
      page([purged('s-2', true)], false, { dryRun: true }),
    );
    const io = fakeIo();
    const args = ['transcript', 'purge', '--before', '2026-01-01T00:00:00Z', '--dry-run'];
    expect(await run([...args, '--all', '--limit', '1'], io)).toBe(EXIT.ok);
    expect(bodies()).toEqual([
      { before: '2026-01-01T00:00:00Z', dry_run: true, limit: 1 },
      { before: '2026-01-01T00:00:00Z', dry_run: true, limit: 1, cursor: '1.s-1' },
    ]);
    expect(io.out()).toContain('would delete the records of 2 session(s)');

    fetchSpy.mockReset();
    answers(page([purged('s-1', true)], true, { dryRun: true, next: '1.s-1' }));
    const one = fakeIo();
    expect(await run(args, one)).toBe(EXIT.ok);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(one.err()).toContain('(more: --all for every page)');
  });

  it('purges to the end, step by step, and sums up what went', async () => {
    answers(
      page([purged('s-1', true), purged('s-2', false)], true),
      page([purged('s-3', true)], false),
    );
    const io = fakeIo();
    // The plural reads as well.
    expect(await run(['transcripts', 'purge', '--before', '2026-01-01T00:00:00Z'], io)).toBe(
      EXIT.ok,
    );
    expect(bodies()).toEqual([
      { before: '2026-01-01T00:00:00Z', dry_run: false, limit: 1000 },
      { before: '2026-01-01T00:00:00Z', dry_run: false, limit: 1000 },
    ]);
    const out = io.out();
    expect(out).toContain('deleted the records of 3 session(s) that ended before');
    expect(out).toContain('6 chunks, 300 bytes');
    expect(out).toContain('2 keep their receipt');
    expect(out).toContain('1 had no receipt');
    expect(out).toContain('can no longer be exported (transcript_purged)');
  });

  it('stops when a step takes nothing although more is due (another purge holds them)', async () => {
    answers(page([], true));
    const io = fakeIo();
    expect(await run(['transcript', 'purge', '--before', '2026-01-01', '--json'], io)).toBe(
      EXIT.ok,
    );
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(JSON.parse(io.out())).toMatchObject({ dry_run: false, totals: { sessions: 0 } });
  });

  it('takes --older-than DAYS as a cutoff that many days ago', async () => {
    answers(page([], false));
    const from = Date.now();
    expect(await run(['transcript', 'purge', '--older-than', '30'], fakeIo())).toBe(EXIT.ok);
    const to = Date.now();
    const before = Date.parse(bodies()[0]!.before as string);
    expect(before).toBeGreaterThanOrEqual(from - 30 * 86_400_000);
    expect(before).toBeLessThanOrEqual(to - 30 * 86_400_000);
  });

  it.each([
    ['no cutoff', []],
    ['two cutoffs', ['--before', '2026-01-01', '--older-than', '3']],
    ['a cutoff of zero days', ['--older-than', '0']],
    ['days that are not a number', ['--older-than', 'a year']],
  ])('refuses %s before calling the server', async (_case, args) => {
    const io = fakeIo();
    expect(await run(['transcript', 'purge', ...args], io)).toBe(EXIT.usage);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('explains in --help what a purge deletes and what it keeps', async () => {
    const io = fakeIo();
    expect(await run(['transcripts', 'purge', '--help'], io)).toBe(EXIT.ok);
    const help = io.out().replace(/\s+/g, ' ');
    expect(help).toContain('transcript purge (--before WHEN | --older-than DAYS)');
    expect(help).toContain('deletes, for good, the server');
    expect(help).toContain('its receipt still verifies');
    expect(help).toContain('can no longer rebuild or export the session');
    expect(help).toContain('keeps nothing signed at all');
    expect(help).toContain('--dry-run lists what would be purged and deletes nothing');
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('refuses the export of a purged session with the server’s reason', async () => {
    answer(410, {
      code: 'transcript_purged',
      message: "the session's records were deleted by retention at 2026-01-01T00:00:00.000Z",
    });
    const io = fakeIo();
    expect(await run(['transcript', 'export', 's-1'], io)).toBe(EXIT.requestRefused);
    expect(io.err()).toContain('deleted by retention');
    expect(io.out()).toBe('');
  });

  it('marks purged sessions in a transcript list', async () => {
    answer(200, {
      sessions: [
        {
          session_id: 's-1',
          username: 'alice',
          gateway: 'gw',
          mode: 'full',
          status: 'agreed',
          started_at: '2025-01-01T00:00:00.000Z',
          ended_at: '2025-01-01T01:00:00.000Z',
          records_purged_at: '2026-01-01T00:00:00.000Z',
        },
      ],
      next_cursor: null,
    });
    const io = fakeIo();
    expect(await run(['transcript', 'list', 'alice'], io)).toBe(EXIT.ok);
    expect(io.out()).toContain('records purged 2026-01-01T00:00:00.000Z');
  });
});

describe('the admin API address', () => {
  it('follows SECURECHAT_ADMIN_PORT (and _HOST), as the server does', async () => {
    const io = fakeIo();
    answer(200, { users: [], next_cursor: null });
    const code = await runCli(['admin', 'user', 'list'], {
      ...io,
      env: { ...io.env, SECURECHAT_ADMIN_PORT: '18080' },
    });
    expect(code).toBe(EXIT.ok);
    const [url] = fetchSpy.mock.calls[0]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:18080\/admin\/users/);
  });

  it.each([
    [{}, 'http://127.0.0.1:8080'],
    [{ SECURECHAT_ADMIN_PORT: '9000' }, 'http://127.0.0.1:9000'],
    [{ SECURECHAT_ADMIN_HOST: '0.0.0.0', SECURECHAT_ADMIN_PORT: '9000' }, 'http://127.0.0.1:9000'],
    [{ SECURECHAT_ADMIN_HOST: '::' }, 'http://[::1]:8080'],
    [{ SECURECHAT_ADMIN_HOST: 'fd00::1' }, 'http://[fd00::1]:8080'],
    [{ SECURECHAT_ADMIN_HOST: 'admin.internal' }, 'http://admin.internal:8080'],
    [
      { SECURECHAT_ADMIN_URL: 'https://a.example', SECURECHAT_ADMIN_PORT: '9000' },
      'https://a.example',
    ],
  ])('%j → %s', (env, url) => {
    expect(adminBaseUrl(undefined, env)).toBe(url);
  });

  it('prefers --url, and refuses a port that is not one', () => {
    expect(adminBaseUrl('http://h:1', { SECURECHAT_ADMIN_PORT: '9000' })).toBe('http://h:1');
    expect(() => adminBaseUrl(undefined, { SECURECHAT_ADMIN_PORT: '80x' })).toThrow(
      'SECURECHAT_ADMIN_PORT must be a port',
    );
  });
});
