/**
 * The embedded mode's admin token: generated on first start so that `npm start` needs no
 * setup, kept in a file only the owner can read, and reused on every later start. An
 * ADMIN_TOKEN in the environment wins and no file is touched.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

import { ConfigError, type SecureChatConfig } from '@securechat/core';

export const ADMIN_TOKEN_FILE = 'admin-token';

/** What ADMIN_TOKEN accepts (config.schema.ts); a file holding anything else is refused. */
const TOKEN_PATTERN = /^[\x21-\x7e]{32,512}$/;

export interface AdminTokenSource {
  /** The configuration with `admin.token` set. */
  readonly config: SecureChatConfig;
  /** The file the token is in; undefined when it came from ADMIN_TOKEN. */
  readonly file?: string;
  /** Whether this start generated the file. */
  readonly created: boolean;
}

/**
 * Returns the configuration with an admin token: config.admin.token when set, else the one in
 * `$SECURECHAT_DATA_DIR/admin-token`, created (exclusively, mode 0600) with 32 random bytes in
 * base64url when absent. Two processes starting on one data directory cannot both create it:
 * the loser of the exclusive create reads the winner's token. Throws ConfigError when the
 * file holds something that is not a valid token (it is never overwritten).
 */
export function withAdminToken(config: SecureChatConfig): AdminTokenSource {
  if (config.admin.token !== undefined) return { config, created: false };
  const file = join(config.dataDir, ADMIN_TOKEN_FILE);
  const created = createTokenFile(file);
  const token = readFileSync(file, 'utf8').trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new ConfigError([`${file}: not an admin token (32-512 printable characters expected)`]);
  }
  return { config: { ...config, admin: { ...config.admin, token } }, file, created };
}

/**
 * Creates the file with a fresh token unless it exists; true when it was created here. The
 * token is written whole to a private temporary file and then linked into place, which fails
 * if the name exists: a process that loses the race never sees a half-written file.
 */
function createTokenFile(file: string): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temporary);
  }
}
