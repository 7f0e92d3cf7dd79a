/**
 * `securechat admin …`: the operator's side, over the admin HTTP API (issue 6): users,
 * sessions, transcripts and the audit log. Needs the admin token: ADMIN_TOKEN, --token-file,
 * or, next to an embedded server started in this directory, ./data/admin-token.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import {
  AdminApiClient,
  AdminApiError,
  type AdminAuditEntry,
  type AdminPurgedSession,
  type AdminPurgeResult,
  type AdminPurgeTotals,
  type AdminSession,
  type AdminSessionsClosed,
  type AdminTranscriptSession,
  type AdminUser,
} from '@securechat/client';
import { USERNAME_PATTERN } from '@securechat/protocol';

import {
  sanitizeForTerminal,
  sanitizeLines,
  sanitizeName,
  terminalSafeJson,
} from '../chat/sanitize';
import { CliError } from '../cli.error';
import { nonEmpty } from '../cli-config';
import { type CliIo, writeLine } from '../cli-io';
import { EXIT, type ExitCode } from '../exit-codes';
import { readAllInput } from '../read-stdin';
import { askLine } from '../terminal-prompt';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8080';

const HELP = `Usage: securechat admin <area> <action> [arguments] [options]

Manages a SecureChat server over its admin HTTP API.

Users:
  user add NAME --public-key FILE [--password-stdin]   create an account (201: prints the key fingerprint)
  user list [--query TEXT] [--limit N]                 list accounts (paged; --all for every page)
  user show NAME                                       one account
  user disable NAME | user enable NAME                 disabling closes the user's live sessions at once
  user password NAME [--password-stdin]                set a new password; closes the user's live sessions
  user set-key NAME --public-key FILE                  replace the public key (needed from the next login on);
                                                       closes the user's live sessions
  user delete NAME                                     deactivate (messages and transcripts are kept); closes
                                                       the user's live sessions
  user unthrottle NAME                                 clear the user's failed-login throttle
Sessions:
  session list [--user NAME]                           live sessions on every gateway
  session close SESSION_ID | session close-user NAME
Transcripts:
  transcript list NAME [--limit N] [--all]             the user's sessions, newest first, and their status (agreed, disputed, …)
  transcript export SESSION_ID [--out FILE]            the file "securechat verify-transcript" checks
  transcript purge (--before WHEN | --older-than DAYS) [--dry-run [--all]] [--limit N]
                                                       delete the stored records of sessions that ended before WHEN
Audit:
  audit [--limit N]                                    every admin action, newest first

Options:
      --url URL          the admin API (default ${DEFAULT_ADMIN_URL}; env SECURECHAT_ADMIN_URL,
                         or SECURECHAT_ADMIN_HOST / SECURECHAT_ADMIN_PORT as the server uses them)
      --token-file FILE  file holding the admin token (default: ADMIN_TOKEN from the environment,
                         else ./data/admin-token as written by the embedded server)
      --json             print the API's JSON instead of text
  -h, --help             show this help
New passwords are read from standard input with --password-stdin (first line), else asked twice
without echo.

Purging transcripts deletes, for good, the server's copy of the records of every session that
ended (a session that never ended: started) before WHEN, an ISO 8601 date or date-time
(2026-01-01 is midnight UTC; 2026-01-01T12:00:00+02:00), or DAYS days ago with --older-than.
Each session's row stays, with its chain heads, receipt and countersignature, so its receipt
still verifies against them; but the server can no longer rebuild or export the session
("transcript export" then fails with transcript_purged), and a session that ended without a
receipt (incomplete, or never ended) keeps nothing signed at all: it is listed as "no receipt".
Users' own transcripts are not touched. Transcripts are audit evidence: the server keeps them
forever unless SECURECHAT_TRANSCRIPT_RETENTION_DAYS says otherwise. --dry-run lists what would
be purged and deletes nothing (one page of --limit sessions; --all for every page); without
it, the purge runs to the end, --limit sessions (default 1000) per request, and is audited.

Examples:
  echo 'a long password' | securechat admin user add alice --password-stdin --public-key alice.pub
  securechat admin user list --query ali
  securechat admin user disable mallory
  securechat admin transcript export s-AbC123 --out session.jsonl && securechat verify-transcript session.jsonl
  securechat admin transcript purge --older-than 365 --dry-run --all`;

const OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'public-key': { type: 'string' },
  'password-stdin': { type: 'boolean' },
  query: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  user: { type: 'string' },
  out: { type: 'string', short: 'o' },
  before: { type: 'string' },
  'older-than': { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const;

/** Sessions per purge request unless --limit says otherwise: the API's largest step. */
const PURGE_STEP = 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

