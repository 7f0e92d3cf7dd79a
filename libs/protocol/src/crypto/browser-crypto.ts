/**
 * The primitives of PROTOCOL.md §1 for a browser bundle: the same names as node-crypto.ts (a
 * bundler aliases that module to this one), on @noble/curves, @noble/hashes, @noble/ciphers and
 * `crypto.getRandomValues`. Synchronous, as the handshake and the record layer are: WebCrypto is
 * asynchronous only, so it serves just the one thing noble cannot do, RSA-PSS (PROTOCOL.md §1 user
 * keys), through userSignAsync / userVerifyAsync. No RSA is implemented here: RSA keys are only
 * parsed (a strict DER reader) and checked against the rules of key-rules.ts.
 *
 * Results are Buffers, as node-crypto's are (the bundle's `buffer` polyfill supplies the global).
 * Key handles are small frozen objects with node's `type` and `asymmetricKeyType`; what they hold
 * (seeds, WebCrypto keys) lives in a WeakMap, so a handle serialises to nothing secret and one not
 * made here is refused.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { type webcrypto } from 'node:crypto';

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
import { DER_TAG, DerReader } from '../der-reader';
import { ProtocolError } from '../errors/protocol-error';
import {
  ED25519_SPKI_PREFIX,
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
import type * as self from './browser-crypto';

/** RFC 8410 §4: X25519 public keys never travel as SPKI here (raw `dh_pub`, PROTOCOL.md §3). */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

// Types only (erased from a bundle): WebCrypto as @types/node names it.
type CryptoKey = webcrypto.CryptoKey;
type SubtleCrypto = webcrypto.SubtleCrypto;

type AsymmetricKeyType = 'ed25519' | 'x25519' | 'rsa' | 'rsa-pss';

/** A public key handle: what node's KeyObject shows of itself, and nothing secret. */
export interface BrowserPublicKey {
  readonly type: 'public';
  readonly asymmetricKeyType: AsymmetricKeyType;
  /** RSA keys only, as node's `asymmetricKeyDetails`. */
  readonly asymmetricKeyDetails?: {
    readonly modulusLength: number;
    readonly publicExponent: bigint;
  };
}

export interface BrowserPrivateKey {
  readonly type: 'private';
  readonly asymmetricKeyType: AsymmetricKeyType;
  readonly asymmetricKeyDetails?: {
    readonly modulusLength: number;
    readonly publicExponent: bigint;
  };
}

/**
 * Compile-time proof that this module implements ProtocolCrypto (a type: nothing at run time).
 */
export type BrowserProtocolCrypto = Satisfies<
  typeof self,
  ProtocolCrypto<BrowserPrivateKey, BrowserPublicKey, ParkedPublicKey>
>;

interface PublicMaterial {
  /** The canonical SPKI DER (PROTOCOL.md §1: one key, one encoding, one fingerprint). */
  readonly spki: Buffer;
  /** Ed25519 and X25519: the 32-byte encoded point. */
  readonly raw?: Buffer;
  /** RSA: JWK members for WebCrypto, and whether node would verify with the key at all. */
  readonly rsa?: RsaPublicNumbers;
  /** RSA: the WebCrypto verify key, once imported. */
  verifyKey?: Promise<CryptoKey>;
}

interface PrivateMaterial {
  readonly publicKey: BrowserPublicKey;
  /** Ed25519 seed or X25519 scalar. */
  readonly secret?: Uint8Array;
  /** A WebCrypto key (userKeyFromCryptoKeyPair): RSA-PSS, or Ed25519 without its seed. */
  readonly cryptoKey?: CryptoKey;
}

const publicMaterial = new WeakMap<BrowserPublicKey, PublicMaterial>();
const privateMaterial = new WeakMap<BrowserPrivateKey, PrivateMaterial>();

