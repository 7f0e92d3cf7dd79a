/**
 * Every primitive libs/protocol uses, as one interface (PROTOCOL.md §1), so that the protocol runs
 * on node:crypto on a server (crypto/node-crypto.ts) and inside a browser bundle
 * (crypto/browser-crypto.ts) without a line of it changing: crypto.ts re-exports one
 * implementation, and a browser bundle swaps that module for the other.
 *
 * It is checked at compile time only (`Satisfies` below): the protocol calls the functions of a
 * module, not methods of an object, so the Node path pays nothing for the abstraction.
 *
 * Everything is synchronous, because the handshake and the record layer are synchronous state
 * machines; the only exceptions are `userSignAsync` / `userVerifyAsync`, for RSA-PSS, which a
 * browser can do only through WebCrypto, and that is asynchronous.
 */

import { type webcrypto } from 'node:crypto';

/**
 * What the protocol reads of a key handle: the shape node's KeyObject already has. Everything else
 * about a key is the implementation's business.
 */
export interface KeyHandle {
  readonly type: 'public' | 'private' | 'secret';
  /** `'ed25519'`, `'x25519'`, `'rsa'`, `'rsa-pss'`, … (node's names). */
  readonly asymmetricKeyType?: string | undefined;
}

/** An ephemeral X25519 key pair (PROTOCOL.md §3 steps 1 and 2). */
export interface X25519KeyPairOf<PrivateKey> {
  readonly privateKey: PrivateKey;
  /** The 32 raw bytes that travel as `dh_pub`. */
  readonly publicRaw: Buffer;
}

/** The WebCrypto pair a browser generates or imports for a user key (PROTOCOL.md §1). */
export interface UserCryptoKeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

// Type only (erased from a bundle): WebCrypto's key type, which @types/node names this way.
type CryptoKey = webcrypto.CryptoKey;

/**
 * @typeParam PrivateKey - the implementation's private key handle.
 * @typeParam PublicKey - its public key handle.
 * @typeParam ParkedKey - a public key in the form cheapest to keep while idle (see parkPublicKey).
 */
export interface ProtocolCrypto<
  PrivateKey extends KeyHandle,
  PublicKey extends KeyHandle,
  ParkedKey = PublicKey,
