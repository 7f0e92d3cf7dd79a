import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { COMMANDS, VERSION, runCli } from './cli';
import { CliError } from './cli.error';
import { type CliIo } from './cli-io';
import { type Command } from './commands/command';
import { EXIT } from './exit-codes';

interface FakeIo extends CliIo {
  readonly stdin: PassThrough;
  out(): string;
  err(): string;
}

function collect(stream: PassThrough): () => string {
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return () => chunks.join('');
}

describe('runCli', () => {
  let dir: string;
  let io: FakeIo;

  function fakeIo(env: NodeJS.ProcessEnv = {}): FakeIo {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    return {
      env: { HOME: dir, SECURECHAT_CONFIG_DIR: join(dir, 'config'), ...env },
      stdin,
      stdout,
      stderr,
      interrupted: new Promise<void>(() => undefined),
      out: collect(stdout),
      err: collect(stderr),
    };
  }

  /** Runs and lets the collectors see every write. */
  async function run(argv: string[], withIo: FakeIo = io): Promise<number> {
    const code = await runCli(argv, withIo);
    await new Promise((resolve) => setImmediate(resolve));
    return code;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-'));
    io = fakeIo();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the usage on stderr and exits 2 without a command', async () => {
    expect(await run([])).toBe(EXIT.usage);
    expect(io.err()).toMatch(/^Usage: securechat <command> \[options\]/);
    expect(io.out()).toBe('');
  });

  it.each([[['--help']], [['-h']], [['help']]])(
    'prints the general help for %j and exits 0',
    async (argv) => {
      expect(await run(argv)).toBe(EXIT.ok);
      const out = io.out();
      expect(out).toMatch(/^Usage: securechat <command> \[options\]/);
      for (const command of COMMANDS) expect(out).toContain(`  ${command.name}  `);
      expect(out).toContain('Exit codes:');
      expect(io.err()).toBe('');
    },
  );

  it('prints a command help for "help send"', async () => {
    expect(await run(['help', 'send'])).toBe(EXIT.ok);
    expect(io.out()).toMatch(/^Usage: securechat send /);
  });

  it.each(COMMANDS.map((c) => c.name))(
    '"%s --help" exits 0 with usage and examples',
    async (name) => {
      expect(await run([name, '--help'])).toBe(EXIT.ok);
      expect(io.out()).toContain(`Usage: securechat ${name}`);
      expect(io.out()).toContain('Example');
      expect(io.err()).toBe('');
    },
  );

  it('prints help for --help / -h among other (even invalid) options, but not after --', async () => {
    expect(await run(['send', '--bogus', '-h'])).toBe(EXIT.ok);
    expect(io.out()).toContain('Usage: securechat send');
    expect(await run(['send', '--to', 'bob', '--', '--help'])).not.toBe(EXIT.ok);
  });

  it('prints the version', async () => {
    expect(await run(['--version'])).toBe(EXIT.ok);
    expect(io.out()).toBe(`securechat ${VERSION} (protocol securechat/1)\n`);
    const other = fakeIo();
    expect(await run(['-V'], other)).toBe(EXIT.ok);
    expect(other.out()).toBe(io.out());
  });

  it('refuses an unknown command with exit 2', async () => {
    expect(await run(['frobnicate', '--now'])).toBe(EXIT.usage);
    expect(io.err()).toContain('securechat: unknown command "frobnicate"');
    expect(io.err()).toContain('See "securechat --help"');
    expect(io.out()).toBe('');
  });

  it('suggests the closest command for a typo, and nothing for a wild guess', async () => {
    expect(await run(['lisen'])).toBe(EXIT.usage);
    expect(io.err()).toContain('securechat: unknown command "lisen" (did you mean "listen"?)');
    const other = fakeIo();
    expect(await run(['deploy'], other)).toBe(EXIT.usage);
    expect(other.err()).not.toContain('did you mean');
  });

  it.each([
    [['send', '--too', 'bob'], 'send', 'unknown option --too (did you mean --to?)'],
    [['send', '--to'], 'send', '--to needs a value'],
    [['send', '--json=yes', '--to', 'bob', 'hi'], 'send', '--json takes no value'],
    [['listen', 'bob'], 'listen', 'unexpected argument "bob"'],
    [['keygen', '-x'], 'keygen', 'unknown option -x'],
  ])('%j: a bad flag is one clear line, exit 2', async (argv, name, problem) => {
    expect(await run(argv)).toBe(EXIT.usage);
    const lines = io.err().trimEnd().split('\n');
    expect(lines).toEqual([`securechat ${name}: ${problem}`, `See "securechat ${name} --help".`]);
  });

  it.each([
    [['send'], 'send', '--to is required'],
    [['send', '--to', 'Bob!', 'hi'], 'send', 'is neither a username nor a #room'],
    [['keygen', '--bogus'], 'keygen', 'unknown option --bogus'],
    [['keygen', '--type', 'dsa'], 'keygen', '--type must be rsa or ed25519'],
    [['keygen', '--bits', '1024'], 'keygen', '--bits must be a number from 2048 to 8192'],
    [
      ['keygen', '--type', 'ed25519', '--bits', '4096'],
      'keygen',
      '--bits applies to RSA keys only',
    ],
    [['listen', '--count', '0'], 'listen', '--count must be a positive whole number'],
    [['chat', 'bob', 'carol'], 'chat', 'at most one conversation'],
    [['register'], 'register', '--user: no username'],
    [['fingerprint'], 'fingerprint', '--server is required'],
    [['fingerprint', '--server', '::1'], 'fingerprint', '[addr]:port'],
    [['verify-transcript'], 'verify-transcript', 'give exactly one transcript FILE'],
  ])('%j is a usage error pointing to the help', async (argv, name, problem) => {
    expect(await run(argv)).toBe(EXIT.usage);
    const err = io.err();
    expect(err).toContain(`securechat ${name}: `);
    expect(err).toContain(problem);
    expect(err).toContain(`See "securechat ${name} --help".`);
  });

  it('refuses an empty message read from standard input', async () => {
    io.stdin.end('\n');
    expect(await run(['send', '--to', 'bob', '--user', 'alice'])).toBe(EXIT.usage);
    expect(io.err()).toContain('the message is empty');
  });

  it('points to keygen when the key is missing, before any connection', async () => {
    const code = await run(['chat', '--user', 'alice', '--server', '127.0.0.1:1']);
    expect(code).toBe(EXIT.usage);
    expect(io.err()).toContain(`no key at ${join(dir, 'config', 'id_securechat')}`);
    expect(io.err()).toContain('securechat keygen');
  });

  it('refuses to ask for a password without a terminal, naming the variable', async () => {
    const key = join(dir, 'k');
    const keygen = fakeIo({ SECURECHAT_KEY_PASSPHRASE: 'long enough passphrase' });
    expect(await run(['keygen', '--type', 'ed25519', '--out', key], keygen)).toBe(EXIT.ok);
    const withKey = fakeIo({ SECURECHAT_KEY_PASSPHRASE: 'long enough passphrase' });
    const code = await run(['register', '-u', 'alice', '-k', key, '-s', '127.0.0.1:1'], withKey);
    expect(code).toBe(EXIT.usage);
    expect(withKey.err()).toContain('SECURECHAT_PASSWORD');
  });

  it('refuses a password no server accepts at register with exit 2, before connecting', async () => {
    const key = join(dir, 'k');
    const env = { SECURECHAT_KEY_PASSPHRASE: 'long enough passphrase' };
    expect(await run(['keygen', '--type', 'ed25519', '--out', key], fakeIo(env))).toBe(EXIT.ok);
    const short = fakeIo({ ...env, SECURECHAT_PASSWORD: 'short' });
    const code = await run(['register', '-u', 'alice', '-k', key, '-s', '127.0.0.1:1'], short);
    expect(code).toBe(EXIT.usage);
    expect(short.err()).toContain('the password must be 8 to 1024 bytes');
  });

  it('keygen refuses an existing --out before making the key or asking anything', async () => {
    const key = join(dir, 'taken');
    writeFileSync(key, "someone else's key");
    // No passphrase in the environment and no terminal: asking first would fail differently.
    expect(await run(['keygen', '--out', key])).toBe(EXIT.usage);
    expect(io.err()).toContain(`${key} exists; choose another --out, or --force`);
    expect(io.err()).not.toContain('Generating');
    expect(readFileSync(key, 'utf8')).toBe("someone else's key");
  });

  it('keygen refuses a short passphrase from the environment before making the key', async () => {
    const short = fakeIo({ SECURECHAT_KEY_PASSPHRASE: 'short' });
    expect(await run(['keygen', '--out', join(dir, 'k2')], short)).toBe(EXIT.usage);
    expect(short.err()).toContain('SECURECHAT_KEY_PASSPHRASE must have at least 8 characters');
    expect(short.err()).not.toContain('Generating');
  });

  it('creates a key with keygen, the passphrase from the environment', async () => {
    const key = join(dir, 'new', 'id');
    const keygen = fakeIo({ SECURECHAT_KEY_PASSPHRASE: 'long enough passphrase' });
    expect(await run(['keygen', '-t', 'ed25519', '-o', key], keygen)).toBe(EXIT.ok);
    expect(keygen.out()).toMatch(
      /^private key: .*\npublic key: {2}.*\nfingerprint: sha256:[0-9a-f]{64}\n$/,
    );
    expect(readFileSync(key, 'utf8')).toContain('ENCRYPTED PRIVATE KEY');

    const again = fakeIo({ SECURECHAT_KEY_PASSPHRASE: 'long enough passphrase' });
    expect(await run(['keygen', '-t', 'ed25519', '-o', key], again)).toBe(EXIT.usage);
    expect(again.err()).toContain('--force');
  });

  it('turns an unexpected failure into exit 1, with the stack only in debug mode', async () => {
    const broken: Command = {
      name: 'broken',
      summary: 'fails',
      help: 'Usage: securechat broken',
      run: () => Promise.reject(new Error('disk full')),
    };
    expect(await runCli(['broken'], io, [broken])).toBe(EXIT.failure);
    const debug = fakeIo({ SECURECHAT_DEBUG: '1' });
    expect(await runCli(['broken'], debug, [broken])).toBe(EXIT.failure);
    await new Promise((resolve) => setImmediate(resolve));
    expect(io.err()).toBe('securechat broken: disk full\n');
    expect(debug.err()).toMatch(/securechat broken: disk full\nError: disk full\n\s+at /);
  });

  it("prints a failure's message with hidden characters visible, keeping its own lines", async () => {
    const disguised: Command = {
      name: 'disguised',
      summary: 'fails',
      help: 'Usage: securechat disguised',
      run: () => Promise.reject(new Error('bad \u202Ename\u200B\nsee \u2066here\u009b')),
    };
    expect(await runCli(['disguised'], io, [disguised])).toBe(EXIT.failure);
    await new Promise((resolve) => setImmediate(resolve));
    expect(io.err()).toBe(
      'securechat disguised: bad <U+202E>name<U+200B>\nsee <U+2066>here<U+009B>\n',
    );
  });

  it('shows the fields of a transcript file sanitized: it may come from a server', async () => {
    const file = join(dir, 'export.jsonl');
    const header = {
      kind: 'header',
      session_id: 's-1\u202E',
      server: 'chat:7777',
      server_key: 'AAAA',
      server_fingerprint: 'sha256:\u200Bab',
      username: '\u0430lice',
      h2: 'AAAA',
      started_at: '2026-01-01T00:00:00Z\u2066',
    };
    writeFileSync(file, `${JSON.stringify(header)}\n`);
    expect(await run(['verify-transcript', file])).toBe(EXIT.verificationFailed);
    const out = io.out();
    expect(out).toContain('session s-1<U+202E>, user <U+0430>lice, server chat:7777');
    expect(out).toContain('server key sha256:<U+200B>ab, started 2026-01-01T00:00:00Z<U+2066>');
    expect(out).not.toMatch(/[\u202E\u200B\u2066\u0430]/);
    expect(await run(['verify-transcript', file, '--json'])).toBe(EXIT.verificationFailed);
    expect(io.out()).not.toMatch(/[\u202E\u200B\u2066]/);
  });

  it('exits with a CliError code, without the help pointer', async () => {
    const refusing: Command = {
      name: 'refusing',
      summary: 'refuses',
      help: 'Usage: securechat refusing',
      run: () => Promise.reject(new CliError('receipt mismatch', EXIT.verificationFailed)),
    };
    expect(await runCli(['refusing'], io, [refusing])).toBe(EXIT.verificationFailed);
    await new Promise((resolve) => setImmediate(resolve));
    expect(io.err()).toBe('securechat refusing: receipt mismatch\n');
  });
});