function makePublic(
  asymmetricKeyType: AsymmetricKeyType,
  material: PublicMaterial,
): BrowserPublicKey {
  const handle: BrowserPublicKey = Object.freeze({
    type: 'public',
    asymmetricKeyType,
    ...(material.rsa
      ? {
          asymmetricKeyDetails: Object.freeze({
            modulusLength: material.rsa.modulusBits,
            publicExponent: material.rsa.exponent,
          }),
        }
      : {}),
  });
  publicMaterial.set(handle, material);
  return handle;
}

function makePrivate(material: PrivateMaterial): BrowserPrivateKey {
  const { asymmetricKeyType, asymmetricKeyDetails } = material.publicKey;
  const handle: BrowserPrivateKey = Object.freeze({
    type: 'private',
    asymmetricKeyType,
    ...(asymmetricKeyDetails ? { asymmetricKeyDetails } : {}),
  });
  privateMaterial.set(handle, material);
  return handle;
}

/** The public material of a handle of ours, public or private; undefined for anything else. */
function publicOf(key: BrowserPublicKey | BrowserPrivateKey): PublicMaterial | undefined {
  if (key.type === 'private') {
    const own = privateMaterial.get(key);
    return own && publicMaterial.get(own.publicKey);
  }
  return publicMaterial.get(key);
}

function ed25519Public(raw: Uint8Array): BrowserPublicKey {
  const copy = Buffer.from(raw);
  return makePublic('ed25519', { raw: copy, spki: Buffer.concat([ED25519_SPKI_PREFIX, copy]) });
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function assertBytes(value: Uint8Array, length: number, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new RangeError(`${what}: expected ${length} bytes`);
  }
}

function subtle(): SubtleCrypto {
  const s = (globalThis.crypto as webcrypto.Crypto | undefined)?.subtle;
  if (s === undefined) {
    throw new ProtocolError('internal', 'WebCrypto (crypto.subtle) is not available here');
  }
  return s;
}

function rsaNeedsAsync(what: string): never {
  throw new ProtocolError(
    'internal',
    `${what}: RSA-PSS needs the async path here (WebCrypto is asynchronous): use ${what}Async`,
  );
}

// ---------------------------------------------------------------- hashing, HKDF (PROTOCOL.md §1)

/** SHA-256 over the concatenation of `parts` (PROTOCOL.md §1). */
export function sha256(...parts: Uint8Array[]): Buffer {
  if (parts.length === 1) return asBuffer(nobleSha256(parts[0]!));
  const hash = nobleSha256.create();
  for (const part of parts) hash.update(part);
  return asBuffer(hash.digest());
}

/** One transcript chain step on a packed head (PROTOCOL.md §7; see ProtocolCrypto). */
export function sha256ChainStep(packedHead: string, digest: Uint8Array): string {
  return sha256(Buffer.from(packedHead, 'latin1'), digest).toString('latin1');
}

/** HKDF-Extract(salt, ikm) = HMAC-SHA256(salt, ikm) (RFC 5869 §2.2). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  // noble reads an empty salt as "none" and uses HashLen zeros: the same HMAC key once padded.
  return asBuffer(extract(nobleSha256, ikm, salt));
}

/** HKDF-Expand(prk, info, length) (RFC 5869 §2.3), with node-crypto's argument checks. */
export function hkdfExpand(prk: Uint8Array, info: string, length: number): Buffer {
  if (prk.length < HASH_BYTES) throw new RangeError('hkdfExpand: PRK shorter than HashLen');
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_BYTES) {
    throw new RangeError('hkdfExpand: length out of range');
  }
  return asBuffer(expand(nobleSha256, prk, Buffer.from(info, 'utf8'), length));
}

/**
 * Compares equal-length byte strings in constant time (PROTOCOL.md §9): every byte is read,
 * whatever differs; unequal lengths are simply unequal.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** getRandomValues fills at most 65536 bytes a call (WebCrypto). */
const RANDOM_CHUNK = 65536;

export function randomBytes(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(offset, offset + RANDOM_CHUNK));
  }
  return out;
}

// ---------------------------------------------------------------- X25519 (RFC 7748)

export type X25519KeyPair = X25519KeyPairOf<BrowserPrivateKey>;

