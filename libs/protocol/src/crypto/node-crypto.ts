/**
 * The primitives of PROTOCOL.md §1, all from node:crypto (OpenSSL): the implementation of
 * ProtocolCrypto (crypto/protocol-crypto.ts) that a server runs, and that crypto.ts re-exports.
 * Nothing here is hand-rolled except the HKDF-Expand loop, which node:crypto does not expose on its
 * own; it is RFC 5869 §2.3 over node's HMAC-SHA256. Private keys stay in KeyObjects.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type JsonWebKey,
  KeyObject,
  randomBytes as nodeRandomBytes,
  sign as nodeSign,
  timingSafeEqual as nodeTimingSafeEqual,
  verify as nodeVerify,
  constants,
} from 'node:crypto';

import {
  AES_KEY_BYTES,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  HASH_BYTES,
  MAX_USER_PUBLIC_KEY_BYTES,
  MIN_RSA_MODULUS_BITS,
  RSA_PSS_SALT_BYTES,
  X25519_KEY_BYTES,
} from '../constants';
import { ProtocolError } from '../errors/protocol-error';
import {
  ED25519_PKCS8_PREFIX,
  ED25519_SPKI_PREFIX,
  X25519_PKCS8_PREFIX,
  assertEd25519UserKey,
  assertRsaUserKey,
  isEd25519Spki,
  rejectUserKeyType,
} from './key-rules';
import {
  type ProtocolCrypto,
  type Satisfies,
  type UserCryptoKeyPair,
  type X25519KeyPairOf,
} from './protocol-crypto';
// This module's own type, for the compile-time check below (erased: no run-time import).
import type * as self from './node-crypto';

/**
 * Compile-time proof that this module implements ProtocolCrypto with KeyObjects (a type: nothing
 * at run time, and no call goes through an object).
 */
export type NodeProtocolCrypto = Satisfies<
  typeof self,
  ProtocolCrypto<KeyObject, KeyObject, ParkedPublicKey>
>;

/**
 * A placeholder `x` for importing an X25519 private key as JWK: Node requires the member but
 * builds the key from `d` alone (EVP_PKEY_new_raw_private_key); the real public half is then
 * derived from the private key. x25519KeyPair checks the import against PKCS#8 once.
 */
const JWK_PLACEHOLDER_X = Buffer.alloc(32).toString('base64url');

function assertBytes(value: Uint8Array, length: number, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new RangeError(`${what}: expected ${length} bytes`);
  }
}

/** SHA-256 over the concatenation of `parts` (PROTOCOL.md §1). */
export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/**
 * `SHA-256(head || digest)` for a transcript chain (PROTOCOL.md §7), the head read and written
 * packed, with no Buffer for it ('binary' is node's other name for latin1, the packing of
 * compact-bytes.ts).
 */
export function sha256ChainStep(packedHead: string, digest: Uint8Array): string {
  return createHash('sha256').update(packedHead, 'latin1').update(digest).digest('binary');
}

/** HKDF-Extract(salt, ikm) = HMAC-SHA256(salt, ikm) (RFC 5869 §2.2). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/**
 * HKDF-Expand(prk, info, length) (RFC 5869 §2.3). `info` text is ASCII as PROTOCOL.md §3 and §4 use
 * it.
 */
