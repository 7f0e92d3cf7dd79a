import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfig } from '@securechat/core';

import { ADMIN_TOKEN_FILE, withAdminToken } from './admin-token-file';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'securechat-admin-token-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const config = (env: Record<string, string> = {}) =>
  loadConfig({ SECURECHAT_DATA_DIR: join(dir, 'data'), ...env });

describe('withAdminToken', () => {
  it('generates a 32-byte base64url token in a 0600 file, then reuses it', () => {
    const first = withAdminToken(config());
    const file = join(dir, 'data', ADMIN_TOKEN_FILE);
    expect(first).toMatchObject({ file, created: true });
    expect(first.config.admin.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.config.admin.token!, 'base64url')).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.config.admin.token);

    const second = withAdminToken(config());
    expect(second).toMatchObject({ file, created: false });
    expect(second.config.admin.token).toBe(first.config.admin.token);
  });

  it('leaves the file alone when ADMIN_TOKEN is set', () => {
    const token = 'x'.repeat(40);
    const result = withAdminToken(config({ ADMIN_TOKEN: token }));
    expect(result).toEqual({ config: expect.anything(), created: false });
    expect(result.config.admin.token).toBe(token);
    expect(() => statSync(join(dir, 'data', ADMIN_TOKEN_FILE))).toThrow();
  });

  it('refuses a file that does not hold a token, and does not overwrite it', () => {
    withAdminToken(config());
    const file = join(dir, 'data', ADMIN_TOKEN_FILE);
    writeFileSync(file, 'short\n');
    expect(() => withAdminToken(config())).toThrow(ConfigError);
    expect(readFileSync(file, 'utf8')).toBe('short\n');
  });

  it('never leaves the name pointing at a half-written file, nor temporary files behind', () => {
    // Many starts on one directory: every one must read the same whole token.
    const tokens = new Set(
      Array.from({ length: 20 }, () => withAdminToken(config()).config.admin.token),
    );
    expect(tokens.size).toBe(1);
    expect(readdirSync(join(dir, 'data'))).toEqual([ADMIN_TOKEN_FILE]);
  });
});