/** A fresh ephemeral key pair, or the one given by its 32 private bytes (test vectors). */
export function x25519KeyPair(
  privateRaw: Uint8Array = randomBytes(X25519_KEY_BYTES),
): X25519KeyPair {
  assertBytes(privateRaw, X25519_KEY_BYTES, 'x25519KeyPair');
  const secret = Uint8Array.from(privateRaw);
  const publicRaw = asBuffer(nobleX25519.getPublicKey(secret));
  const publicKey = makePublic('x25519', {
    raw: publicRaw,
    spki: Buffer.concat([X25519_SPKI_PREFIX, publicRaw]),
  });
  return { privateKey: makePrivate({ publicKey, secret }), publicRaw: Buffer.from(publicRaw) };
}

/**
 * X25519(priv, peer). An all-zero result (a low-order peer key) is fatal on both sides (PROTOCOL.md
 * §3 step 4); noble refuses to return it, and we check again rather than rely on that.
 */
export function x25519(privateKey: BrowserPrivateKey, peerPublicRaw: Uint8Array): Buffer {
  assertBytes(peerPublicRaw, X25519_KEY_BYTES, 'x25519');
  const own =
    privateKey.asymmetricKeyType === 'x25519' ? privateMaterial.get(privateKey) : undefined;
  let shared: Buffer;
  try {
    if (own?.secret === undefined) throw new TypeError('not an X25519 private key');
    shared = asBuffer(nobleX25519.getSharedSecret(own.secret, peerPublicRaw));
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
  return asBuffer(gcm(key, nonce).encrypt(plaintext));
}

/**
 * Opens `ciphertext || tag`; undefined when it does not authenticate. noble's GCM tag is always
 * 16 bytes: a truncated tag cannot pass (PROTOCOL.md §9).
 */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
): Buffer | undefined {
  assertBytes(key, AES_KEY_BYTES, 'aesGcmOpen key');
  assertBytes(nonce, GCM_NONCE_BYTES, 'aesGcmOpen nonce');
  if (sealed.length < GCM_TAG_BYTES) return undefined;
  try {
    return asBuffer(gcm(key, nonce).decrypt(sealed));
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------ keys and signatures (PROTOCOL.md §1)

/** `sha256:` and the lowercase hex SHA-256 of the SPKI DER (PROTOCOL.md §1). */
export function fingerprint(spkiDer: Uint8Array): string {
  return `sha256:${sha256(spkiDer).toString('hex')}`;
}

/** The SPKI DER of a public key (or of a private key's public half). Returns a copy. */
export function exportSpki(key: BrowserPublicKey | BrowserPrivateKey): Buffer {
  const material = publicOf(key);
  if (material === undefined) {
    throw new TypeError('exportSpki: not a key handle of browser-crypto');
  }
  return Buffer.from(material.spki);
}

/** The key itself when public, else the public half of a private key. */
export function publicKeyOf(key: BrowserPublicKey | BrowserPrivateKey): BrowserPublicKey {
  if (key.type === 'public') return key;
  const own = privateMaterial.get(key);
  if (own === undefined) throw new TypeError('publicKeyOf: not a key handle of browser-crypto');
  return own.publicKey;
}

/** A handle is already small: parked as it is (node-crypto parks KeyObjects as JWK). */
export type ParkedPublicKey = BrowserPublicKey;

export function parkPublicKey(key: BrowserPublicKey): ParkedPublicKey {
  return key;
}

export function unparkPublicKey(parked: ParkedPublicKey): BrowserPublicKey {
  return parked;
}

/** Ed25519 private key from its 32-byte seed (RFC 8032 §5.1.5). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): BrowserPrivateKey {
  assertBytes(seed, 32, 'ed25519PrivateKeyFromSeed');
  const secret = Uint8Array.from(seed);
  return makePrivate({ publicKey: ed25519Public(ed25519.getPublicKey(secret)), secret });
}

/**
 * A user private key from a WebCrypto pair, as a browser makes or imports one (non-extractable
 * is fine): RSA-PSS with SHA-256, or Ed25519. Sign with it through userSignAsync.
 */
export async function userKeyFromCryptoKeyPair(
  pair: UserCryptoKeyPair,
): Promise<BrowserPrivateKey> {
  const algorithm = pair.privateKey.algorithm as { name: string; hash?: { name: string } };
  if (pair.privateKey.type !== 'private' || !pair.privateKey.usages.includes('sign')) {
    throw new TypeError('userKeyFromCryptoKeyPair: expected a private key usable to sign');
  }
  if (
    !(algorithm.name === 'RSA-PSS' && algorithm.hash?.name === 'SHA-256') &&
    algorithm.name !== 'Ed25519'
  ) {
    throw new TypeError('userKeyFromCryptoKeyPair: expected RSA-PSS with SHA-256, or Ed25519');
  }
  const spki = Buffer.from(await subtle().exportKey('spki', pair.publicKey));
  const publicKey = importUserPublicKey(spki, 'user key');
  return makePrivate({ publicKey, cryptoKey: pair.privateKey });
}

export function ed25519Sign(privateKey: BrowserPrivateKey, data: Uint8Array): Buffer {
  const own = privateKey.type === 'private' ? privateMaterial.get(privateKey) : undefined;
  if (privateKey.asymmetricKeyType !== 'ed25519' || own?.secret === undefined) {
    throw new TypeError('ed25519Sign: expected an Ed25519 private key');
  }
  return asBuffer(ed25519.sign(data, own.secret));
}

/** Little-endian bytes as an integer (RFC 8032 §5.1.7 reads S and the hash so). */
function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

/**
 * Ed25519 verification as OpenSSL does it, so that a browser and a Node client give every
 * signature the same verdict (a message one shows as signed, the other must too):
 * - RFC 8032 §5.1.7 decoding (`zip215: false`): a non-canonical A, R or S never verifies;
 * - the cofactorless equation [S]B = R + [k]A. noble checks the cofactored one
 *   ([8][S]B = [8]R + [8][k]A, RFC 8032's "sufficient" form), which also accepts R with a
 *   small-order part added; OpenSSL compares R exactly. So noble's verdict comes first (it does
 *   the decoding rules), then the exact equation on the same decoded points.
 */
function nobleEd25519Verify(raw: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (!ed25519.verify(signature, data, raw, { zip215: false })) return false;
    const { Point } = ed25519;
    const order = Point.Fn.ORDER;
    const r = signature.subarray(0, 32);
    const R = Point.fromBytes(r, false);
    const A = Point.fromBytes(raw, false);
    const S = littleEndian(signature.subarray(32, 64));
    const k = littleEndian(sha512(concatBytes(r, raw, data))) % order;
    return Point.BASE.multiplyUnsafe(S).equals(R.add(A.multiplyUnsafe(k)));
  } catch {
    return false;
  }
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function ed25519Verify(
  publicKey: BrowserPublicKey | BrowserPrivateKey,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  const raw = publicOf(publicKey)?.raw;
  return raw !== undefined && nobleEd25519Verify(raw, data, signature);
}

/** Imports the Ed25519 server identity key from `server_key` (PROTOCOL.md §3 step 2). */
export function importServerKey(spkiDer: Uint8Array): BrowserPublicKey {
  const key = importSpki(spkiDer, 'server_key', 'bad_frame');
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ProtocolError('bad_frame', 'server_key: not an Ed25519 key');
  }
  return key;
}

/**
 * Imports a user public key (PROTOCOL.md §1): RSA (rsaEncryption or id-RSASSA-PSS, modulus ≥ 2048
 * bits) or Ed25519; anything else, malformed DER included, is `bad_request` (PROTOCOL.md §10.11).
 */
export function importUserPublicKey(spkiDer: Uint8Array, field = 'public_key'): BrowserPublicKey {
  const key = importSpki(spkiDer, field, 'bad_request');
  const material = publicMaterial.get(key)!;
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      assertEd25519UserKey(material.raw!, field);
      return key;
    case 'rsa':
    case 'rsa-pss':
      assertRsaUserKey(material.rsa!.modulusBits, material.rsa!.exponent, field);
      return key;
    default:
      return rejectUserKeyType(field);
  }
}