type Values = ReturnType<typeof parse>['values'];

function parse(args: string[]) {
  return parseCommandArgs('admin', args, OPTIONS, true);
}

export const adminCommand: Command = {
  name: 'admin',
  summary: 'manage users, sessions and transcripts over the admin API',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parse(args);
    if (positionals.length === 0) {
      writeLine(io.stdout, HELP);
      return EXIT.usage;
    }
    const api = new AdminApiClient({
      baseUrl: adminBaseUrl(values.url, io.env),
      token: await adminToken(values, io.env),
    });
    try {
      return await dispatch(api, positionals, values, io);
    } catch (error) {
      if (error instanceof AdminApiError) throw adminFailure(error);
      throw error;
    }
  },
};

/**
 * --url, SECURECHAT_ADMIN_URL, or the address the server itself is told to listen on
 * (SECURECHAT_ADMIN_HOST / SECURECHAT_ADMIN_PORT, as in its own environment), else the default.
 */
export function adminBaseUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const url = flag ?? nonEmpty(env.SECURECHAT_ADMIN_URL);
  if (url !== undefined) return url;
  const portText = nonEmpty(env.SECURECHAT_ADMIN_PORT);
  let host = nonEmpty(env.SECURECHAT_ADMIN_HOST);
  if (portText === undefined && host === undefined) return DEFAULT_ADMIN_URL;
  if (
    portText !== undefined &&
    (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
  ) {
    throw new UsageError('SECURECHAT_ADMIN_PORT must be a port, 1-65535', 'admin');
  }
  // A server listening on every address is reached on this machine's loopback.
  if (host === undefined || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return `http://${hostPart}:${portText ?? '8080'}`;
}

async function adminToken(values: Values, env: NodeJS.ProcessEnv): Promise<string> {
  if (values['token-file'] !== undefined) return readToken(values['token-file'], true);
  const fromEnv = nonEmpty(env.ADMIN_TOKEN) ?? nonEmpty(env.SECURECHAT_ADMIN_TOKEN);
  if (fromEnv !== undefined) return fromEnv;
  const dataDir = nonEmpty(env.SECURECHAT_DATA_DIR) ?? './data';
  return readToken(resolve(dataDir, 'admin-token'), false);
}

async function readToken(path: string, explicit: boolean): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token === '') throw new UsageError(`${path} is empty`, 'admin');
    return token;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      explicit
        ? `cannot read the token file ${path}: ${(error as Error).message}`
        : 'no admin token: set ADMIN_TOKEN or pass --token-file (the embedded server writes one to ./data/admin-token)',
      'admin',
    );
  }
}

/**
 * The API's answer → exit code: a refused token is an auth failure, bad input a usage error.
 * The message and field errors are the server's text: one sanitized line each.
 */
function adminFailure(error: AdminApiError): CliError {
  const fields = error.errors
    .map((e) => `\n  - ${sanitizeForTerminal(e.field)}: ${sanitizeForTerminal(e.message)}`)
    .join('');
  const message = `${sanitizeForTerminal(error.message)}${fields}`;
  if (error.status === 0) return new CliError(message, EXIT.unreachable, { cause: error });
  if (error.status === 401 || error.status === 403) {
    return new CliError(`${message} (check the admin token)`, EXIT.authFailed, { cause: error });
  }
  if (error.status === 400) return new CliError(message, EXIT.usage, { cause: error });
  if (error.status === 404 || error.status === 409 || error.status === 410) {
    return new CliError(message, EXIT.requestRefused, { cause: error });
  }
  return new CliError(message, EXIT.failure, { cause: error });
}

function need(positionals: string[], index: number, what: string): string {
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`missing ${what}`, 'admin');
  return value;
}

function username(positionals: string[]): string {
  const name = need(positionals, 2, 'NAME');
  if (!USERNAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" is not a valid username (${USERNAME_PATTERN.source})`, 'admin');
  }
  return name;
}

