/**
 * The `securechat` command as people and scripts use it, as real processes against the
 * embedded server: keygen → register → send from one user, listen as another; pinning and
 * its refusals; exit codes; verify-transcript on an untouched and on a tampered file; the chat
 * in line mode through stdin and in full-screen mode through a pseudo-terminal.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CLI_BIN, runCli, spawnCli } from '../support/cli-process';
import { type RunningServer, removeDataDir, startEmbeddedServer } from '../support/embedded-server';

jest.setTimeout(120_000);

const EXIT = { ok: 0, usage: 2, authFailed: 4, serverRefused: 5, verify: 6, refused: 7 };

let server: RunningServer;
let home: string;

interface User {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly configDir: string;
  readonly dataHome: string;
}

function user(name: string, password = `${name}-password-1`): User {
  const configDir = join(home, name, 'config');
  const dataHome = join(home, name, 'data');
  return {
    name,
    configDir,
    dataHome,
    env: {
      SECURECHAT_CONFIG_DIR: configDir,
      SECURECHAT_DATA_HOME: dataHome,
      SECURECHAT_SERVER: `127.0.0.1:${server.port}`,
      SECURECHAT_USER: name,
      SECURECHAT_PASSWORD: password,
      SECURECHAT_KEY_PASSPHRASE: `${name} passphrase`,
    },
  };
}

function transcripts(u: User): string[] {
  const root = join(u.dataHome, 'transcripts');
  return readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => join(root, f))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
}

/**
 * Listens as `u` until a message with `body` arrives, then stops the listener with SIGINT
 * (a clean close, exit 0) and returns that message's JSON line.
 */
async function listenFor(u: User, start: () => Promise<void>, body: string) {
  const listener = spawnCli(['listen', '--timeout', '90'], u.env);
  await listener.waitFor(/^listening as /, 'stderr');
  await start();
  const line = await listener.waitFor(new RegExp(`"body":"${body}"`));
  listener.child.kill('SIGINT');
  const result = await listener.done();
  expect(result.code).toBe(EXIT.ok);
  return JSON.parse(line) as Record<string, unknown>;
}

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let alice: User;
let bob: User;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'securechat-cli-'));
  server = await startEmbeddedServer({
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_INSECURE_FAST_HASH: 'true',
  });
  alice = user('alice');
  bob = user('bob');
});

afterAll(async () => {
  await server.stop();
  removeDataDir(server);
  rmSync(home, { recursive: true, force: true });
});

