/**
 * The `securechat` command's refusals and repairs as real processes against the embedded
 * server (issue 14): exit codes of in-session refusals, `fingerprint` aimed at something else,
 * accepting a rotated key with `trust`, a session ended by an operator, and giving up after
 * `--max-reconnects`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type CliProcess, runCli, spawnCli } from '../../../test/support/cli-process';
import {
  type RunningServer,
  removeDataDir,
  startEmbeddedServer,
} from '../../../test/support/embedded-server';

jest.setTimeout(120_000);

const EXIT = { ok: 0, usage: 2, unreachable: 3, authFailed: 4, verify: 6, refused: 7 };

let server: RunningServer;
let home: string;
let admin: Record<string, string>;

function user(name: string): Record<string, string> {
  return {
    SECURECHAT_CONFIG_DIR: join(home, name, 'config'),
    SECURECHAT_DATA_HOME: join(home, name, 'data'),
    SECURECHAT_SERVER: `127.0.0.1:${server.port}`,
    SECURECHAT_USER: name,
    SECURECHAT_PASSWORD: `${name}-password-1`,
    SECURECHAT_KEY_PASSPHRASE: `${name} passphrase`,
  };
}

async function newUser(name: string): Promise<Record<string, string>> {
  const env = user(name);
  expect((await runCli(['keygen', '--type', 'ed25519'], env)).code).toBe(EXIT.ok);
  const registered = await runCli(['register', '--trust-on-first-use'], env);
  expect(registered.stderr).toBe('');
  expect(registered.code).toBe(EXIT.ok);
  return env;
}

/** A listener, ready once it said so. */
async function listen(env: Record<string, string>, args: string[] = []): Promise<CliProcess> {
  const listener = spawnCli(['listen', '--timeout', '90', ...args], env);
  await listener.waitFor(/^listening as /, 'stderr');
  return listener;
}

function message(listener: CliProcess, body: string): Promise<Record<string, unknown>> {
  return listener
    .waitFor(new RegExp(`"body":"${body}"`))
    .then((line) => JSON.parse(line) as Record<string, unknown>);
}

let alice: Record<string, string>;
let bob: Record<string, string>;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'securechat-cli-refusals-'));
  server = await startEmbeddedServer({
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_INSECURE_FAST_HASH: 'true',
  });
  admin = {
    SECURECHAT_ADMIN_URL: `http://127.0.0.1:${server.adminPort}`,
    SECURECHAT_DATA_DIR: server.dataDir,
  };
  alice = await newUser('alice');
  bob = await newUser('bob');
});

afterAll(async () => {
  await server.stop();
  removeDataDir(server);
  rmSync(home, { recursive: true, force: true });
});