async function publicKey(values: Values): Promise<string> {
  const path = values['public-key'];
  if (path === undefined) throw new UsageError('--public-key FILE is required', 'admin');
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`, 'admin');
  }
}

async function newPassword(values: Values, io: CliIo): Promise<string> {
  if (values['password-stdin'] === true) {
    const [first = ''] = (await readAllInput(io.stdin, 64 * 1024)).split(/\r?\n/);
    if (first === '') throw new UsageError('no password on standard input', 'admin');
    return first;
  }
  const hint = { echo: false, envHint: '--password-stdin' } as const;
  const first = await askLine(io.stdin, io.stderr, 'New password: ', hint);
  const second = await askLine(io.stdin, io.stderr, 'Same password again: ', hint);
  if (first !== second) throw new UsageError('the passwords differ; nothing was changed', 'admin');
  return first;
}

function limit(values: Values): number | undefined {
  if (values.limit === undefined) return undefined;
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1) {
    throw new UsageError('--limit must be a positive whole number', 'admin');
  }
  return Number(values.limit);
}

/**
 * Everything the API answers is the server's text. Names, ids and times go through
 * sanitizeName where the lines are built; each line is sanitized once more here, and JSON has
 * its invisible characters escaped (the same values for a parser).
 */
function print(io: CliIo, values: Values, json: unknown, text: () => string[]): ExitCode {
  if (values.json === true) writeLine(io.stdout, terminalSafeJson(json));
  else for (const line of text()) writeLine(io.stdout, sanitizeForTerminal(line));
  return EXIT.ok;
}

/** A name, id or time from the API as it may be printed (sanitizeName), padded to `width`. */
function col(text: string, width = 0): string {
  return sanitizeName(text).padEnd(width);
}

function userLine(u: AdminUser): string {
  const state = u.deleted ? 'deleted' : u.disabled ? 'disabled' : 'active';
  return `${col(u.username, 32)} ${state.padEnd(8)} ${col(u.fingerprint)}`;
}

function sessionLine(s: AdminSession): string {
  return `${col(s.session_id)}  ${col(s.username, 20)} ${col(s.gateway, 24)} ${col(s.source_address, 22)} since ${col(s.since)}`;
}

function transcriptLine(t: AdminTranscriptSession): string {
  const purged =
    t.records_purged_at === undefined || t.records_purged_at === null
      ? ''
      : `  records purged ${col(t.records_purged_at)}`;
  return `${col(t.session_id)}  ${col(t.status, 10)} ${col(t.mode, 6)} ${col(t.started_at)} → ${t.ended_at === null ? '(open)' : col(t.ended_at)}${purged}`;
}

/** The purge cutoff from --before (a date is midnight UTC) or --older-than DAYS. */
function purgeCutoff(values: Values): string {
  const before = values.before;
  const olderThan = values['older-than'];
  if ((before === undefined) === (olderThan === undefined)) {
    throw new UsageError('give either --before WHEN or --older-than DAYS', 'admin');
  }
  if (olderThan !== undefined) {
    if (!/^\d{1,6}$/.test(olderThan) || Number(olderThan) < 1) {
      throw new UsageError('--older-than must be a whole number of days, at least 1', 'admin');
    }
    return new Date(Date.now() - Number(olderThan) * DAY_MS).toISOString();
  }
  // A date alone is the start of that day in UTC; anything else the server checks.
  return /^\d{4}-\d{2}-\d{2}$/.test(before!) ? `${before}T00:00:00Z` : before!;
}

function purgedLine(s: AdminPurgedSession): string {
  const end = s.ended_at === null ? `never ended, started ${col(s.started_at)}` : col(s.ended_at);
  const signed = s.receipt
    ? s.countersigned
      ? 'receipt and countersignature kept'
      : 'receipt kept'
    : 'no receipt: nothing signed remains';
  return `${col(s.session_id)}  ${col(s.username, 20)} ${col(s.status, 10)} ${end}  ${s.chunks} chunks, ${s.bytes} bytes; ${signed}`;
}

function addTotals(a: AdminPurgeTotals, b: AdminPurgeTotals): AdminPurgeTotals {
  return {
    sessions: a.sessions + b.sessions,
    chunks: a.chunks + b.chunks,
    bytes: a.bytes + b.bytes,
    with_receipt: a.with_receipt + b.with_receipt,
    without_receipt: a.without_receipt + b.without_receipt,
  };
}

function purgeSummary(before: string, dryRun: boolean, t: AdminPurgeTotals): string[] {
  const verb = dryRun ? 'would delete' : 'deleted';
  return [
    `${dryRun ? 'dry run: ' : ''}${verb} the records of ${t.sessions} session(s) that ended before ${col(before)}: ${t.chunks} chunks, ${t.bytes} bytes`,
    `  ${t.with_receipt} keep their receipt, which still verifies against the stored chain heads`,
    `  ${t.without_receipt} had no receipt: nothing signed remains of them`,
    ...(dryRun
      ? ['nothing was deleted']
      : ['purged sessions can no longer be exported (transcript_purged)']),
  ];
}

/**
 * `transcript purge`: a dry run lists one page (every page with --all); a purge calls the API
 * until nothing is due, printing each step's sessions as it completes.
 */
async function purgeTranscripts(api: AdminApiClient, values: Values, io: CliIo): Promise<ExitCode> {
  const before = purgeCutoff(values);
  const dryRun = values['dry-run'] === true;
  const step = limit(values) ?? (dryRun ? undefined : PURGE_STEP);
  const json = values.json === true;
  const sessions: AdminPurgedSession[] = [];
  let totals: AdminPurgeTotals = {
    sessions: 0,
    chunks: 0,
    bytes: 0,
    with_receipt: 0,
    without_receipt: 0,
  };
  let cutoff = before;
  let cursor: string | undefined;
  for (;;) {
    const r: AdminPurgeResult = await api.purgeTranscripts({
      before,
      dryRun,
      ...(step === undefined ? {} : { limit: Math.min(step, PURGE_STEP) }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    cutoff = r.before;
    totals = addTotals(totals, r.totals);
    if (json) sessions.push(...r.sessions);
    else for (const s of r.sessions) writeLine(io.stdout, sanitizeForTerminal(purgedLine(s)));
    if (dryRun) {
      cursor = r.next_cursor ?? undefined;
      if (cursor === undefined) break;
      if (values.all !== true) {
        if (!json) writeLine(io.stderr, '(more: --all for every page)');
        break;
      }
    } else if (!r.more || r.sessions.length === 0) {
      // Nothing taken although more is due: another purge holds those sessions right now.
      break;
    }
  }
  if (json) {
    writeLine(io.stdout, terminalSafeJson({ before: cutoff, dry_run: dryRun, sessions, totals }));
  } else {
    for (const line of purgeSummary(cutoff, dryRun, totals)) {
      writeLine(io.stdout, sanitizeForTerminal(line));
    }
  }
  return EXIT.ok;
}

function sessionsClosedText(r: AdminSessionsClosed): string {
  return r.sessions_closed === null
    ? `live sessions could not be closed: ${sanitizeForTerminal(r.sessions_close_error ?? 'session control unavailable')}`
    : `${r.sessions_closed} live session(s) closed`;
}

function auditLine(e: AdminAuditEntry): string {
  const details = Object.keys(e.details).length > 0 ? ` ${terminalSafeJson(e.details)}` : '';
  return `${col(e.at)}  ${col(e.action, 22)} ${col(e.target, 24)} ${col(e.actor)}${details}`;
}

async function dispatch(
  api: AdminApiClient,
  positionals: string[],
  values: Values,
  io: CliIo,
): Promise<ExitCode> {
  // `transcripts purge` reads as well as `transcript purge`: either number names the area.
  const area = positionals[0]?.replace(/^(user|session|transcript)s$/, '$1');
  const action = area === 'audit' ? 'list' : need(positionals, 1, `an action for "${area}"`);
  switch (`${area} ${action}`) {
    case 'user add': {
      const name = username(positionals);
      const key = await publicKey(values);
      const created = await api.createUser({
        username: name,
        password: await newPassword(values, io),
        publicKey: key,
      });
      return print(io, values, created, () => [
        `created ${col(created.username)}, key fingerprint ${col(created.fingerprint)}`,
      ]);
    }
    case 'user list': {
      const users: AdminUser[] = [];
      let cursor: string | undefined;
      do {
        const page = await api.listUsers({
          ...(values.query !== undefined ? { query: values.query } : {}),
          ...(limit(values) !== undefined ? { limit: limit(values) } : {}),
          ...(cursor !== undefined ? { cursor } : {}),
        });
        users.push(...page.users);
        cursor = page.next_cursor ?? undefined;
        if (values.all !== true && cursor !== undefined) {
          if (values.json !== true) writeLine(io.stderr, `(more: --all for every page)`);
          break;
        }
      } while (cursor !== undefined);
      return print(io, values, { users }, () =>
        users.length === 0 ? ['no users'] : users.map(userLine),
      );
    }
    case 'user show': {
      const u = await api.getUser(username(positionals));
      return print(io, values, u, () => [userLine(u), `created ${col(u.created_at)}`]);
    }
    case 'user disable': {
      const r = await api.disableUser(username(positionals));
      return print(io, values, r, () => [`disabled ${col(r.username)}; ${sessionsClosedText(r)}`]);
    }
    case 'user enable': {
      const r = await api.enableUser(username(positionals));
      return print(io, values, r, () => [`enabled ${col(r.username)}`]);
    }
    case 'user password': {
      const name = username(positionals);
      const r = await api.resetPassword(name, await newPassword(values, io));
      return print(io, values, r, () => [
        `password of ${col(r.username)} replaced; ${sessionsClosedText(r)}`,
      ]);
    }
    case 'user set-key': {
      const u = await api.setPublicKey(username(positionals), await publicKey(values));
      return print(io, values, u, () => [
        `key of ${col(u.username)} replaced: ${col(u.fingerprint)} (from the next login on); ` +
          sessionsClosedText(u),
      ]);
    }
    case 'user delete': {
      const r = await api.deleteUser(username(positionals));
      return print(io, values, r, () => [
        `deactivated ${col(r.username)}; messages kept; ${sessionsClosedText(r)}`,
      ]);
    }
    case 'user unthrottle': {
      const name = username(positionals);
      await api.clearThrottle(name);
      return print(io, values, { username: name }, () => [`login throttle of ${name} cleared`]);
    }
    case 'session list': {
      const { sessions } =
        values.user !== undefined
          ? await api.listUserSessions(values.user)
          : await api.listSessions();
      return print(io, values, { sessions }, () =>
        sessions.length === 0 ? ['no live sessions'] : sessions.map(sessionLine),
      );
    }
    case 'session close': {
      const r = await api.closeSession(need(positionals, 2, 'SESSION_ID'));
      return print(io, values, r, () => [
        r.listed
          ? `${r.closed} session(s) closed`
          : 'close ordered on every gateway; the session was not listed as live (already ended, or not yet registered)',
      ]);
    }
    case 'session close-user': {
      const r = await api.closeUserSessions(username(positionals));
      return print(io, values, r, () => [`${r.closed} session(s) closed`]);
    }
    case 'transcript list': {
      const name = username(positionals);
      const sessions: AdminTranscriptSession[] = [];
      let cursor: string | undefined;
      do {
        const page = await api.listTranscripts(name, {
          ...(limit(values) !== undefined ? { limit: limit(values) } : {}),
          ...(cursor !== undefined ? { cursor } : {}),
        });
        sessions.push(...page.sessions);
        cursor = page.next_cursor ?? undefined;
        if (values.all !== true && cursor !== undefined) {
          if (values.json !== true) writeLine(io.stderr, `(more: --all for every page)`);
          break;
        }
      } while (cursor !== undefined);
      return print(io, values, { sessions }, () =>
        sessions.length === 0 ? ['no sessions'] : sessions.map(transcriptLine),
      );
    }
    case 'transcript export': {
      const text = await api.exportTranscript(need(positionals, 2, 'SESSION_ID'));
      if (values.out === undefined) {
        // Exact bytes for a pipe or a file (the records are verified byte for byte); a
        // terminal only reads them, so it gets them sanitized line by line.
        io.stdout.write(io.stdout.isTTY === true ? sanitizeLines(text) : text);
      } else {
        await writeFile(values.out, text, { mode: 0o600 });
        writeLine(
          io.stderr,
          `wrote ${values.out}; check it with: securechat verify-transcript ${values.out}`,
        );
      }
      return EXIT.ok;
    }
    case 'transcript purge':
      return purgeTranscripts(api, values, io);
    case 'audit list': {
      const r = await api.listAudit({
        ...(limit(values) !== undefined ? { limit: limit(values) } : {}),
      });
      return print(io, values, r, () =>
        r.entries.length === 0 ? ['no entries'] : r.entries.map(auditLine),
      );
    }
    default:
      throw new UsageError(`unknown admin command "${positionals.slice(0, 2).join(' ')}"`, 'admin');
  }
}