/**
 * Checks that a private key can act as a user key (PROTOCOL.md §1) before anything is signed with
 * it.
 */
export function assertUserPrivateKey(key: BrowserPrivateKey): void {
  const own = key?.type === 'private' ? privateMaterial.get(key) : undefined;
  if (own === undefined) throw new TypeError('expected a private key handle of browser-crypto');
  const material = publicMaterial.get(own.publicKey)!;
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return assertEd25519UserKey(material.raw!, 'user key');
    case 'rsa':
    case 'rsa-pss':
      return assertRsaUserKey(material.rsa!.modulusBits, material.rsa!.exponent, 'user key');
    default:
      return rejectUserKeyType('user key');
  }
}

/**
 * UserSign (PROTOCOL.md §1) for an Ed25519 key with its seed. RSA-PSS (and an Ed25519 key held
 * only by WebCrypto) can only be signed asynchronously here: ProtocolError `internal`.
 */
export function userSign(privateKey: BrowserPrivateKey, data: Uint8Array): Buffer {
  assertUserPrivateKey(privateKey);
  const own = privateMaterial.get(privateKey)!;
  if (privateKey.asymmetricKeyType === 'ed25519' && own.secret !== undefined) {
    return asBuffer(ed25519.sign(data, own.secret));
  }
  return rsaNeedsAsync('userSign');
}

