import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  type CommonFlags,
  DEFAULT_SERVER,
  nonEmpty,
  parseServerAddress,
  readConfigFile,
  resolveConnection,
  resolveServerText,
} from './cli-config';
import { cliPaths, type CliPaths } from './cli-paths';
import { UsageError } from './usage.error';

const FP = `sha256:${'ab'.repeat(32)}`;

describe('parseServerAddress', () => {
  it('reads host:port', () => {
    expect(parseServerAddress('chat.example.org:7000')).toEqual({
      host: 'chat.example.org',
      port: 7000,
    });
    expect(parseServerAddress('10.0.0.1:1')).toEqual({ host: '10.0.0.1', port: 1 });
    expect(parseServerAddress('h:65535')).toEqual({ host: 'h', port: 65535 });
  });

  it('gives a bare host port 7777', () => {
    expect(parseServerAddress('localhost')).toEqual({ host: 'localhost', port: 7777 });
    expect(DEFAULT_SERVER).toBe('127.0.0.1:7777');
  });

  it('reads bracketed IPv6 literals, with or without a port', () => {
    expect(parseServerAddress('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseServerAddress('[2001:db8::7]')).toEqual({ host: '2001:db8::7', port: 7777 });
  });

  it.each(['h:0', 'h:65536', 'h:99999', 'h:abc', 'h:', 'h:-1', 'h:1.5', 'h: 80', '[::1]:0'])(
    'refuses the bad port in %j',
    (text) => {
      expect(() => parseServerAddress(text)).toThrow(UsageError);
      expect(() => parseServerAddress(text)).toThrow(/port|IPv6/);
    },
  );

  it('asks for brackets around IPv6 addresses', () => {
    expect(() => parseServerAddress('::1')).toThrow(/\[addr\]:port/);
    expect(() => parseServerAddress('2001:db8::7:7777')).toThrow(/\[addr\]:port/);
  });

  it.each([':7777', '', 'a b:1'])('refuses %j without a host', (text) => {
    expect(() => parseServerAddress(text)).toThrow(/no host/);
  });

  it('refuses brackets around something that is not IPv6', () => {
    expect(() => parseServerAddress('[example.org]:1')).toThrow(/not an IPv6 address/);
    expect(() => parseServerAddress('[127.0.0.1]:1')).toThrow(UsageError);
  });
});

describe('nonEmpty / resolveServerText', () => {
  it('reads an empty variable as unset', () => {
    expect(nonEmpty(undefined)).toBeUndefined();
    expect(nonEmpty('')).toBeUndefined();
    expect(nonEmpty(' ')).toBe(' ');
    expect(nonEmpty('x')).toBe('x');
  });

  it('takes --server, then SECURECHAT_SERVER (unless empty), then the config file', () => {
    const file = { server: 'file:1' };
    const env = { SECURECHAT_SERVER: 'env:2' };
    expect(resolveServerText('flag:3', env, file)).toBe('flag:3');
    expect(resolveServerText(undefined, env, file)).toBe('env:2');
    expect(resolveServerText(undefined, { SECURECHAT_SERVER: '' }, file)).toBe('file:1');
    expect(resolveServerText(undefined, {}, {})).toBeUndefined();
  });
});

describe('resolveConnection', () => {
  let dir: string;
  let paths: CliPaths;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-config-'));
    paths = cliPaths({ SECURECHAT_CONFIG_DIR: dir, SECURECHAT_DATA_HOME: join(dir, 'data') });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const writeConfig = (content: unknown, name = 'config.json'): string => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  const problemsOf = async (
    flags: CommonFlags,
    env: NodeJS.ProcessEnv = {},
  ): Promise<UsageError> => {
    const error: unknown = await resolveConnection(flags, env, paths).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  };

  it('uses the defaults when there is no config file', async () => {
    const settings = await resolveConnection({ user: 'alice' }, {}, paths);
    expect(settings).toEqual({
      server: { host: '127.0.0.1', port: 7777 },
      user: 'alice',
      keyPath: join(dir, 'id_securechat'),
      trust: 'ask',
      transcripts: true,
    });
  });

  it('takes flags over the environment over the config file', async () => {
    writeConfig({ server: 'file.example:1', user: 'from_file', key: '/file/key' });
    const env = {
      SECURECHAT_SERVER: 'env.example:2',
      SECURECHAT_USER: 'from_env',
      SECURECHAT_KEY: '/env/key',
    };

    const fromFlags = await resolveConnection(
      { server: 'flag.example:3', user: 'from_flag', key: '/flag/key' },
      env,
      paths,
    );
    expect(fromFlags).toMatchObject({
      server: { host: 'flag.example', port: 3 },
      user: 'from_flag',
      keyPath: resolve('/flag/key'),
    });

    const fromEnv = await resolveConnection({}, env, paths);
    expect(fromEnv).toMatchObject({
      server: { host: 'env.example', port: 2 },
      user: 'from_env',
      keyPath: resolve('/env/key'),
    });

    const fromFile = await resolveConnection({}, {}, paths);
    expect(fromFile).toMatchObject({
      server: { host: 'file.example', port: 1 },
      user: 'from_file',
      keyPath: resolve('/file/key'),
    });
  });

  it('ignores empty environment variables', async () => {
    writeConfig({ user: 'from_file' });
    const settings = await resolveConnection(
      {},
      { SECURECHAT_SERVER: '', SECURECHAT_USER: '', SECURECHAT_KEY: '' },
      paths,
    );
    expect(settings.user).toBe('from_file');
    expect(settings.server).toEqual({ host: '127.0.0.1', port: 7777 });
    expect(settings.keyPath).toBe(paths.defaultKey);
  });

  it('resolves a relative key path to an absolute one', async () => {
    const settings = await resolveConnection({ user: 'alice', key: 'keys/k.pem' }, {}, paths);
    expect(settings.keyPath).toBe(resolve('keys/k.pem'));
  });

  it('reports every problem at once', async () => {
    const error = await problemsOf({
      server: 'h:0',
      user: 'Not Valid',
      fingerprint: 'md5:nope',
      'trust-on-first-use': true,
    });
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(4);
    expect(error.message).toMatch(/--server: the port/);
    expect(error.message).toMatch(/--user: "Not Valid" is not a valid username/);
    expect(error.message).toMatch(/--fingerprint: expected sha256:/);
    expect(error.message).toMatch(/exclude each other/);
  });

  it('names the missing username and its environment variable', async () => {
    const error = await problemsOf({});
    expect(error.message).toBe('--user: no username (or set SECURECHAT_USER)');
  });

  it('reads the config file given with --config, and a missing one is an error', async () => {
    const path = writeConfig({ user: 'other_user' }, 'other.json');
    const settings = await resolveConnection({ config: path }, {}, paths);
    expect(settings.user).toBe('other_user');

    const missing = join(dir, 'nope.json');
    const error = await problemsOf({ config: missing, user: 'alice' });
    expect(error.message).toContain(`cannot read ${missing}`);
  });

  it('rejects an unknown key and a wrong type in the config file, both at once', async () => {
    const path = writeConfig({ server: 7777, usr: 'alice', trust_on_first_use: 'yes' });
    const error = await problemsOf({ user: 'alice' });
    expect(error.message).toContain(`${path} has problems:`);
    expect(error.message).toMatch(/server: .*string/i);
    expect(error.message).toMatch(/usr/);
    expect(error.message).toMatch(/trust_on_first_use: .*boolean/i);
    expect(error.message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(3);
  });

  it('rejects a config file that is not JSON, or not an object', async () => {
    const path = writeConfig('{"user": "alice",');
    await expect(resolveConnection({}, {}, paths)).rejects.toThrow(`${path} is not valid JSON`);
    writeConfig('["alice"]');
    await expect(resolveConnection({}, {}, paths)).rejects.toThrow(/\(file\)/);
  });

  it('does not check the default config file when --config names another one', async () => {
    writeConfig('not json at all');
    const other = writeConfig({ user: 'alice' }, 'other.json');
    await expect(resolveConnection({ config: other }, {}, paths)).resolves.toMatchObject({
      user: 'alice',
    });
  });

  describe('trust', () => {
    it('asks by default', async () => {
      expect((await resolveConnection({ user: 'alice' }, {}, paths)).trust).toBe('ask');
    });

    it('pins the fingerprint given with --fingerprint', async () => {
      const settings = await resolveConnection({ user: 'alice', fingerprint: FP }, {}, paths);
      expect(settings.trust).toEqual({ fingerprint: FP });
    });

    it('trusts on first use with the flag or the config file', async () => {
      const flagged = await resolveConnection(
        { user: 'alice', 'trust-on-first-use': true },
        {},
        paths,
      );
      expect(flagged.trust).toBe('tofu');
      writeConfig({ trust_on_first_use: true });
      expect((await resolveConnection({ user: 'alice' }, {}, paths)).trust).toBe('tofu');
    });

    it('lets --fingerprint win over trust_on_first_use in the config file', async () => {
      writeConfig({ trust_on_first_use: true });
      const settings = await resolveConnection({ user: 'alice', fingerprint: FP }, {}, paths);
      expect(settings.trust).toEqual({ fingerprint: FP });
    });

    it('refuses --fingerprint together with --trust-on-first-use', async () => {
      const error = await problemsOf({
        user: 'alice',
        fingerprint: FP,
        'trust-on-first-use': true,
      });
      expect(error.message).toBe('--fingerprint and --trust-on-first-use exclude each other');
    });

    it('refuses a malformed fingerprint', async () => {
      const error = await problemsOf({ user: 'alice', fingerprint: FP.toUpperCase() });
      expect(error.message).toMatch(/--fingerprint/);
    });
  });

  it('keeps transcripts unless --no-transcript or the config file says otherwise', async () => {
    expect(
      (await resolveConnection({ user: 'alice', 'no-transcript': true }, {}, paths)).transcripts,
    ).toBe(false);
    writeConfig({ transcripts: false });
    expect((await resolveConnection({ user: 'alice' }, {}, paths)).transcripts).toBe(false);
  });
});

describe('readConfigFile', () => {
  it('treats a missing default file as empty, a missing explicit one as an error', async () => {
    const missing = join(tmpdir(), `securechat-missing-${process.pid}-${Date.now()}.json`);
    await expect(readConfigFile(missing, false)).resolves.toEqual({});
    await expect(readConfigFile(missing, true)).rejects.toBeInstanceOf(UsageError);
  });
});
