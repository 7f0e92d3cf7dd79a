/**
 * What the admin HTTP API answers, written once: the server types its views from these
 * (apps/admin admin-views.ts), its OpenAPI document is derived from them (admin-openapi.ts),
 * and the client's result types are inferred from them (libs/client admin-api.client.ts).
 * JSON as it is sent: snake_case like the request bodies, instants as ISO 8601 in UTC,
 * nothing secret (no hash, no key bytes: the fingerprint names the key).
 */
import { z } from 'zod';

/** An instant as the server writes it (`Date.prototype.toISOString`). */
const instant = z.iso.datetime();

/** How a stored session was kept: every record, or only digests (no export). */
const transcriptMode = z.enum(['full', 'digest']);
const transcriptStatus = z.enum(['open', 'agreed', 'disputed', 'incomplete']);
const count = z.number().int().min(0);

export const adminUser = z.object({
  username: z.string(),
  fingerprint: z.string().meta({ description: '`sha256:` + hex of the SPKI', example: 'sha256:…' }),
  disabled: z.boolean(),
  deleted: z.boolean(),
  deleted_at: instant.nullable(),
  created_at: instant,
});

/**
 * How a change that ends the user's live sessions (disable, delete, password reset, key
 * change) went for them. The change itself is made and audited either way.
 */
export const adminSessionsClosed = z.object({
  sessions_closed: z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      'live sessions ordered closed (shutting_down); null: the gateways could not be told ' +
        '(they still end the sessions at their next recheck, SECURECHAT_SESSION_RECHECK_SECONDS)',
    ),
  sessions_close_error: z
    .string()
    .optional()
    .describe(
      'only when sessions_closed is null: how to close them now ' +
        '(DELETE /admin/users/{username}/sessions)',
    ),
});

export const adminUserDisabled = z.object({
  username: z.string(),
  disabled: z.literal(true),
  ...adminSessionsClosed.shape,
});

export const adminUserEnabled = z.object({ username: z.string(), disabled: z.literal(false) });

export const adminUserDeleted = z.object({
  username: z.string(),
  deleted: z.literal(true),
  ...adminSessionsClosed.shape,
});

export const adminPasswordReset = z.object({
  username: z.string(),
  password_reset: z.literal(true),
  ...adminSessionsClosed.shape,
});

/** The account with its new fingerprint, and how ending the sessions of the old key went. */
export const adminUserKeySet = adminUser.extend(adminSessionsClosed.shape);

const nextCursor = z.string().nullable();

export const adminUserPage = z.object({
  users: z.array(adminUser),
  next_cursor: nextCursor.describe('pass as `cursor` for the next page; null on the last page'),
});

export const adminSession = z.object({
  session_id: z.string(),
  username: z.string(),
  gateway: z.string(),
  source_address: z.string(),
  since: instant,
});

export const adminSessionList = z.object({ sessions: z.array(adminSession) });

export const adminSessionClose = z.object({
  closed: count.describe('how many listed sessions the order names'),
  listed: z.boolean().describe('whether presence knew the session'),
});

export const adminUserSessionsClose = z.object({
  closed: count.describe('how many were asked to close'),
});

export const adminTranscriptSession = z.object({
  session_id: z.string(),
  username: z.string(),
  gateway: z.string(),
  mode: transcriptMode,
  status: transcriptStatus,
  started_at: instant,
  ended_at: instant.nullable(),
  records_purged_at: instant
    .nullable()
    .describe('when retention deleted the records (the receipt is kept; no export); null: kept'),
});

export const adminTranscriptPage = z.object({
  sessions: z.array(adminTranscriptSession),
  next_cursor: nextCursor.describe(
    'pass as `cursor` for the next (older) page; null on the last page',
  ),
});

/** A session a purge deleted (or, dry run, would delete) the records of. */
export const adminPurgedSession = z.object({
  session_id: z.string(),
  username: z.string(),
  mode: transcriptMode,
  status: transcriptStatus,
  started_at: instant,
  ended_at: instant.nullable(),
  receipt: z
    .boolean()
    .describe(
      'true: the receipt is kept and still verifies against the stored chain heads; ' +
        'false: the session had none (incomplete or never ended), nothing signed remains',
    ),
  countersigned: z.boolean(),
  chunks: count,
  bytes: count,
});