export function hkdfExpand(prk: Uint8Array, info: string, length: number): Buffer {
  if (prk.length < HASH_BYTES) throw new RangeError('hkdfExpand: PRK shorter than HashLen');
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_BYTES) {
    throw new RangeError('hkdfExpand: length out of range');
  }
  const infoBytes = Buffer.from(info, 'utf8');
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; blocks.length * HASH_BYTES < length; i++) {
    previous = createHmac('sha256', prk)
      .update(previous)
      .update(infoBytes)
      .update(Buffer.of(i))
      .digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/**
 * Compares equal-length byte strings in constant time (PROTOCOL.md §9); unequal lengths are simply
 * unequal.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && nodeTimingSafeEqual(a, b);
}

export function randomBytes(length: number): Buffer {
  return nodeRandomBytes(length);
}

// ---------------------------------------------------------------- X25519 (RFC 7748)

export type X25519KeyPair = X25519KeyPairOf<KeyObject>;

// X25519 keys move as raw bytes through JWK: node's DER import/export costs ~0.1 ms per call
// under OpenSSL 3, JWK a few µs, and a handshake does four of them.
function rawX25519Public(publicKey: KeyObject): Buffer {
  const { x } = publicKey.export({ format: 'jwk' });
  return Buffer.from(x!, 'base64url');
}

function x25519PublicFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/**
 * A fresh ephemeral key pair, or the one given by its 32 private bytes (test vectors). Fresh
 * keys are 32 random bytes imported like the given ones (every 32-byte string is an X25519
 * private key, RFC 7748 §5), not generateKeyPairSync: on Node 20 exporting a key to JWK while
 * the garbage collector finalizes the key-generation job that made it deadlocks the process
 * (the job's destructor waits for the key's mutex, which the export holds; seen once in CI as
 * a hang with the main thread in ~KeyGenJob under ExportJWKEdKey). They are imported as JWK,
 * not PKCS#8: OpenSSL 3's DER decoder costs ~0.3–1 ms per key (it tries every decoder it
 * has), the raw import behind JWK ~20 µs — one handshake makes two such keys.
 */
export function x25519KeyPair(
  privateRaw: Uint8Array = nodeRandomBytes(X25519_KEY_BYTES),
): X25519KeyPair {
  assertBytes(privateRaw, X25519_KEY_BYTES, 'x25519KeyPair');
  const privateKey = x25519PrivateFromRaw(privateRaw);
  return { privateKey, publicRaw: rawX25519Public(createPublicKey(privateKey)) };
}

let jwkPrivateImportChecked = false;

function x25519PrivateFromRaw(privateRaw: Uint8Array): KeyObject {
  const viaPkcs8 = () =>
    createPrivateKey({
      key: Buffer.concat([X25519_PKCS8_PREFIX, privateRaw]),
      format: 'der',
      type: 'pkcs8',
    });
  const key = createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'X25519',
      d: Buffer.from(privateRaw).toString('base64url'),
      x: JWK_PLACEHOLDER_X,
    },
    format: 'jwk',
  });
  // Once per process: the JWK import must make the very key PKCS#8 makes (a Node that began to
  // use the placeholder `x` would fail here, loudly, rather than agree on wrong keys).
  if (!jwkPrivateImportChecked) {
    if (
      !rawX25519Public(createPublicKey(key)).equals(rawX25519Public(createPublicKey(viaPkcs8())))
    ) {
      throw new Error('x25519KeyPair: the JWK import of a private key disagrees with PKCS#8');
    }
    jwkPrivateImportChecked = true;
  }
  return key;
}

/**
 * X25519(priv, peer). An all-zero result (a low-order peer key) is fatal on both sides (PROTOCOL.md
 * §3 step 4); OpenSSL refuses to derive it, and we check again rather than rely on that.
 */
export function x25519(privateKey: KeyObject, peerPublicRaw: Uint8Array): Buffer {
  assertBytes(peerPublicRaw, X25519_KEY_BYTES, 'x25519');
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519PublicFromRaw(peerPublicRaw) });
  } catch (cause) {
    throw new ProtocolError('bad_frame', 'dh_pub: key agreement failed', { cause });
  }
  if (shared.every((byte) => byte === 0)) {
    throw new ProtocolError('bad_frame', 'dh_pub: all-zero shared secret');
  }
  return shared;
}

// ---------------------------------------------------------------- AES-128-GCM (PROTOCOL.md §5)

/** AES-128-GCM with empty associated data: `ciphertext || tag`. */
export function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Buffer {
  assertBytes(key, AES_KEY_BYTES, 'aesGcmSeal key');
  assertBytes(nonce, GCM_NONCE_BYTES, 'aesGcmSeal nonce');
  const cipher = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Opens `ciphertext || tag`; returns undefined when it does not authenticate. `authTagLength`
 * pins the tag to 16 bytes: without it node accepts truncated tags (PROTOCOL.md §9).
 */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
): Buffer | undefined {
  assertBytes(key, AES_KEY_BYTES, 'aesGcmOpen key');
  assertBytes(nonce, GCM_NONCE_BYTES, 'aesGcmOpen nonce');
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  const split = sealed.length - GCM_TAG_BYTES;
  const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: GCM_TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(split));
  const head = decipher.update(sealed.subarray(0, split));
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------ keys and signatures (PROTOCOL.md §1)

