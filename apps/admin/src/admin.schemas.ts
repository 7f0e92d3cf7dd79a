/**
 * What the admin API accepts, checked with zod before anything runs. Shapes and the cheap
 * rules of docs/PROTOCOL.md §4.4 (name pattern, password length) are checked here so that every
 * broken field is reported at once; the key policy (algorithm, size, canonical DER) stays with auth
 * (account-rules.ts, behind UserAccountService), the one place that decides it for
 * registration too.
 */
import { z } from 'zod';

import {
  decodeCanonicalBase64,
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  USERNAME_PATTERN,
} from '@securechat/protocol';

import { type AdminFieldError, AdminBadRequestError } from './errors/admin-bad-request.error';

/** Largest page any list endpoint returns. */
export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;

/** Far above any SPKI of an allowed key (RSA-16384 is ~2 KiB); bounds the decoding work. */
const MAX_PUBLIC_KEY_TEXT = 16 * 1024;

const PEM_PUBLIC_KEY =
  /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\s*$/;

const username = z.string().regex(USERNAME_PATTERN, { error: 'must match ^[a-z0-9_]{3,32}$' });

const password = z.string().refine(
  (p) => {
    if (!p.isWellFormed()) return false;
    const bytes = Buffer.byteLength(p, 'utf8');
    return bytes >= PASSWORD_MIN_BYTES && bytes <= PASSWORD_MAX_BYTES;
  },
  { error: `must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8` },
);

/** SPKI DER, given as canonical base64 or as a `PUBLIC KEY` PEM block. */
const publicKey = z
  .string()
  .max(MAX_PUBLIC_KEY_TEXT, { error: 'is too long' })
  .transform((text, context) => {
    const pem = PEM_PUBLIC_KEY.exec(text.trim());
    const der = pem?.[1] === undefined ? decodeCanonicalBase64(text) : pemBody(pem[1]);
    if (der === undefined || der.length === 0) {
      context.addIssue({
        code: 'custom',
        message: 'must be base64 of an SPKI DER key or a PUBLIC KEY PEM block',
      });
      return z.NEVER;
    }
    return der;
  });

function pemBody(body: string): Buffer | undefined {
  return decodeCanonicalBase64(body.replace(/\r?\n/g, ''));
}

const pageLimit = z
  .string()
  .regex(/^\d{1,4}$/, { error: 'must be a whole number' })
  .transform(Number)
  .pipe(
    z
      .number()
      .min(1, { error: 'must be at least 1' })
      .max(MAX_PAGE, { error: `must be at most ${MAX_PAGE}` }),
  )
  .default(DEFAULT_PAGE);

export const createUserBody = z.strictObject({
  username,
  password,
  public_key: publicKey,
});

export const passwordBody = z.strictObject({ password });

export const publicKeyBody = z.strictObject({ public_key: publicKey });

export const userListQuery = z.object({
  /** Substring of the name; the name alphabet only, so it is never a pattern. */
  query: z
    .string()
    .regex(/^[a-z0-9_]{1,32}$/, { error: 'must be 1-32 of a-z 0-9 _' })
    .optional(),
  limit: pageLimit,
  /** The `next_cursor` of the previous page: the last name on it. */
  cursor: username.optional(),
});

/** Largest id a Postgres bigint holds: a longer cursor names no entry (and would overflow). */
const MAX_BIGINT = 9223372036854775807n;

/** Latest time a JavaScript Date can hold, in ms since the epoch. */
export const MAX_DATE_MS = 8.64e15;

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const auditListQuery = z.object({
  limit: pageLimit,
  /** The `next_cursor` of the previous page: the last entry's id. */
  cursor: z
    .string()
    .refine((id) => /^\d{1,19}$/.test(id) && BigInt(id) <= MAX_BIGINT, {
      error: 'must be an entry id',
    })
    .optional(),
});

/**
 * The opaque cursor of a transcript listing: `<startedAt ms>.<sessionId>` of the last session
 * of a page. Both parts are needed: sessions can start in the same millisecond.
 */
export function transcriptCursor(position: { startedAt: number; sessionId: string }): string {
  return `${position.startedAt}.${position.sessionId}`;
}

const TRANSCRIPT_CURSOR = /^(\d{1,16})\.([A-Za-z0-9_-]{1,64})$/;