/**
 * UserVerify (PROTOCOL.md §1) for Ed25519; for an RSA key it throws ProtocolError `internal`
 * (use userVerifyAsync). Never throws on bad input otherwise.
 */
export function userVerify(
  publicKey: BrowserPublicKey | BrowserPrivateKey,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  switch (publicKey.asymmetricKeyType) {
    case 'ed25519':
      return ed25519Verify(publicKey, data, signature);
    case 'rsa':
    case 'rsa-pss':
      return rsaNeedsAsync('userVerify');
    default:
      return false;
  }
}

/** RSA-PSS as PROTOCOL.md §1 fixes it: SHA-256, MGF1-SHA-256, salt exactly 32 (§9). */
const PSS_PARAMS = { name: 'RSA-PSS', saltLength: RSA_PSS_SALT_BYTES } as const;
const PSS_IMPORT = { name: 'RSA-PSS', hash: 'SHA-256' } as const;

/** UserSign for every user key: RSA-PSS through WebCrypto, Ed25519 through noble. */
export async function userSignAsync(privateKey: BrowserPrivateKey, data: Uint8Array) {
  assertUserPrivateKey(privateKey);
  const own = privateMaterial.get(privateKey)!;
  if (privateKey.asymmetricKeyType === 'ed25519' && own.secret !== undefined) {
    return asBuffer(ed25519.sign(data, own.secret));
  }
  if (own.cryptoKey === undefined) throw new TypeError('userSignAsync: the key cannot sign');
  const algorithm = privateKey.asymmetricKeyType === 'ed25519' ? { name: 'Ed25519' } : PSS_PARAMS;
  return Buffer.from(await subtle().sign(algorithm, own.cryptoKey, data));
}

/**
 * UserVerify for every user key. An RSA key is always verified as RSA-PSS with a 32-byte salt,
 * never PKCS#1 v1.5, never any other salt (PROTOCOL.md §9). Resolves false, never rejects.
 */
