/** What the gateway asks the auth service, and what it answers. */

/**
 * PROTOCOL.md §3 step 4: a decrypted login, with where it came from (for throttling per address).
 */
export interface LoginCommand {
  readonly action: 'login' | 'register';
  readonly username: string;
  readonly password: string;
  /** base64 of the user's signature over `label("SecureChat v1 client auth") || H2`. */
  readonly signature: string;
  /** base64 SPKI DER; `register` only. */
  readonly publicKey?: string;
  /** base64 of H2. */
  readonly h2: string;
  /** The client's IP address as the gateway saw it. */
  readonly sourceAddress: string;
}

export type LoginFailure =
  'auth_failed' | 'rate_limited' | 'forbidden' | 'conflict' | 'bad_request';

export type LoginResult =
  | {
      readonly ok: true;
      readonly username: string;
      readonly publicKey: string;
      /**
       * The account's credential generation when the login was decided (AccountState): the
       * gateway keeps it with the session and closes the session once the stored one differs.
       * Absent from an auth service older than it; such a session is rechecked on its
       * account's state only.
       */
      readonly credentialsVersion?: number;
    }
  | { readonly ok: false; readonly code: LoginFailure; readonly retryAfter?: number };

export interface GetKeyQuery {
  readonly user: string;
}

export type GetKeyResult =
  | {
      readonly ok: true;
      readonly user: string;
      readonly publicKey: string;
      readonly fingerprint: string;
    }
  | { readonly ok: false; readonly code: 'not_found' };

/** Most usernames one `auth.account_states` query may name: the bound on one request's work. */
export const ACCOUNT_STATES_MAX_USERNAMES = 500;

/** `auth.account_states`: the gateway asks after the accounts of the sessions it holds. */
export interface AccountStatesQuery {
  /** Distinct usernames, at most ACCOUNT_STATES_MAX_USERNAMES. */
  readonly usernames: readonly string[];
}

/** One account as a session's recheck needs it. */
export interface AccountState {
  readonly username: string;
  /** `active` may log in; a session of a `disabled` or `deleted` account must end. */
  readonly state: 'active' | 'disabled' | 'deleted';
  /**
   * Raised by every change that ends the sessions opened before it (password reset, key
   * change, disable, delete): a session whose login saw another value must end.
   */
  readonly credentialsVersion: number;
}

/**
 * The accounts asked after, in no particular order. A name that was never an account is left
 * out: no session can belong to it, so the gateway ends any that claims to.
 */
export type AccountStatesResult =
  | { readonly ok: true; readonly accounts: readonly AccountState[] }
  | { readonly ok: false; readonly code: 'bad_request' };

/**
 * What the gateway really sends as `auth.login`: a LoginCommand whose secrets (password,
 * signature, H2, the key to register) are sealed to the auth service's login-seal key
 * (libs/core login-seal), so that the transport — Redis, its append-only file, its backups —
 * never holds them in a form that can be read or replayed. The other members are in clear and
 * bound to the ciphertext as associated data.
 */
export interface SealedLoginCommand {
  /** Format version (1). */
  readonly v: number;
  /** 16 random bytes, base64url: refused when seen before. */
  readonly id: string;
  /** When the gateway sealed it, ms since the Unix epoch: refused when too old (or too new). */
  readonly ts: number;
  readonly action: LoginCommand['action'];
  readonly username: string;
  readonly sourceAddress: string;
  /** base64 of the gateway's ephemeral X25519 public key (32 bytes, raw). */
  readonly epk: string;
  /** base64 of the AES-256-GCM ciphertext of the secrets, followed by its 16-byte tag. */
  readonly ct: string;
}

/**
 * What auth answers a sealed login: a LoginResult, and on success a tag (base64 HMAC-SHA256
 * under a key only the sealing gateway and auth can derive), so that nobody else who can
 * publish on the gateway's reply channel can forge an `ok`.
 */
export type SealedLoginResult =
  | (Extract<LoginResult, { ok: true }> & { readonly tag: string })
  | Extract<LoginResult, { ok: false }>;