> {
  // ------------------------------------------------------------ hashing and HKDF (PROTOCOL.md §1)

  /** SHA-256 over the concatenation of `parts` (PROTOCOL.md §1). */
  sha256(...parts: Uint8Array[]): Buffer;
  /**
   * One step of a transcript chain (PROTOCOL.md §7), `SHA-256(head || digest)`, with the head in
   * and out as a one-byte-per-byte ('latin1') string: sessions keep their chain heads packed
   * (compact-bytes.ts), and node hashes such a string without a Buffer for it.
   */
  sha256ChainStep(packedHead: string, digest: Uint8Array): string;
  /** HKDF-Extract(salt, ikm) (RFC 5869 §2.2; PROTOCOL.md §3 step 6). */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer;
  /**
   * HKDF-Expand(prk, info, length) (RFC 5869 §2.3), `info` ASCII as PROTOCOL.md §3 and §4 use it.
   * Throws RangeError for a PRK shorter than 32 bytes or a length outside 1..8160.
   */
  hkdfExpand(prk: Uint8Array, info: string, length: number): Buffer;
  /** Constant-time comparison; unequal lengths are simply unequal (PROTOCOL.md §9). */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
  /** Cryptographically strong random bytes (nonces, challenges, ephemeral keys; PROTOCOL.md §3). */
  randomBytes(length: number): Buffer;

  // ------------------------------------------------------------ X25519 (PROTOCOL.md §3)

  /** A fresh ephemeral key pair, or the one given by its 32 private bytes (test vectors). */
  x25519KeyPair(privateRaw?: Uint8Array): X25519KeyPairOf<PrivateKey>;
  /**
   * X25519(priv, peer); an all-zero result (a low-order peer key) throws ProtocolError
   * `bad_frame` (PROTOCOL.md §3 step 4), as does any failure of the agreement.
   */
  x25519(privateKey: PrivateKey, peerPublicRaw: Uint8Array): Buffer;

  // ------------------------------------------------------------ AES-128-GCM (PROTOCOL.md §5)

  /** `ciphertext || tag`, 16-byte tag, empty associated data (PROTOCOL.md §1, §5). */
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Buffer;
  /**
   * Opens `ciphertext || tag`; undefined when it does not authenticate. The tag is always 16
   * bytes, never a truncated one (PROTOCOL.md §9).
   */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer | undefined;

  // ------------------------------------------------------------ keys (PROTOCOL.md §1)

  /** `sha256:` and the lowercase hex SHA-256 of an SPKI DER (PROTOCOL.md §1). */
  fingerprint(spkiDer: Uint8Array): string;
  /** The SPKI DER of a public key, or of a private key's public half (a copy). */
  exportSpki(key: PrivateKey | PublicKey): Buffer;
  /** The key itself when public, else the public half of a private key. */
  publicKeyOf(key: PrivateKey | PublicKey): PublicKey;
  /**
   * A user public key as a server session keeps it for hours, idle (PROTOCOL.md §6 and §7 need it
   * only when a signature arrives); unparkPublicKey makes it a key again, equal to the original.
   */
  parkPublicKey(key: PublicKey): ParkedKey;
  unparkPublicKey(parked: ParkedKey): PublicKey;
  /** An Ed25519 private key from its 32-byte seed (RFC 8032 §5.1.5). */
  ed25519PrivateKeyFromSeed(seed: Uint8Array): PrivateKey;
  /**
   * A user private key from a WebCrypto pair: RSA-PSS (SHA-256) or Ed25519 (PROTOCOL.md §1). Sign
   * with it through userSignAsync.
   */
  userKeyFromCryptoKeyPair(pair: UserCryptoKeyPair): Promise<PrivateKey>;
  /** Imports the server identity key from `server_key` (PROTOCOL.md §3 step 2): Ed25519 only. */
  importServerKey(spkiDer: Uint8Array): PublicKey;
  /**
   * Imports a user public key (PROTOCOL.md §1, §10.11): one canonical DER SubjectPublicKeyInfo,
   * RSA (rsaEncryption or id-RSASSA-PSS, modulus 2048..8192 bits, odd exponent 65537..2^32) or
   * Ed25519 neither of small order nor non-canonical. Anything else is ProtocolError
   * `bad_request`.
   */
  importUserPublicKey(spkiDer: Uint8Array, field?: string): PublicKey;
  /** Throws unless `key` is a private key acceptable as a user key (PROTOCOL.md §1). */
  assertUserPrivateKey(key: PrivateKey): void;

  // ------------------------------------------------------------ signatures (PROTOCOL.md §1)

  ed25519Sign(privateKey: PrivateKey, data: Uint8Array): Buffer;
  /** False, never a throw, for a wrong key type or a bad signature. */
  ed25519Verify(publicKey: PublicKey, data: Uint8Array, signature: Uint8Array): boolean;
  /**
   * UserSign (PROTOCOL.md §1): RSA-PSS SHA-256 / MGF1-SHA-256 / salt 32, or Ed25519. An
   * implementation without synchronous RSA throws ProtocolError `internal` for RSA keys: use
   * userSignAsync.
   */
  userSign(privateKey: PrivateKey, data: Uint8Array): Buffer;
  /**
   * UserVerify (PROTOCOL.md §1, §9): RSA keys always as RSA-PSS with salt 32, never PKCS#1 v1.5,
   * never "any salt". False for a bad signature; an implementation without synchronous RSA throws
   * ProtocolError `internal` for RSA keys: use userVerifyAsync.
   */
  userVerify(publicKey: PublicKey, data: Uint8Array, signature: Uint8Array): boolean;
  /** userSign for every user key type, RSA included. */
  userSignAsync(privateKey: PrivateKey, data: Uint8Array): Promise<Buffer>;
  /** userVerify for every user key type, RSA included; resolves false, never rejects. */
  userVerifyAsync(publicKey: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/**
 * `Satisfies<typeof import('./x'), ProtocolCrypto<…>>` fails to compile unless module x implements
 * the interface; it is a type, so it costs nothing at run time.
 */
export type Satisfies<Module extends Contract, Contract> = Module;
