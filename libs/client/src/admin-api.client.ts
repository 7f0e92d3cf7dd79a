/**
 * A typed client for the admin HTTP API (`/admin` on the auth service or the embedded
 * server; its OpenAPI document is at `/admin/openapi.json`). One method per endpoint; the
 * results are the API's JSON as it is sent (snake_case), typed by @securechat/admin-api. Every
 * failure is an AdminApiError.
 */
import {
  type AdminAuditPage,
  type AdminPasswordReset,
  type AdminPurgeResult,
  type AdminSessionClose,
  type AdminSessionList,
  type AdminTranscriptPage,
  type AdminUser,
  type AdminUserDeleted,
  type AdminUserDisabled,
  type AdminUserEnabled,
  type AdminUserKeySet,
  type AdminUserPage,
  type AdminUserSessionsClose,
  adminErrorReply,
} from '@securechat/admin-api';

import { AdminApiError } from './admin-api-error';

// The results' types are the API's own (@securechat/admin-api), under the names this client
// has always exported them by.
export type {
  AdminAuditEntry,
  AdminPurgedSession,
  AdminPurgeResult,
  AdminPurgeTotals,
  AdminSession,
  AdminSessionsClosed,
  AdminTranscriptSession,
  AdminUser,
} from '@securechat/admin-api';

export interface AdminPurgeOptions {
  /** The cutoff: sessions that ended (never ended: started) before it. */
  readonly before: Date | string;
  /** List, delete nothing. */
  readonly dryRun?: boolean;
  /** Sessions per call, 1-1000 (server default 100). */
  readonly limit?: number;
  /** Dry run: `next_cursor` of the previous page. */
  readonly cursor?: string;
}

export interface Page {
  readonly limit?: number;
  readonly cursor?: string;
}

export interface AdminApiClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (with or without `/admin`). */
  readonly baseUrl: string;
  /** ADMIN_TOKEN (embedded mode: the `admin-token` file in the data directory). */
  readonly token: string;
  /** Per call; default 30 s. */
  readonly timeoutMs?: number;
  /** For tests: a stand-in for the global fetch. */
  readonly fetch?: typeof fetch;
}

/** A public key for createUser/setPublicKey: SPKI DER bytes, or base64 of them, or a PEM block. */
export type AdminPublicKey = Uint8Array | string;

export class AdminApiClient {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: AdminApiClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '').replace(/\/admin$/, '') + '/admin';
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#fetch = options.fetch ?? fetch;
  }

  createUser(user: {
    username: string;
    password: string;
    publicKey: AdminPublicKey;
  }): Promise<AdminUser> {
    return this.#json('POST', '/users', {
      username: user.username,
      password: user.password,
      public_key: keyText(user.publicKey),
    });
  }

  listUsers(options: Page & { query?: string } = {}): Promise<AdminUserPage> {
    return this.#json('GET', `/users${queryString(options)}`);
  }

  getUser(username: string): Promise<AdminUser> {
    return this.#json('GET', `/users/${segment(username)}`);
  }

  disableUser(username: string): Promise<AdminUserDisabled> {
    return this.#json('POST', `/users/${segment(username)}/disable`);
  }

  enableUser(username: string): Promise<AdminUserEnabled> {
    return this.#json('POST', `/users/${segment(username)}/enable`);
  }

  /** Sets a new password and ends the user's live sessions. */
  resetPassword(username: string, password: string): Promise<AdminPasswordReset> {
    return this.#json('POST', `/users/${segment(username)}/password`, { password });
  }

  /** Replaces the key (from the next login on) and ends the user's live sessions. */
  setPublicKey(username: string, publicKey: AdminPublicKey): Promise<AdminUserKeySet> {
    return this.#json('PUT', `/users/${segment(username)}/public-key`, {
      public_key: keyText(publicKey),
    });
  }

  deleteUser(username: string): Promise<AdminUserDeleted> {
    return this.#json('DELETE', `/users/${segment(username)}`);
  }

  async clearThrottle(username: string): Promise<void> {
    await this.#call('DELETE', `/users/${segment(username)}/throttle`);
  }

  listSessions(): Promise<AdminSessionList> {
    return this.#json('GET', '/sessions');
  }

  listUserSessions(username: string): Promise<AdminSessionList> {
    return this.#json('GET', `/users/${segment(username)}/sessions`);
  }

  /**
   * Orders the session closed on every gateway. `listed: false` (and `closed: 0`): presence
   * did not know the session; the order went out all the same.
   */
  closeSession(sessionId: string): Promise<AdminSessionClose> {
    return this.#json('DELETE', `/sessions/${segment(sessionId)}`);
  }

  closeUserSessions(username: string): Promise<AdminUserSessionsClose> {
    return this.#json('DELETE', `/users/${segment(username)}/sessions`);
  }

  /** Newest first; pass `next_cursor` back as `cursor` for the next (older) page. */
  listTranscripts(username: string, options: Page = {}): Promise<AdminTranscriptPage> {
    return this.#json('GET', `/users/${segment(username)}/transcripts${queryString(options)}`);
  }

  /** JSON lines in the transcript-log format: `parseTranscript` and `verifyTranscriptLog` read it. */
  async exportTranscript(sessionId: string): Promise<string> {
    return (await this.#call('GET', `/transcripts/${segment(sessionId)}`)).text();
  }

  /**
   * Deletes the stored records of at most `limit` sessions that ended before `before`, oldest
   * first, keeping each session's row, chain heads, receipt and countersignature; call again
   * while `more` is true. With `dryRun` it lists them instead and deletes nothing. Purged
   * sessions can no longer be exported (`transcript_purged`).
   */
  purgeTranscripts(options: AdminPurgeOptions): Promise<AdminPurgeResult> {
    const before = options.before instanceof Date ? options.before.toISOString() : options.before;
    return this.#json('POST', '/transcripts/purge', {
      before,
      ...(options.dryRun === undefined ? {} : { dry_run: options.dryRun }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    });
  }

  listAudit(options: Page = {}): Promise<AdminAuditPage> {
    return this.#json('GET', `/audit${queryString(options)}`);
  }

  openApi(): Promise<Record<string, unknown>> {
    return this.#json('GET', '/openapi.json');
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.#call(method, path, body)).json()) as T;
  }

  async #call(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await this.#fetch(this.#base + path, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      // Never the request itself in the message: its body may hold a password.
      throw new AdminApiError(0, 'unreachable', `admin API not reachable at ${this.#base}`, [], {
        cause: error,
      });
    }
    if (response.ok) return response;
    throw await apiError(response);
  }
}

async function apiError(response: Response): Promise<AdminApiError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const error = adminErrorReply.safeParse(body);
  if (error.success) {
    const { code, message, errors } = error.data;
    return new AdminApiError(response.status, code, message, errors ?? []);
  }
  return new AdminApiError(
    response.status,
    `http_${response.status}`,
    `admin API answered ${response.status}`,
  );
}

function keyText(key: AdminPublicKey): string {
  return typeof key === 'string' ? key : Buffer.from(key).toString('base64');
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function queryString(params: object): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string' || typeof value === 'number') search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