export async function userVerifyAsync(
  publicKey: BrowserPublicKey | BrowserPrivateKey,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    switch (publicKey.asymmetricKeyType) {
      case 'ed25519':
        return ed25519Verify(publicKey, data, signature);
      case 'rsa':
      case 'rsa-pss': {
        const material = publicOf(publicKey);
        const rsa = material?.rsa;
        // Keys are checked at import; this guards keys made elsewhere. A PSS key whose
        // parameters forbid SHA-256 / salt 32 is one node refuses to verify with: so do we.
        if (!material || !rsa || rsa.modulusBits < MIN_RSA_MODULUS_BITS || !rsa.pssUsable) {
          return false;
        }
        material.verifyKey ??= subtle().importKey(
          'jwk',
          { kty: 'RSA', n: rsa.n, e: rsa.e, ext: true },
          PSS_IMPORT,
          false,
          ['verify'],
        );
        return await subtle().verify(PSS_PARAMS, await material.verifyKey, signature, data);
      }
      default:
        return false;
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- SPKI DER (X.690, RFC 5280)

/**
 * Imports one canonical SPKI DER, or throws ProtocolError with `code` (the caller's: what a key
 * that does not import means where it came from). Only the encodings node-crypto accepts: the one
 * Ed25519 form (RFC 8410 §4), and RSA in DER proper (X.690 §10: definite, minimal lengths; minimal
 * integers) with nothing after it.
 */
function importSpki(
  spkiDer: Uint8Array,
  field: string,
  code: 'bad_frame' | 'bad_request',
): BrowserPublicKey {
  if (spkiDer.length === 0 || spkiDer.length > MAX_USER_PUBLIC_KEY_BYTES) {
    throw new ProtocolError(code, `${field}: key size out of range`);
  }
  if (isEd25519Spki(spkiDer)) return ed25519Public(spkiDer.subarray(ED25519_SPKI_PREFIX.length));
  let parsed: ParsedSpki;
  try {
    parsed = parseSpki(spkiDer);
  } catch (cause) {
    throw new ProtocolError(code, `${field}: not a canonical DER SubjectPublicKeyInfo`, { cause });
  }
  if (parsed.type === 'other') {
    throw new ProtocolError(code, `${field}: key type is neither RSA nor Ed25519`);
  }
  return makePublic(parsed.type, { spki: Buffer.from(spkiDer), rsa: parsed.rsa });
}

interface RsaPublicNumbers {
  readonly modulusBits: number;
  readonly exponent: bigint;
  /** base64url, no leading zeros: JWK `n` and `e` (RFC 7518 §6.3.1). */
  readonly n: string;
  readonly e: string;
  /** False for an id-RSASSA-PSS key whose parameters rule out SHA-256 / MGF1-SHA-256 / salt 32. */
  readonly pssUsable: boolean;
}

type ParsedSpki = { type: 'rsa' | 'rsa-pss'; rsa: RsaPublicNumbers } | { type: 'other' };

const OID = {
  rsaEncryption: '2a864886f70d010101',
  rsassaPss: '2a864886f70d01010a',
  mgf1: '2a864886f70d010108',
  sha256: '608648016503040201',
} as const;

/** An SPKI this code accepts is at most a few KiB: a length needs at most two bytes. */
const SPKI_LENGTH_BYTES = 2;

function bigintOf(magnitude: Uint8Array): bigint {
  return magnitude.length === 0 ? 0n : BigInt(`0x${Buffer.from(magnitude).toString('hex')}`);
}

function bitLength(magnitude: Uint8Array): number {
  if (magnitude.length === 0 || (magnitude.length === 1 && magnitude[0] === 0)) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}

/**
 * SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
 * (RFC 5280 §4.1), RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017
 * §A.1.1). An algorithm other than RSA parses as 'other' without its key being read.
 */
function parseSpki(spki: Uint8Array): ParsedSpki {
  const outer = new DerReader(spki, SPKI_LENGTH_BYTES);
  const info = outer.enter(DER_TAG.sequence);
  outer.finish();
  const algorithm = info.enter(DER_TAG.sequence);
  const oid = algorithm.readOid();
  let pssUsable = true;
  let type: 'rsa' | 'rsa-pss';
  if (oid === OID.rsaEncryption) {
    type = 'rsa';
    // rsaEncryption's parameters are NULL, present (RFC 8017 §A.1): the form OpenSSL writes.
    if (algorithm.read(DER_TAG.null).length !== 0) throw new Error('DER: NULL with contents');
  } else if (oid === OID.rsassaPss) {
    type = 'rsa-pss';
    if (!algorithm.done) pssUsable = parsePssParams(algorithm.enter(DER_TAG.sequence));
  } else {
    return { type: 'other' };
  }
  algorithm.finish();
  const bits = info.read(DER_TAG.bitString);
  info.finish();
  if (bits.length < 1 || bits[0] !== 0) throw new Error('DER: BIT STRING with unused bits');
  const keyOuter = new DerReader(bits.subarray(1), SPKI_LENGTH_BYTES);
  const key = keyOuter.enter(DER_TAG.sequence);
  keyOuter.finish();
  const n = key.readUnsigned();
  const e = key.readUnsigned();
  key.finish();
  return {
    type,
    rsa: {
      modulusBits: bitLength(n),
      exponent: bigintOf(e),
      n: base64Url(n),
      e: base64Url(e),
      pssUsable,
    },
  };
}

/**
 * base64url without padding (RFC 4648 §5), from base64: the `buffer` package that stands in for
 * Buffer in a browser bundle predates Node's 'base64url' encoding.
 */
function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('base64')
    .replace(/=+$/, '')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

const PSS_SHA1 = '2b0e03021a';

/**
 * The hashes OpenSSL 3 takes in RSASSA-PSS-params (SHA-1 and the six SHA-2; not SHA-3): parameters
 * naming another, node refuses at import, so we do too.
 */
const PSS_HASHES = new Set([
  PSS_SHA1,
  ...['01', '02', '03', '04', '05', '06'].map((n) => `6086480165030402${n}`),
]);

/**
 * RSASSA-PSS-params (RFC 8017 §A.2.3): [0] hash DEFAULT sha1, [1] MGF DEFAULT mgf1SHA1, [2] salt
 * DEFAULT 20, [3] trailer DEFAULT 1, each explicitly tagged, in order. A key restricted this way
 * is one OpenSSL verifies only with that hash and a salt at least that long: the answer is whether
 * SHA-256 and salt 32 qualify (node's userVerify returns false for the others). Parameters
 * OpenSSL refuses (an unknown hash, a mask other than MGF1, a trailer other than 1) throw.
 */
function parsePssParams(params: DerReader): boolean {
  let hash = PSS_SHA1;
  let mgfHash = PSS_SHA1;
  let salt = 20n;
  // DER omits a field equal to its DEFAULT (X.690 §11.5), and OpenSSL re-encodes so: an SPKI
  // that spells a default out is one node refuses as not canonical.
  const notDefault = (isDefault: boolean) => {
    if (isDefault) throw new Error('DER: a DEFAULT value spelled out');
  };
  if (params.peekTag() === 0xa0) {
    const wrapper = params.enter(0xa0);
    hash = readHashAlgorithm(wrapper);
    wrapper.finish();
    notDefault(hash === PSS_SHA1);
  }
  if (params.peekTag() === 0xa1) {
    const wrapper = params.enter(0xa1);
    const algorithm = wrapper.enter(DER_TAG.sequence);
    wrapper.finish();
    if (algorithm.readOid() !== OID.mgf1) throw new Error('PSS: mask generation is not MGF1');
    mgfHash = readHashAlgorithm(algorithm);
    algorithm.finish();
    notDefault(mgfHash === PSS_SHA1);
  }
  if (params.peekTag() === 0xa2) {
    const wrapper = params.enter(0xa2);
    salt = bigintOf(wrapper.readUnsigned());
    wrapper.finish();
    notDefault(salt === 20n);
  }
  // [3] trailerField: OpenSSL allows only its default, 1, which DER leaves out.
  params.finish();
  return hash === OID.sha256 && mgfHash === OID.sha256 && salt <= BigInt(RSA_PSS_SALT_BYTES);
}

/** AlgorithmIdentifier of a hash OpenSSL knows: its OID (hex), with NULL as OpenSSL writes it. */
function readHashAlgorithm(reader: DerReader): string {
  const algorithm = reader.enter(DER_TAG.sequence);
  const oid = algorithm.readOid();
  if (!PSS_HASHES.has(oid)) throw new Error('PSS: unknown hash');
  if (algorithm.read(DER_TAG.null).length !== 0) throw new Error('DER: NULL with contents');
  algorithm.finish();
  return oid;
}
