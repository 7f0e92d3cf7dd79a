/**
 * `securechat admin …` as an operator runs it, against the embedded server's admin API: the
 * README's one-line account creation, listing, disabling (the user's login refused), live
 * sessions, and a transcript exported by the CLI and verified by the CLI.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runCli, spawnCli } from '../support/cli-process';
import { type RunningServer, removeDataDir, startEmbeddedServer } from '../support/embedded-server';

jest.setTimeout(120_000);

let server: RunningServer;
let home: string;
let admin: Record<string, string>;
let alice: Record<string, string>;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'securechat-cli-admin-'));
  server = await startEmbeddedServer({ SECURECHAT_INSECURE_FAST_HASH: 'true' });
  // The generated token file, as an operator next to `npm start` would use it.
  admin = {
    SECURECHAT_ADMIN_URL: `http://127.0.0.1:${server.adminPort}`,
    SECURECHAT_DATA_DIR: server.dataDir,
  };
  alice = {
    SECURECHAT_CONFIG_DIR: join(home, 'alice'),
    SECURECHAT_DATA_HOME: join(home, 'alice-data'),
    SECURECHAT_SERVER: `127.0.0.1:${server.port}`,
    SECURECHAT_USER: 'alice',
    SECURECHAT_PASSWORD: 'alice-password-1',
    SECURECHAT_KEY_PASSPHRASE: 'alice passphrase',
  };
  expect((await runCli(['keygen', '--type', 'ed25519'], alice)).code).toBe(0);
});

afterAll(async () => {
  await server.stop();
  removeDataDir(server);
  rmSync(home, { recursive: true, force: true });
});

describe('securechat admin (processes against the embedded server)', () => {
  it('refuses without a usable token (exit 4) and explains a missing one (exit 2)', async () => {
    const wrong = await runCli(['admin', 'user', 'list'], {
      ...admin,
      ADMIN_TOKEN: 'x'.repeat(40),
    });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('admin token');
    const none = await runCli(['admin', 'user', 'list'], {
      ...admin,
      SECURECHAT_DATA_DIR: join(home, 'nowhere'),
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('ADMIN_TOKEN');
  });

  it('creates a user in one line; the user can log in and chat', async () => {
    const added = await runCli(
      [
        'admin',
        'user',
        'add',
        'alice',
        '--password-stdin',
        '--public-key',
        join(alice.SECURECHAT_CONFIG_DIR!, 'id_securechat.pub'),
      ],
      admin,
      'alice-password-1\n',
    );
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^created alice, key fingerprint sha256:[0-9a-f]{64}$/m);

    const again = await runCli(
      [
        'admin',
        'user',
        'add',
        'alice',
        '--password-stdin',
        '--public-key',
        join(alice.SECURECHAT_CONFIG_DIR!, 'id_securechat.pub'),
      ],
      admin,
      'alice-password-1\n',
    );
    expect(again.code).toBe(7);

    const bad = await runCli(
      ['admin', 'user', 'add', 'bob', '--password-stdin', '--public-key', join(home, 'not-a-key')],
      admin,
      'x\n',
    );
    expect(bad.code).toBe(2);

    const sent = await runCli(
      ['send', '--trust-on-first-use', '--to', 'alice', 'note to self'],
      alice,
    );
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
  });

  it('lists users and shows one, as text and as JSON', async () => {
    const list = await runCli(['admin', 'user', 'list', '--query', 'ali'], admin);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^alice\s+active\s+sha256:/m);
    const json = await runCli(['admin', 'user', 'show', 'alice', '--json'], admin);
    expect(JSON.parse(json.stdout)).toEqual(
      expect.objectContaining({ username: 'alice', disabled: false, deleted: false }),
    );
  });

  it('shows live sessions; disabling closes them and refuses the next login', async () => {
    const listener = spawnCli(['listen', '--timeout', '60'], alice);
    await listener.waitFor(/^listening as alice/, 'stderr');
    const sessions = await runCli(['admin', 'session', 'list', '--user', 'alice'], admin);
    expect(sessions.code).toBe(0);
    expect(sessions.stdout).toMatch(/alice\s+\S+\s+127\.0\.0\.1/);

    const disabled = await runCli(['admin', 'user', 'disable', 'alice'], admin);
    expect(disabled.code).toBe(0);
    expect(disabled.stdout).toContain('1 live session(s) closed');
    // The listener is told `shutting_down`, tries to log in again and is refused: exit 4.
    const ended = await listener.done();
    expect(ended.code).toBe(4);

    const refused = await runCli(['send', '--to', 'alice', 'x'], alice);
    expect(refused.code).toBe(4);
    expect((await runCli(['admin', 'user', 'enable', 'alice'], admin)).code).toBe(0);
    expect((await runCli(['send', '--to', 'alice', 'back'], alice)).code).toBe(0);
  });

  it('exports a transcript that the CLI verifies, and records every action in the audit log', async () => {
    const list = await runCli(['admin', 'transcript', 'list', 'alice', '--json'], admin);
    expect(list.code).toBe(0);
    const { sessions } = JSON.parse(list.stdout) as {
      sessions: { session_id: string; status: string }[];
    };
    const agreed = sessions.find((s) => s.status === 'agreed');
    expect(agreed).toBeDefined();
    const file = join(home, 'export.jsonl');
    const exported = await runCli(
      ['admin', 'transcript', 'export', agreed!.session_id, '--out', file],
      admin,
    );
    expect(exported.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('"kind":"header"');
    const verified = await runCli(
      [
        'verify-transcript',
        file,
        '--user-key',
        join(alice.SECURECHAT_CONFIG_DIR!, 'id_securechat.pub'),
      ],
      {},
    );
    expect(verified.stdout).toContain('transcript verified');
    expect(verified.code).toBe(0);

    const audit = await runCli(['admin', 'audit', '--json'], admin);
    const actions = (JSON.parse(audit.stdout) as { entries: { action: string }[] }).entries.map(
      (e) => e.action,
    );
    expect(actions).toEqual(
      expect.arrayContaining([expect.stringMatching(/create/), expect.stringMatching(/disable/)]),
    );
    expect(audit.stdout).not.toContain('alice-password-1');
  });
});
