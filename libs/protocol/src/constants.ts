/**
 * Constants of securechat/1. Section numbers refer to PROTOCOL.md (the normative document in
 * shared/protocol; our own description is docs/PROTOCOL.md).
 */

/** PROTOCOL.md §3 step 1: the only protocol identifier a server accepts. */
export const PROTOCOL_ID = 'securechat/1';
/** PROTOCOL.md §3 step 2. */
export const SERVER_VERSION = '1.0';

/** PROTOCOL.md §2: default largest frame body, in bytes (the 4-byte length prefix not counted). */
export const DEFAULT_MAX_FRAME = 65536;
/** PROTOCOL.md §2: `2 ≤ N`; the smallest JSON object text `{}` is 2 bytes. */
export const MIN_FRAME = 2;
/** PROTOCOL.md §2: every frame starts with `u32(N)`. */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * PROTOCOL.md §3: a connection that has not sent `login` this long after it was accepted is closed.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** PROTOCOL.md §4: a sender MUST send `key_update` before its sequence number reaches this. */
export const KEY_UPDATE_LIMIT = 2 ** 24;
/**
 * When our own sessions rotate keys: well before the PROTOCOL.md §4 limit, so a burst can never
 * push a sender to it. Sessions accept a lower value (tests use a handful of records).
 */
export const DEFAULT_KEY_UPDATE_INTERVAL = 2 ** 23;

/** PROTOCOL.md §6: default largest message body, in UTF-8 bytes. */
export const DEFAULT_MAX_BODY_BYTES = 16384;

/** PROTOCOL.md §3: sizes of the fixed binary fields. */
export const NONCE_BYTES = 32;
export const CHALLENGE_BYTES = 32;
export const X25519_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const HASH_BYTES = 32;
export const GCM_TAG_BYTES = 16;
export const GCM_NONCE_BYTES = 12;
export const AES_KEY_BYTES = 16;
export const TRAFFIC_SECRET_BYTES = 32;

/** PROTOCOL.md §1: the smallest RSA modulus a user key may have. */
export const MIN_RSA_MODULUS_BITS = 2048;
/**
 * Our bounds beyond PROTOCOL.md §1 (which sets only the minimum): the largest RSA modulus and the
 * public exponent range we accept, so that no user key is forgeable (e = 1) or makes each verify
 * cost milliseconds (a huge modulus or exponent). See docs/PROTOCOL.md §10.
 */
export const MAX_RSA_MODULUS_BITS = 8192;
export const MIN_RSA_EXPONENT = 65537n;
export const MAX_RSA_EXPONENT = 2n ** 32n;
/** PROTOCOL.md §1: RSA-PSS salt length, on sign and on verify (PROTOCOL.md §9). */
export const RSA_PSS_SALT_BYTES = 32;
/**
 * Largest user signature we accept before verifying it: an RSA-16384 signature. Bounds the
 * work a peer can ask of us; not a protocol number.
 */
export const MAX_USER_SIGNATURE_BYTES = 2048;
/** Largest user public key (SPKI DER) we accept: an RSA-16384 key with room to spare. */
export const MAX_USER_PUBLIC_KEY_BYTES = 2200;

/** PROTOCOL.md §3: names and passwords. */
export const USERNAME_PATTERN = /^[a-z0-9_]{3,32}$/;
export const ROOM_PATTERN = /^#[a-z0-9_-]{1,32}$/;
export const PASSWORD_MIN_BYTES = 8;
export const PASSWORD_MAX_BYTES = 1024;

/** PROTOCOL.md §6: the client's message id. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * PROTOCOL.md §6: `msg_id` is opaque; the longest one our services take. A longer (or empty) text
 * names no message of ours (see isMsgId). Not a protocol number.
 */
export const MAX_MSG_ID_LENGTH = 128;
/** PROTOCOL.md §6: `history.limit` range and default. */
export const HISTORY_LIMIT_MIN = 1;
export const HISTORY_LIMIT_MAX = 200;
export const HISTORY_LIMIT_DEFAULT = 50;
/** PROTOCOL.md §9: `ts` is an integer with 0 ≤ ts < 2^53. */
export const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/**
 * Every label the protocol hashes or signs, as `label(s) = ASCII(s) || 0x00` takes it (PROTOCOL.md
 * §1).
 */
export const LABELS = {
  /** PROTOCOL.md §3 step 3. */
  serverAuth: 'SecureChat v1 server auth',
  /** PROTOCOL.md §3 step 4. */
  clientAuth: 'SecureChat v1 client auth',
  /** PROTOCOL.md §3 step 4: HKDF-Expand info of the client-to-server traffic secret. */
  c2s: 'SecureChat v1 c2s',
  /** PROTOCOL.md §3 step 4: HKDF-Expand info of the server-to-client traffic secret. */
  s2c: 'SecureChat v1 s2c',
  /** PROTOCOL.md §4. */
  key: 'SecureChat v1 key',
  /** PROTOCOL.md §4. */
  iv: 'SecureChat v1 iv',
  /** PROTOCOL.md §4. */
  keyUpdate: 'SecureChat v1 key update',
  /** PROTOCOL.md §6. */
  message: 'SecureChat v1 message',
  /** PROTOCOL.md §7. */
  clientReceipt: 'SecureChat v1 client receipt',
  /** PROTOCOL.md §7. */
  receipt: 'SecureChat v1 receipt',
} as const;

/**
 * Largest frame a server reads before login completes (PROTOCOL.md §3, §9 "bound what a connection
 * may hold"). The largest legitimate handshake frame is a `register` login: its plaintext holds at
 * most a 32-character name, a password of PASSWORD_MAX_BYTES that JSON may escape six-fold, a
 * MAX_USER_SIGNATURE_BYTES signature and a MAX_USER_PUBLIC_KEY_BYTES key in base64 — about
 * 12.2 KiB, 16.3 KiB once sealed and base64-encoded; an RSA-8192 `register` with a plain
 * password is under 6 KiB. Not a protocol number: a bound of ours, with room to spare.
 */
export const MAX_HANDSHAKE_FRAME = 24 * 1024;
