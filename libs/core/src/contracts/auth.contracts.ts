/** What the gateway asks the auth service, and what it answers. */

/** §3 step 4: a decrypted login, with where it came from (for throttling per address). */
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
  | { readonly ok: true; readonly username: string; readonly publicKey: string }
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
