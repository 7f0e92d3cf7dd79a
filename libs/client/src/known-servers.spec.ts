import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ServerIdentityError } from '@securechat/protocol';

import {
  FileKnownServersStore,
  MemoryKnownServersStore,
  PinConflictError,
  describeServerIdentityError,
  parseKnownServersLine,
  serverAddress,
} from './known-servers';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('serverAddress', () => {
  it('is host:port, lowercased, with IPv6 literals in brackets', () => {
    expect(serverAddress('Chat.Example.COM', 7777)).toBe('chat.example.com:7777');
    expect(serverAddress('::1', 7777)).toBe('[::1]:7777');
    expect(serverAddress('[::1]', 7777)).toBe('[::1]:7777');
  });
});

describe('FileKnownServersStore', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'known-servers-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads host:port lines, ignoring comments and lines it cannot parse', async () => {
    const path = join(dir, 'known_servers');
    writeFileSync(path, `# comment\n\nchat:7777 ${A}\nbroken line here\nother:1 md5:xyz\n`);
    const store = new FileKnownServersStore(path);
    expect(await store.get('chat:7777')).toBe(A);
    expect(await store.get('other:1')).toBeUndefined();
    expect(await store.get('nothing:1')).toBeUndefined();
    expect(await new FileKnownServersStore(join(dir, 'absent')).get('chat:7777')).toBeUndefined();
  });

  it('pins atomically with mode 0600, keeps comments, never replaces a pin', async () => {
    const path = join(dir, 'nested', 'known_servers');
    const store = new FileKnownServersStore(path);
    await store.pin('chat:7777', A);
    writeFileSync(path, `# mine\n${readFileSync(path, 'utf8')}`);
    await Promise.all([store.pin('b:1', B), store.pin('c:2', A)]); // serialised, none lost
    await store.pin('chat:7777', A); // same key: nothing to do
    const conflict = await store.pin('chat:7777', B).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(PinConflictError);
    expect(conflict).toMatchObject({ pinnedFingerprint: A, offeredFingerprint: B });
    expect(readFileSync(path, 'utf8')).toBe(`# mine\nchat:7777 ${A}\nb:1 ${B}\nc:2 ${A}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await store.remove('b:1');
    expect(readFileSync(path, 'utf8')).toBe(`# mine\nchat:7777 ${A}\nc:2 ${A}\n`);
  });

  it('rejects malformed fingerprints and addresses', async () => {
    const store = new FileKnownServersStore(join(dir, 'k'));
    await expect(store.pin('chat:1', 'sha256:ABC')).rejects.toBeInstanceOf(TypeError);
    await expect(store.pin('chat 1', A)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('MemoryKnownServersStore', () => {
  it('behaves like the file store', async () => {
    const store = new MemoryKnownServersStore({ 'x:1': A });
    expect(await store.get('x:1')).toBe(A);
    await expect(store.pin('x:1', B)).rejects.toBeInstanceOf(PinConflictError);
    await store.remove('x:1');
    await store.pin('x:1', B);
    expect(await store.get('x:1')).toBe(B);
  });
});

describe('parseKnownServersLine and describeServerIdentityError', () => {
  it('parses one entry per line', () => {
    expect(parseKnownServersLine(`  h:1   ${A}  `).entry).toEqual({
      address: 'h:1',
      fingerprint: A,
    });
    expect(parseKnownServersLine(`# h:1 ${A}`).entry).toBeUndefined();
  });

  it('shows both fingerprints for a changed key', () => {
    const text = describeServerIdentityError(
      new ServerIdentityError('server_key_mismatch', B, A),
      'chat:7777',
    );
    expect(text).toContain('HAS CHANGED');
    expect(text).toContain(`pinned:    ${A}`);
    expect(text).toContain(`presented: ${B}`);
  });
});