export const transcriptListQuery = z.object({
  /** TranscriptExportService pages at most 200 sessions. */
  limit: pageLimit.pipe(z.number().max(200, { error: 'must be at most 200' })),
  /** The `next_cursor` of the previous page (see transcriptCursor). */
  cursor: z
    .string()
    .transform((text, context) => {
      const match = TRANSCRIPT_CURSOR.exec(text);
      const startedAt = Number(match?.[1]);
      if (match?.[2] === undefined || !(startedAt <= MAX_DATE_MS)) {
        context.addIssue({ code: 'custom', message: 'must be a next_cursor of this listing' });
        return z.NEVER;
      }
      return { startedAt, sessionId: match[2] };
    })
    .optional(),
  /** Paged by time alone, it skipped sessions; refused so that an old client does not loop. */
  before: z
    .unknown()
    .refine(() => false, { error: 'is replaced by cursor (next_cursor of the previous page)' })
    .optional(),
});

/** Sessions one purge call takes (TranscriptRetentionService: one transaction each). */
export const PURGE_LIMIT_MAX = 1000;
export const PURGE_LIMIT_DEFAULT = 100;

/** `<ms>.<sessionId>` of the last session of a dry-run page: where the next one starts. */
export function purgeCursor(position: { at: number; sessionId: string }): string {
  return `${position.at}.${position.sessionId}`;
}

/**
 * `POST /admin/transcripts/purge`. The cutoff is an instant, not an age: a dry run and the
 * purge that follows it name the same sessions, a retried call purges no more than the first,
 * and the audit log records exactly what was asked (an age would move with the clock between
 * the calls). `securechat admin transcript purge --older-than DAYS` computes it for the user.
 */
export const transcriptPurgeBody = z
  .strictObject({
    /** Sessions that ended (never ended: started) before this instant. */
    before: z.iso
      .datetime({
        offset: true,
        error: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-01-01T00:00:00Z',
      })
      .transform((text) => Date.parse(text))
      .describe(
        'sessions that ended (never ended: started) before this instant; not in the future',
      ),
    /** List what would be purged; delete nothing. */
    dry_run: z
      .boolean({ error: 'must be true or false' })
      .default(false)
      .describe('list the sessions that would be purged, delete nothing'),
    /** Sessions this call purges (or lists), oldest first. */
    limit: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be a whole number' })
      .min(1, { error: 'must be at least 1' })
      .max(PURGE_LIMIT_MAX, { error: `must be at most ${PURGE_LIMIT_MAX}` })
      .default(PURGE_LIMIT_DEFAULT)
      .describe('sessions this call purges (or lists), oldest first'),
    /** Dry run: the `next_cursor` of the previous page. */
    cursor: z
      .string()
      .transform((text, context) => {
        const match = TRANSCRIPT_CURSOR.exec(text);
        const at = Number(match?.[1]);
        if (match?.[2] === undefined || !(at <= MAX_DATE_MS)) {
          context.addIssue({ code: 'custom', message: 'must be a next_cursor of a dry run' });
          return z.NEVER;
        }
        return { at, sessionId: match[2] };
      })
      .optional()
      .describe('dry run only: next_cursor of the previous page'),
  })
  .superRefine((body, context) => {
    // A purge always takes the oldest sessions left: only a listing has pages.
    if (body.cursor !== undefined && !body.dry_run) {
      context.addIssue({ code: 'custom', path: ['cursor'], message: 'only with dry_run: true' });
    }
  });

/** A session id as the gateway makes them; anything else cannot name a session. */
export const sessionIdParams = z.object({
  sessionId: z.string().regex(SESSION_ID, { error: 'is not a session id' }),
});

/** The parsed value, or AdminBadRequestError listing every invalid field (never a value). */
export function parseAdminInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  // reportInput: only to tell a missing value from a wrong one; no message quotes it.
  const parsed = schema.safeParse(input, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new AdminBadRequestError(parsed.error.issues.flatMap(fieldErrors));
}

/** Longest field name quoted back: an unknown key is the only input an error names. */
const MAX_FIELD_NAME = 64;

/** zod's messages for type and key errors can quote the input; ours never do. */
function fieldErrors(issue: z.core.$ZodIssue): AdminFieldError[] {
  const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
  switch (issue.code) {
    case 'invalid_type':
      return [
        { field, message: issue.input === undefined ? 'is required' : `must be ${issue.expected}` },
      ];
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        field: key.slice(0, MAX_FIELD_NAME),
        message: 'is not a known field',
      }));
    default:
      return [{ field, message: issue.message }];
  }
}