/** `sha256:` and the lowercase hex SHA-256 of the SPKI DER (PROTOCOL.md §1). */
export function fingerprint(spkiDer: Uint8Array): string {
  return `sha256:${sha256(spkiDer).toString('hex')}`;
}

const spkiCache = new WeakMap<KeyObject, Buffer>();

/**
 * The SPKI DER of a public key (or of a private key's public half). Cached per KeyObject: the
 * server exports its identity key for every handshake. Returns a copy.
 */
export function exportSpki(key: KeyObject): Buffer {
  let spki = spkiCache.get(key);
  if (spki === undefined) {
    const publicKey = key.type === 'private' ? createPublicKey(key) : key;
    spki = publicKey.export({ format: 'der', type: 'spki' });
    spkiCache.set(key, spki);
  }
  return Buffer.from(spki);
}

/** The key itself when public, else the public half of a private key. */
export function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}

/**
 * A user public key as a server session keeps it while idle: its JWK, a few short strings,
 * instead of a KeyObject's ~1.4 KiB of OpenSSL memory (a server holds a session per connected
 * user, most of them idle for hours). The same parameters make the same key, and userVerify
 * checks its type and size at every use. RSA-PSS keys stay KeyObjects: JWK cannot carry their
 * parameters.
 */
export type ParkedPublicKey = KeyObject | JsonWebKey;

export function parkPublicKey(key: KeyObject): ParkedPublicKey {
  const type = key.asymmetricKeyType;
  return type === 'ed25519' || type === 'rsa' ? key.export({ format: 'jwk' }) : key;
}

/** The key back from parkPublicKey (~20 µs for a JWK: do it once, then keep the key). */
export function unparkPublicKey(parked: ParkedPublicKey): KeyObject {
  return parked instanceof KeyObject ? parked : createPublicKey({ key: parked, format: 'jwk' });
}

/**
 * A user private key from a WebCrypto pair (RSA-PSS or Ed25519), as a browser would hold one.
 * The public half is not needed here: a KeyObject knows it.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- the browser's needs to await
export async function userKeyFromCryptoKeyPair(pair: UserCryptoKeyPair): Promise<KeyObject> {
  const key = KeyObject.from(pair.privateKey);
  assertUserPrivateKey(key);
  return key;
}

/** Ed25519 private key from its 32-byte seed (RFC 8032 §5.1.5). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  assertBytes(seed, 32, 'ed25519PrivateKeyFromSeed');
  return createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
}

export function ed25519Sign(privateKey: KeyObject, data: Uint8Array): Buffer {
  if (privateKey.asymmetricKeyType !== 'ed25519' || privateKey.type !== 'private') {
    throw new TypeError('ed25519Sign: expected an Ed25519 private key');
  }
  return nodeSign(null, data, privateKey);
}

export function ed25519Verify(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array) {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  try {
    return nodeVerify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

/** Imports the Ed25519 server identity key from `server_key` (PROTOCOL.md §3 step 2). */
export function importServerKey(spkiDer: Uint8Array): KeyObject {
  const key = importSpki(spkiDer, 'server_key', 'bad_frame');
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ProtocolError('bad_frame', 'server_key: not an Ed25519 key');
  }
  return key;
}

/**
 * Imports one canonical SPKI DER, or throws ProtocolError with `code` (the caller's: what a key
 * that does not import means where it came from).
 */
function importSpki(
  spkiDer: Uint8Array,
  field: string,
  code: 'bad_frame' | 'bad_request',
): KeyObject {
  if (spkiDer.length === 0 || spkiDer.length > MAX_USER_PUBLIC_KEY_BYTES) {
    throw new ProtocolError(code, `${field}: key size out of range`);
  }
  // An Ed25519 SPKI has one DER encoding, this prefix and 32 bytes (RFC 8410 §4): imported as
  // JWK it skips OpenSSL's DER decoder and the canonical re-encoding below (~0.2 ms each, on
  // every login and every `get_key`), and is canonical by construction.
  if (isEd25519Spki(spkiDer)) {
    const x = Buffer.from(spkiDer.subarray(ED25519_SPKI_PREFIX.length)).toString('base64url');
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    } catch (cause) {
      throw new ProtocolError(code, `${field}: not a SubjectPublicKeyInfo`, { cause });
    }
    spkiCache.set(key, Buffer.from(spkiDer));
    return key;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new ProtocolError(code, `${field}: not a SubjectPublicKeyInfo`, { cause });
  }
  // OpenSSL accepts trailing bytes and some non-DER encodings; one key must have one SPKI and
  // so one fingerprint (PROTOCOL.md §1), so only the canonical encoding is accepted.
  let canonical: Buffer;
  try {
    canonical = key.export({ format: 'der', type: 'spki' });
  } catch (cause) {
    // Some parameters OpenSSL decodes it cannot encode again (found by browser-crypto.spec.ts).
    throw new ProtocolError(code, `${field}: SubjectPublicKeyInfo is not canonical DER`, { cause });
  }
  if (!timingSafeEqual(canonical, spkiDer)) {
    throw new ProtocolError(code, `${field}: SubjectPublicKeyInfo is not canonical DER`);
  }
  return key;
}