export const adminPurgeTotals = z.object({
  sessions: count,
  chunks: count,
  bytes: count,
  with_receipt: count,
  without_receipt: count,
});

/** The answer of one purge call (`POST /admin/transcripts/purge`). */
export const adminPurgeResult = z.object({
  before: instant,
  dry_run: z.boolean(),
  sessions: z
    .array(adminPurgedSession)
    .describe('the sessions this call purged (a dry run: would purge), oldest first'),
  totals: adminPurgeTotals,
  more: z.boolean().describe('more sessions are due: call again (a dry run: with next_cursor)'),
  next_cursor: nextCursor.describe('dry run: pass as `cursor` for the next page; null otherwise'),
});

/** JSON facts about one audited action. */
export const adminAuditDetails = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).nullable(),
);

export const adminAuditEntry = z.object({
  id: z.string(),
  at: instant,
  actor: z.string().meta({ description: '`token:` + a hash prefix of the token used' }),
  action: z.string(),
  target: z.string(),
  details: adminAuditDetails,
  source_address: z.string().nullable(),
});

export const adminAuditPage = z.object({
  entries: z.array(adminAuditEntry),
  next_cursor: nextCursor.describe(
    'pass as `cursor` for the next (older) page; null on the last page',
  ),
});

/** The stable error codes: clients branch on these, never on the message. */
export const adminErrorCode = z.enum([
  'bad_request',
  'unauthorized',
  'not_found',
  'user_not_found',
  'session_not_found',
  'transcript_not_found',
  'user_exists',
  'transcript_not_exportable',
  'transcript_purged',
  'payload_too_large',
  'unsupported_media_type',
  'internal',
  'server_key_unavailable',
]);

/** One invalid input of a request: where it is and what rule it broke, never its value. */
export const adminFieldError = z.object({
  field: z
    .string()
    .describe('dotted path in the body, or the query/path parameter; `body` for the whole body'),
  message: z.string(),
});

/** Every error: a stable code, a message, and with `bad_request` each invalid input. */
export const adminErrorBody = z.object({
  code: adminErrorCode,
  message: z.string(),
  errors: z
    .array(adminFieldError)
    .optional()
    .describe('only with bad_request: one entry per invalid input'),
});

/**
 * An error body as a client reads it: a code it does not know yet (from a newer server) is still
 * the API's error, with its message.
 */
export const adminErrorReply = adminErrorBody.extend({ code: z.string() });

export type AdminUser = z.infer<typeof adminUser>;
export type AdminSessionsClosed = z.infer<typeof adminSessionsClosed>;
export type AdminUserDisabled = z.infer<typeof adminUserDisabled>;
export type AdminUserEnabled = z.infer<typeof adminUserEnabled>;
export type AdminUserDeleted = z.infer<typeof adminUserDeleted>;
export type AdminPasswordReset = z.infer<typeof adminPasswordReset>;
export type AdminUserKeySet = z.infer<typeof adminUserKeySet>;
export type AdminUserPage = z.infer<typeof adminUserPage>;
export type AdminSession = z.infer<typeof adminSession>;
export type AdminSessionList = z.infer<typeof adminSessionList>;
export type AdminSessionClose = z.infer<typeof adminSessionClose>;
export type AdminUserSessionsClose = z.infer<typeof adminUserSessionsClose>;
export type AdminTranscriptSession = z.infer<typeof adminTranscriptSession>;
export type AdminTranscriptPage = z.infer<typeof adminTranscriptPage>;
export type AdminPurgedSession = z.infer<typeof adminPurgedSession>;
export type AdminPurgeTotals = z.infer<typeof adminPurgeTotals>;
export type AdminPurgeResult = z.infer<typeof adminPurgeResult>;
export type AdminAuditDetails = z.infer<typeof adminAuditDetails>;
export type AdminAuditEntry = z.infer<typeof adminAuditEntry>;
export type AdminAuditPage = z.infer<typeof adminAuditPage>;
export type AdminErrorCode = z.infer<typeof adminErrorCode>;
export type AdminFieldError = z.infer<typeof adminFieldError>;
export type AdminErrorBody = z.infer<typeof adminErrorBody>;