describe('securechat (processes against the embedded server)', () => {
  it('keygen writes an encrypted private key (0600) and the public key, and prints the fingerprint', async () => {
    const a = await runCli(['keygen', '--type', 'ed25519'], alice.env);
    expect(a.stderr).toContain('Generating an Ed25519 key');
    expect(a.code).toBe(EXIT.ok);
    const keyPath = join(alice.configDir, 'id_securechat');
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyPath, 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(readFileSync(`${keyPath}.pub`, 'utf8')).toContain('BEGIN PUBLIC KEY');
    expect(a.stdout).toMatch(/fingerprint: sha256:[0-9a-f]{64}/);

    const b = await runCli(['keygen', '--bits', '2048'], bob.env);
    expect(b.code).toBe(EXIT.ok);

    const again = await runCli(['keygen'], alice.env);
    expect(again.code).toBe(EXIT.usage);
    expect(again.stderr).toContain('exists');
  });

  it('registers both users, pinning the server on first use', async () => {
    const a = await runCli(['register', '--trust-on-first-use'], alice.env);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(EXIT.ok);
    expect(a.stdout).toContain(`registered alice on 127.0.0.1:${server.port}`);
    expect(readFileSync(join(alice.configDir, 'known_servers'), 'utf8')).toContain(
      `127.0.0.1:${server.port} ${server.fingerprint}`,
    );
    expect((await runCli(['register', '--trust-on-first-use'], bob.env)).code).toBe(EXIT.ok);

    const twice = await runCli(['register'], alice.env);
    expect(twice.code).toBe(EXIT.authFailed);
  });

  it('send from one user, listen as another: the message arrives, verified', async () => {
    const listener = spawnCli(['listen', '--count', '2', '--timeout', '60'], bob.env);
    await listener.waitFor(/^listening as bob/, 'stderr');

    const sent = await runCli(['send', '--to', 'bob', 'hello from a script'], alice.env);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(EXIT.ok);
    const msgId = sent.stdout.trim();
    expect(msgId).toMatch(/^\d+$/);
    const piped = await runCli(['send', '--to', 'bob', '--json'], alice.env, 'from stdin\n');
    expect(piped.code).toBe(EXIT.ok);
    expect(JSON.parse(piped.stdout)).toEqual(
      expect.objectContaining({ msg_id: expect.any(String) as string }),
    );

    const result = await listener.done();
    expect(result.code).toBe(EXIT.ok);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({
        msg_id: msgId,
        from: 'alice',
        to: 'bob',
        body: 'hello from a script',
        verification: 'verified',
      }),
      expect.objectContaining({ body: 'from stdin', verification: 'verified' }),
    ]);
  });

  it('listen --count N prints N messages and leaves the rest pending for the next run', async () => {
    for (const body of ['first of two', 'second of two']) {
      expect((await runCli(['send', '--to', 'bob', body], alice.env)).code).toBe(EXIT.ok);
    }
    const once = await runCli(['listen', '--count', '1', '--timeout', '30'], bob.env);
    expect(once.code).toBe(EXIT.ok);
    expect(
      once.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { body: string }).body),
    ).toEqual(['first of two']);
    const twice = await runCli(['listen', '--count', '1', '--timeout', '30'], bob.env);
    expect(
      twice.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { body: string }).body),
    ).toEqual(['second of two']);
  });

  it('exit codes: unknown recipient 7, wrong password 4, usage 2', async () => {
    expect((await runCli(['send', '--to', 'nobody', 'x'], alice.env)).code).toBe(EXIT.refused);
    const wrong = await runCli(['send', '--to', 'bob', 'x'], {
      ...alice.env,
      SECURECHAT_PASSWORD: 'not-the-password',
    });
    expect(wrong.code).toBe(EXIT.authFailed);
    expect(wrong.stderr).toContain('login refused');
    expect(wrong.stderr).not.toContain('not-the-password');
    expect((await runCli(['send', 'x'], alice.env)).code).toBe(EXIT.usage);
    expect((await runCli(['nonsense'], alice.env)).code).toBe(EXIT.usage);
  });

  it('fingerprint shows the server key; an unknown server is refused without a terminal', async () => {
    const shown = await runCli(['fingerprint', '--server', `127.0.0.1:${server.port}`], alice.env);
    expect(shown.code).toBe(EXIT.ok);
    expect(shown.stdout.trim()).toBe(`127.0.0.1:${server.port} ${server.fingerprint}`);
    expect(shown.stderr).toContain('matches the key pinned');

    const fresh = { ...alice.env, SECURECHAT_CONFIG_DIR: join(home, 'alice-fresh') };
    execFileSync('cp', ['-r', alice.configDir, fresh.SECURECHAT_CONFIG_DIR]);
    rmSync(join(fresh.SECURECHAT_CONFIG_DIR, 'known_servers'));
    const refused = await runCli(['send', '--to', 'bob', 'x'], fresh);
    expect(refused.code).toBe(EXIT.serverRefused);
    expect(refused.stderr).toContain('--fingerprint');

    const pinned = await runCli(
      ['send', '--to', 'bob', '--fingerprint', server.fingerprint, 'via fingerprint'],
      fresh,
    );
    expect(pinned.code).toBe(EXIT.ok);
  });

  it('a changed server key is refused loudly, showing both fingerprints, before login', async () => {
    const forged = `sha256:${'ab'.repeat(32)}`;
    const configDir = join(home, 'alice-forged');
    execFileSync('cp', ['-r', alice.configDir, configDir]);
    writeFileSync(join(configDir, 'known_servers'), `127.0.0.1:${server.port} ${forged}\n`);
    const result = await runCli(['send', '--to', 'bob', 'x'], {
      ...alice.env,
      SECURECHAT_CONFIG_DIR: configDir,
    });
    expect(result.code).toBe(EXIT.serverRefused);
    expect(result.stderr).toContain('HAS CHANGED');
    expect(result.stderr).toContain(forged);
    expect(result.stderr).toContain(server.fingerprint);
  });

  it('verify-transcript passes on the untouched file and fails on one changed byte', async () => {
    const file = transcripts(alice).find((f) =>
      readFileSync(f, 'utf8').includes('hello from a script'),
    ) as string;
    const ok = await runCli(
      ['verify-transcript', file, '--user-key', join(alice.configDir, 'id_securechat.pub')],
      {},
    );
    expect(ok.stdout).toContain('transcript verified');
    expect(ok.stdout).toContain('countersignature');
    expect(ok.code).toBe(EXIT.ok);

    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const index = lines.findIndex(
      (l) => l.includes('"kind":"record"') && l.includes('"dir":"c2s"'),
    );
    const record = JSON.parse(lines[index] as string) as { plaintext: string };
    const bytes = Buffer.from(record.plaintext, 'base64');
    const middle = Math.floor(bytes.length / 2);
    bytes.writeUInt8((bytes.readUInt8(middle) ^ 0x01) & 0xff, middle);
    lines[index] = (lines[index] as string).replace(record.plaintext, bytes.toString('base64'));
    const tampered = join(home, 'tampered.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    const bad = await runCli(['verify-transcript', tampered], {});
    expect(bad.code).toBe(EXIT.verify);
    expect(bad.stdout).toContain('FAIL');
    expect(bad.stdout).toContain('DOES NOT verify');

    const edited = join(home, 'edited.jsonl');
    writeFileSync(edited, text.replace('hello from a script', 'hello from a scripT'));
    const editedRun = await runCli(['verify-transcript', edited], {});
    expect(editedRun.stdout).toContain('FAIL readable text matches the signed bytes');
    expect(editedRun.code).toBe(EXIT.verify);
  });

  it('chat in line mode: a command script on stdin sends, the other side receives', async () => {
    let chat: Awaited<ReturnType<typeof runCli>> | undefined;
    const received = await listenFor(
      bob,
      async () => {
        chat = await runCli(
          ['chat', '--line-mode'],
          alice.env,
          '/msg bob hello in line mode\n/whois bob\n/join #ops\n/quit\n',
        );
      },
      'hello in line mode',
    );
    expect(received).toEqual(expect.objectContaining({ from: 'alice', verification: 'verified' }));
    expect(chat?.code).toBe(EXIT.ok);
    expect(chat?.stdout).toMatch(/\[bob\] \d\d:\d\d alice ✓: hello in line mode/);
    expect(chat?.stdout).toContain('bob: the server gives key sha256:');
    expect(chat?.stdout).toContain('joined #ops; members: alice');
    expect(chat?.stderr).toContain('receipt verified');
  });

  it('chat lists the rooms joined before, and opens a conversation with its history', async () => {
    // #ops was joined in the session above; each session below is a new process.
    const first = await runCli(['chat', '--line-mode'], alice.env, '/msg #ops hello ops\n/quit\n');
    expect(first.code).toBe(EXIT.ok);
    expect(first.stdout).toContain('* your rooms: #ops');
    expect(JSON.parse(readFileSync(join(alice.dataHome, 'joined_rooms.json'), 'utf8'))).toEqual({
      version: 1,
      identities: [{ server: server.fingerprint, user: 'alice', rooms: ['#ops'] }],
    });

    const second = await runCli(
      ['chat', '--line-mode'],
      alice.env,
      '/msg #ops\n/msg nosuchuser\n/quit\n',
    );
    expect(second.code).toBe(EXIT.ok);
    // A room's messages are not delivered to their author: this one comes from history.
    expect(second.stdout).toMatch(/\[#ops\] \d\d:\d\d alice ✓: hello ops/);
    expect(second.stdout).toMatch(/\[#ops\] \d\d:\d\d ! no such user: nosuchuser/);
    expect(second.stdout).not.toContain('[nosuchuser]');
  });

  (hasScript() ? it : it.skip)(
    'chat full screen through a pseudo-terminal (80×24): typed text is sent and shown',
    async () => {
      // util-linux `script` gives the CLI a real pty; its stdin is forwarded as keystrokes.
      const tui = spawnCli([], alice.env, {
        file: 'script',
        args: [
          '-qfec',
          `stty cols 80 rows 24; "${process.execPath}" "${CLI_BIN}" chat bob`,
          '/dev/null',
        ],
      });
      await tui.waitFor(/── bob ─/, 'stdout');
      const received = await listenFor(
        bob,
        () => {
          tui.child.stdin.write('hello from the tui');
          tui.child.stdin.write('\r');
          return Promise.resolve();
        },
        'hello from the tui',
      );
      expect(received).toEqual(
        expect.objectContaining({ from: 'alice', verification: 'verified' }),
      );
      await tui.waitFor(/alice ✓: hello from the tui/, 'stdout');
      tui.child.stdin.write('/quit\r');
      const result = await tui.done();
      expect(result.code).toBe(EXIT.ok);
      // The screen was restored (alternate screen left) and the session closed cleanly.
      expect(result.stdout).toContain('\u001b[?1049l');
      expect(result.stdout).toContain('receipt verified');
    },
  );
});
