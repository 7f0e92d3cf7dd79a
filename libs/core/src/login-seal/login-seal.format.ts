/**
 * The login seal, version 1: how a gateway hands a login's secrets to the auth service across
 * a transport that must not learn them (Redis Streams, whose entries reach the append-only
 * file and its backups). Public-key encryption to auth's long-term X25519 key, in the manner
 * of HPKE base mode, from node:crypto primitives only:
 *
 *   e          fresh X25519 key pair per command (the gateway's)
 *   Z          X25519(e, A), A = auth's login-seal public key; an all-zero Z is refused
 *   okm        HKDF-SHA256(ikm = Z, salt = e_pub || A, info = LABEL " keys", 76 bytes)
 *   key, iv    okm[0..32), okm[32..44): AES-256-GCM, 16-byte tag; each key seals one message
 *   replyKey   okm[44..76): HMAC-SHA256 key for auth's answer (see replyTag)
 *   aad        LABEL, 0x00, then length-prefixed (u32 BE) id, ts (u64 BE), action, username,
 *              sourceAddress: every clear member of the envelope except e_pub, which the key
 *              derivation binds
 *   plaintext  JSON {password, signature, h2[, publicKey]}
 *
 * The envelope's `v` names the version; a later one can change any of this and be told apart.
 * Freshness (`ts` within LOGIN_SEAL_MAX_AGE_MS of the opener's clock) is checked here; that an
 * `id` is used once is the opener's job (LoginSealReplayRepository), since it needs shared
 * state.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

import { decodeCanonicalBase64, x25519KeyPair } from '@securechat/protocol';
import { z } from 'zod';

import {
  type LoginCommand,
  type LoginResult,
  type SealedLoginCommand,
  type SealedLoginResult,
} from '../contracts/auth.contracts';

export const LOGIN_SEAL_VERSION = 1;
const LABEL = 'SecureChat login-seal v1';
/** A sealed login older (or newer, for clock skew) than this is refused. */
export const LOGIN_SEAL_MAX_AGE_MS = 60_000;
/**
 * How long an id is remembered: a command is accepted while |now − ts| ≤ MAX_AGE, so from
 * its first use until it is stale at most 2 × MAX_AGE pass.
 */
export const LOGIN_SEAL_REPLAY_TTL_MS = 2 * LOGIN_SEAL_MAX_AGE_MS;

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const REPLY_KEY_BYTES = 32;
const X25519_BYTES = 32;
const ID_BYTES = 16;

/** Why a sealed login was refused; safe to log (never says anything about the contents). */
export type LoginSealRefusal = 'malformed' | 'version' | 'stale' | 'undecryptable' | 'replayed';

/** The secrets that travel sealed. */
interface SealedSecrets {
  readonly password: string;
  readonly signature: string;
  readonly h2: string;
  readonly publicKey?: string;
}

/** A sealed command as the gateway keeps it until the answer comes. */
export interface SealedLogin {
  readonly envelope: SealedLoginCommand;
  /** Authenticates auth's answer (see replyTag). */
  readonly replyKey: Buffer;
}

/** A sealed command as auth opened it. */
export interface OpenedLogin {
  /** The LoginCommand, to be checked like any payload (auth.schemas.ts). */
  readonly command: LoginCommand;
  readonly id: string;
  readonly ts: number;
  readonly replyKey: Buffer;
}

export type OpenResult =
  | { readonly ok: true; readonly opened: OpenedLogin }
  | { readonly ok: false; readonly reason: LoginSealRefusal };

/** Canonical base64 (the protocol's rule, decodeCanonicalBase64), of `bytes` bytes when given. */
function decodeBase64(text: string, bytes?: number): Buffer | undefined {
  const decoded = decodeCanonicalBase64(text);
  return decoded !== undefined && (bytes === undefined || decoded.length === bytes)
    ? decoded
    : undefined;
}

const envelopeSchema = z.strictObject({
  v: z.number(),
  id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  ts: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  action: z.enum(['login', 'register']),
  username: z.string(),
  sourceAddress: z.string(),
  epk: z.string(),
  ct: z.string(),
});

const secretsSchema = z.strictObject({
  password: z.string(),
  signature: z.string(),
  h2: z.string(),
  publicKey: z.string().optional(),
});

/** The raw 32 bytes of an X25519 public key. */
export function rawX25519(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== 'x25519') throw new Error('not an X25519 key');
  const { x } = publicKey.export({ format: 'jwk' });
  return Buffer.from(x ?? '', 'base64url');
}