/**
 * Imports a user public key (PROTOCOL.md §1): RSA (rsaEncryption or id-RSASSA-PSS, modulus ≥ 2048
 * bits) or Ed25519. Anything else is `bad_request`: the frame was fine (canonical base64,
 * PROTOCOL.md §2), the key is not acceptable — bytes that are no canonical SubjectPublicKeyInfo
 * included (PROTOCOL.md §10.11: a malformed key at registration is `bad_request`).
 */
export function importUserPublicKey(spkiDer: Uint8Array, field = 'public_key'): KeyObject {
  const key = importSpki(spkiDer, field, 'bad_request');
  assertUserKeyType(key, field);
  return key;
}

function assertUserKeyType(key: KeyObject, field: string): void {
  switch (key.asymmetricKeyType) {
    case 'ed25519': {
      const publicKey = key.type === 'private' ? createPublicKey(key) : key;
      assertEd25519UserKey(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'), field);
      return;
    }
    case 'rsa':
    case 'rsa-pss':
      assertRsaUserKey(
        key.asymmetricKeyDetails?.modulusLength ?? 0,
        key.asymmetricKeyDetails?.publicExponent ?? 0n,
        field,
      );
      return;
    default:
      rejectUserKeyType(field);
  }
}

/**
 * Checks that a private key can act as a user key (PROTOCOL.md §1) before anything is signed with
 * it.
 */
export function assertUserPrivateKey(key: KeyObject): void {
  if (!(key instanceof KeyObject) || key.type !== 'private') {
    throw new TypeError('expected a private KeyObject');
  }
  assertUserKeyType(key, 'user key');
}

const PSS_OPTIONS = {
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength: RSA_PSS_SALT_BYTES,
} as const;

/**
 * UserSign (PROTOCOL.md §1): RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt for RSA keys
 * (node's default salt is the largest possible, PROTOCOL.md §9), Ed25519 otherwise.
 */
export function userSign(privateKey: KeyObject, data: Uint8Array): Buffer {
  assertUserPrivateKey(privateKey);
  if (privateKey.asymmetricKeyType === 'ed25519') return nodeSign(null, data, privateKey);
  return nodeSign('sha256', data, { key: privateKey, ...PSS_OPTIONS });
}

/**
 * The matching verify. An RSA key is always verified as RSA-PSS with a 32-byte salt, never as
 * PKCS#1 v1.5 and never with "any salt" (node's default, PROTOCOL.md §9). Never throws on bad
 * input.
 */
export function userVerify(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (publicKey.asymmetricKeyType) {
      case 'ed25519':
        return nodeVerify(null, data, publicKey, signature);
      case 'rsa':
      case 'rsa-pss':
        if ((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_MODULUS_BITS) {
          return false; // keys are checked at import; this guards keys made elsewhere
        }
        return nodeVerify('sha256', data, { key: publicKey, ...PSS_OPTIONS }, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** userSign, as a promise: node signs RSA-PSS synchronously (the browser cannot). */
// eslint-disable-next-line @typescript-eslint/require-await -- a throw must become a rejection
export async function userSignAsync(privateKey: KeyObject, data: Uint8Array): Promise<Buffer> {
  return userSign(privateKey, data);
}

/** userVerify, as a promise (see userSignAsync). */
// eslint-disable-next-line @typescript-eslint/require-await -- same signature as the browser's
export async function userVerifyAsync(
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return userVerify(publicKey, data, signature);
}