describe('securechat refusals and repairs (processes against the embedded server)', () => {
  it('a request refused in the session exits 7, named once', async () => {
    const sent = await runCli(['send', '--to', '#nosuchroom', 'hello?'], alice);
    expect(sent.code).toBe(EXIT.refused);
    expect(sent.stderr).toMatch(/^securechat send: refused by the server: /);
    expect(sent.stderr).not.toContain('send: send:');
    expect(sent.stderr).not.toContain('login refused');
  });

  it('fingerprint takes the server from SECURECHAT_SERVER', async () => {
    const shown = await runCli(['fingerprint'], alice);
    expect(shown.code).toBe(EXIT.ok);
    expect(shown.stdout).toBe(`127.0.0.1:${server.port} ${server.fingerprint}\n`);
  });

  it('fingerprint aimed at an HTTP server says it is not a securechat/1 server, exit 3', async () => {
    const http = createServer((_request, response) => response.end('hello'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = http.address() as AddressInfo;
      const probed = await runCli(['fingerprint', '--server', `127.0.0.1:${port}`], {});
      expect(probed.code).toBe(EXIT.unreachable);
      expect(probed.stderr).toContain(`127.0.0.1:${port} is not a securechat/1 server`);
      expect(probed.stderr).not.toContain('frame length');
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('trust accepts a rotated key: checked against --fingerprint, both shown, per server', async () => {
    const listener = await listen(alice);
    expect((await runCli(['send', '--to', 'alice', 'first'], bob)).code).toBe(EXIT.ok);
    const first = await message(listener, 'first');
    expect(first.verification).toBe('verified');
    const oldKey = first.sender_fingerprint as string;

    // The operator replaces bob's key (he lost the old one).
    const newKeyPath = join(home, 'bob', 'new.key');
    const made = await runCli(['keygen', '--type', 'ed25519', '--out', newKeyPath], bob);
    const newKey = /fingerprint: (sha256:[0-9a-f]{64})/.exec(made.stdout)?.[1] ?? '';
    const setKey = await runCli(
      ['admin', 'user', 'set-key', 'bob', '--public-key', `${newKeyPath}.pub`],
      admin,
    );
    expect(setKey.code).toBe(EXIT.ok);
    const bobNow = { ...bob, SECURECHAT_KEY: newKeyPath };
    expect((await runCli(['send', '--to', 'alice', 'second'], bobNow)).code).toBe(EXIT.ok);
    // Flagged: this listener still holds the old key (bad_signature), a new one would say
    // key_changed; either way not verified.
    expect((await message(listener, 'second')).verification).toMatch(
      /^(key_changed|bad_signature)$/,
    );
    const fresh = await listen(alice, ['--count', '1']);
    expect((await runCli(['send', '--to', 'alice', 'again'], bobNow)).code).toBe(EXIT.ok);
    expect((await message(fresh, 'again')).verification).toBe('key_changed');
    expect((await fresh.done()).code).toBe(EXIT.ok);

    const wrong = await runCli(['trust', 'bob', '--fingerprint', oldKey], alice);
    expect(wrong.code).toBe(EXIT.verify);
    expect(wrong.stderr).toContain(`pinned: ${oldKey}`);
    expect(wrong.stderr).toContain(`server: ${newKey}`);
    const unasked = await runCli(['trust', 'bob'], alice);
    expect(unasked.code).toBe(EXIT.usage);
    expect(unasked.stderr).toContain('pass --fingerprint');

    const trusted = await runCli(['trust', 'bob', '--fingerprint', newKey], alice);
    expect(trusted.stderr).toContain(`pinned: ${oldKey}`);
    expect(trusted.stderr).toContain(`server: ${newKey}`);
    expect(trusted.stdout).toBe(`bob: pinned ${newKey} on 127.0.0.1:${server.port}\n`);
    expect(trusted.code).toBe(EXIT.ok);
    const pins = JSON.parse(
      readFileSync(join(alice.SECURECHAT_CONFIG_DIR!, 'peer_keys.json'), 'utf8'),
    );
    expect(pins).toEqual({ version: 2, servers: { [server.fingerprint]: { bob: newKey } } });

    // The running listener follows the new pin.
    expect((await runCli(['send', '--to', 'alice', 'third'], bobNow)).code).toBe(EXIT.ok);
    expect((await message(listener, 'third')).verification).toBe('verified');
    listener.child.kill('SIGINT');
    expect((await listener.done()).code).toBe(EXIT.ok);
  });

  it('a session an operator ends says so, and why the login after it is refused', async () => {
    const carol = await newUser('carol');
    const listener = await listen(carol);
    expect((await runCli(['admin', 'user', 'disable', 'carol'], admin)).code).toBe(EXIT.ok);
    const ended = await listener.done();
    expect(ended.code).toBe(EXIT.authFailed);
    expect(ended.stderr).toContain(
      'the server closed the session: account disabled by an operator; logging in again was ' +
        'refused (auth_failed): the account may have been disabled or its credentials changed',
    );
    expect(ended.stderr).not.toContain('wrong username, password or key');
  });

  // Last: it stops the server.
  it('listen --max-reconnects N gives up (exit 3) when the server stays away', async () => {
    const listener = await listen(alice, ['--max-reconnects', '2']);
    await server.stop();
    const gaveUp = await listener.done();
    expect(gaveUp.stderr).toContain('reconnecting (attempt 2)');
    expect(gaveUp.stderr).not.toContain('reconnecting (attempt 3)');
    expect(gaveUp.code).toBe(EXIT.unreachable);
  });
});