/** An X25519 public key from its raw 32 bytes. */
export function x25519FromRaw(raw: Buffer): KeyObject {
  if (raw.length !== X25519_BYTES) throw new Error('an X25519 public key has 32 bytes');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

function lengthPrefixed(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function associatedData(header: Omit<SealedLoginCommand, 'v' | 'epk' | 'ct'>): Buffer {
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(header.ts));
  return Buffer.concat([
    Buffer.from(LABEL, 'utf8'),
    Buffer.from([0]),
    lengthPrefixed(header.id),
    ts,
    lengthPrefixed(header.action),
    lengthPrefixed(header.username),
    lengthPrefixed(header.sourceAddress),
  ]);
}

/** Key, IV and reply key from the shared secret; undefined for an all-zero (low-order) Z. */
function deriveKeys(
  shared: Buffer,
  ephemeralPublic: Buffer,
  recipientPublic: Buffer,
): { key: Buffer; iv: Buffer; replyKey: Buffer } | undefined {
  if (shared.every((byte) => byte === 0)) return undefined;
  const okm = Buffer.from(
    hkdfSync(
      'sha256',
      shared,
      Buffer.concat([ephemeralPublic, recipientPublic]),
      Buffer.from(`${LABEL} keys`, 'utf8'),
      KEY_BYTES + IV_BYTES + REPLY_KEY_BYTES,
    ),
  );
  return {
    key: okm.subarray(0, KEY_BYTES),
    iv: okm.subarray(KEY_BYTES, KEY_BYTES + IV_BYTES),
    replyKey: okm.subarray(KEY_BYTES + IV_BYTES),
  };
}

export interface SealOptions {
  /** The sealer's clock, ms since the Unix epoch. */
  readonly now: number;
  /** Tests only: a fixed id (base64url of 16 bytes) instead of a random one. */
  readonly id?: string;
  /** Tests only: the ephemeral private key instead of a fresh one. */
  readonly ephemeral?: KeyObject;
}

/** Seals `command` to auth's login-seal public key `recipient` (raw 32 bytes). */
export function sealLogin(
  command: LoginCommand,
  recipient: Buffer,
  options: SealOptions,
): SealedLogin {
  // Not generateKeyPairSync: exporting (rawX25519) a key whose generation job the GC is
  // finalizing deadlocks Node 20; x25519KeyPair imports 32 random bytes instead (see there).
  const ephemeral = options.ephemeral ?? x25519KeyPair().privateKey;
  const ephemeralPublic = rawX25519(createPublicKey(ephemeral));
  const shared = diffieHellman({ privateKey: ephemeral, publicKey: x25519FromRaw(recipient) });
  const keys = deriveKeys(shared, ephemeralPublic, recipient);
  if (!keys) throw new Error('the login-seal public key is not usable (low order)');
  const header = {
    id: options.id ?? randomBytes(ID_BYTES).toString('base64url'),
    ts: Math.trunc(options.now),
    action: command.action,
    username: command.username,
    sourceAddress: command.sourceAddress,
  };
  const secrets: SealedSecrets = {
    password: command.password,
    signature: command.signature,
    h2: command.h2,
    ...(command.publicKey === undefined ? {} : { publicKey: command.publicKey }),
  };
  const cipher = createCipheriv('aes-256-gcm', keys.key, keys.iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(header));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(secrets), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return {
    envelope: {
      v: LOGIN_SEAL_VERSION,
      ...header,
      epk: ephemeralPublic.toString('base64'),
      ct: ciphertext.toString('base64'),
    },
    replyKey: keys.replyKey,
  };
}

/** The recipient's side: its X25519 private key and the raw public key the sealer used. */
export interface LoginSealKeyPair {
  readonly privateKey: KeyObject;
  /** Raw 32 bytes. */
  readonly publicKey: Buffer;
}

/**
 * Opens a sealed login: shape, version, freshness against `now`, then decryption and the
 * associated data. Every refusal says only why, in one word.
 */
export function openLogin(payload: unknown, keys: LoginSealKeyPair, now: number): OpenResult {
  const parsed = envelopeSchema.safeParse(payload);
  if (!parsed.success) {
    const version = (payload as { v?: unknown } | null)?.v;
    const wrongVersion = typeof version === 'number' && version !== LOGIN_SEAL_VERSION;
    return { ok: false, reason: wrongVersion ? 'version' : 'malformed' };
  }
  const envelope = parsed.data;
  if (envelope.v !== LOGIN_SEAL_VERSION) return { ok: false, reason: 'version' };
  if (Math.abs(now - envelope.ts) > LOGIN_SEAL_MAX_AGE_MS) return { ok: false, reason: 'stale' };
  const ephemeralPublic = decodeBase64(envelope.epk, X25519_BYTES);
  const ciphertext = decodeBase64(envelope.ct);
  if (!ephemeralPublic || !ciphertext || ciphertext.length < TAG_BYTES) {
    return { ok: false, reason: 'malformed' };
  }
  let plaintext: string;
  let replyKey: Buffer;
  try {
    const shared = diffieHellman({
      privateKey: keys.privateKey,
      publicKey: x25519FromRaw(ephemeralPublic),
    });
    const derived = deriveKeys(shared, ephemeralPublic, keys.publicKey);
    if (!derived) return { ok: false, reason: 'undecryptable' };
    const decipher = createDecipheriv('aes-256-gcm', derived.key, derived.iv, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(associatedData(envelope));
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    plaintext = Buffer.concat([
      decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
    replyKey = derived.replyKey;
  } catch {
    // Wrong key, altered ciphertext or associated data, a point X25519 rejects.
    return { ok: false, reason: 'undecryptable' };
  }
  let secrets: SealedSecrets;
  try {
    const checked = secretsSchema.safeParse(JSON.parse(plaintext));
    if (!checked.success) return { ok: false, reason: 'malformed' };
    secrets = checked.data;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const command: LoginCommand = {
    action: envelope.action,
    username: envelope.username,
    password: secrets.password,
    signature: secrets.signature,
    ...(secrets.publicKey === undefined ? {} : { publicKey: secrets.publicKey }),
    h2: secrets.h2,
    sourceAddress: envelope.sourceAddress,
  };
  return { ok: true, opened: { command, id: envelope.id, ts: envelope.ts, replyKey } };
}

/**
 * HMAC-SHA256 of a successful answer under the command's reply key, base64. The credential
 * generation, when the answer has one, is one more length-prefixed field after the key (its
 * decimal digits): an answer without it is tagged as before it existed, so a gateway accepts
 * the answers of an auth service that does not send it yet, while whoever strips or alters it
 * on the way breaks the tag.
 */
export function replyTag(
  replyKey: Buffer,
  id: string,
  username: string,
  publicKey: string,
  credentialsVersion?: number,
): string {
  const hmac = createHmac('sha256', replyKey)
    .update(Buffer.from(`${LABEL} reply`, 'utf8'))
    .update(Buffer.from([0]))
    .update(lengthPrefixed(id))
    .update(lengthPrefixed(username))
    .update(lengthPrefixed(publicKey));
  if (credentialsVersion !== undefined) hmac.update(lengthPrefixed(String(credentialsVersion)));
  return hmac.digest('base64');
}

/** Auth's answer to an opened command: a success carries its tag. */
export function tagResult(opened: OpenedLogin, result: LoginResult): SealedLoginResult {
  if (!result.ok) return result;
  return {
    ...result,
    tag: replyTag(
      opened.replyKey,
      opened.id,
      result.username,
      result.publicKey,
      result.credentialsVersion,
    ),
  };
}

/** Thrown by acceptReply for an answer that is not auth's: the login must not go ahead. */
export class LoginReplyRejectedError extends Error {
  override readonly name = 'LoginReplyRejectedError';

  constructor(reason: string) {
    super(`auth's answer to a sealed login was refused: ${reason}`);
  }
}

const LOGIN_FAILURES = new Set([
  'auth_failed',
  'rate_limited',
  'forbidden',
  'conflict',
  'bad_request',
]);

/**
 * The gateway's check of auth's answer: a success must carry the tag of this very command
 * (only auth, holding the private key, could derive its reply key); a refusal needs none —
 * forging one gains nothing that deleting the request would not. Returns the plain
 * LoginResult, or throws LoginReplyRejectedError.
 */
export function acceptReply(sealed: SealedLogin, reply: unknown): LoginResult {
  if (typeof reply !== 'object' || reply === null) {
    throw new LoginReplyRejectedError('not an object');
  }
  const answer = reply as Record<string, unknown>;
  if (answer.ok === false) {
    if (typeof answer.code !== 'string' || !LOGIN_FAILURES.has(answer.code)) {
      throw new LoginReplyRejectedError('unknown refusal');
    }
    const retryAfter = answer.retryAfter;
    return {
      ok: false,
      code: answer.code as Extract<LoginResult, { ok: false }>['code'],
      ...(typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? { retryAfter } : {}),
    };
  }
  const { username, publicKey, credentialsVersion, tag } = answer;
  if (
    answer.ok !== true ||
    typeof username !== 'string' ||
    typeof publicKey !== 'string' ||
    typeof tag !== 'string' ||
    (credentialsVersion !== undefined && !isCredentialsVersion(credentialsVersion))
  ) {
    throw new LoginReplyRejectedError('malformed');
  }
  const expected = Buffer.from(
    replyTag(sealed.replyKey, sealed.envelope.id, username, publicKey, credentialsVersion),
    'base64',
  );
  const given = decodeBase64(tag, expected.length);
  if (!given || !timingSafeEqual(given, expected)) {
    throw new LoginReplyRejectedError('tag does not verify');
  }
  return {
    ok: true,
    username,
    publicKey,
    ...(credentialsVersion === undefined ? {} : { credentialsVersion }),
  };
}

/** A credential generation as the database holds it: a non-negative integer. */
function isCredentialsVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
