/**
 * What makes a public key acceptable as a user key (PROTOCOL.md §1), on its numbers and bytes
 * alone: shared by node-crypto.ts and browser-crypto.ts so that both refuse exactly the same keys.
 * No cryptography here, and nothing from node:crypto.
 */
import {
  MAX_RSA_EXPONENT,
  MAX_RSA_MODULUS_BITS,
  MIN_RSA_EXPONENT,
  MIN_RSA_MODULUS_BITS,
} from '../constants';
import { ProtocolError } from '../errors/protocol-error';

/** DER headers that turn 32 raw key bytes into PKCS#8 / SPKI (RFC 8410). */
export const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
export const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
export const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Whether `spkiDer` is the one DER encoding of an Ed25519 key (RFC 8410 §4): prefix and 32 bytes. */
export function isEd25519Spki(spkiDer: Uint8Array): boolean {
  return (
    spkiDer.length === ED25519_SPKI_PREFIX.length + 32 &&
    ED25519_SPKI_PREFIX.equals(spkiDer.subarray(0, ED25519_SPKI_PREFIX.length))
  );
}

/** Little-endian encodings of the small-order Ed25519 points, sign bit masked (as libsodium). */
const ED25519_SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => Buffer.from(h, 'hex'));
const ED25519_P = 2n ** 255n - 19n;

/**
 * A public key of small order verifies forged signatures (the identity point accepts
 * `01 00…00 ‖ 00…00` for every message), which would void the signature factor of a login and
 * the evidence of PROTOCOL.md §8; a non-canonical y has two encodings. Neither is a key anyone
 * generated. `raw` is the 32-byte encoded point.
 */
export function isWeakEd25519(raw: Uint8Array): boolean {
  const masked = Buffer.from(raw);
  masked[31] = masked[31]! & 0x7f;
  if (ED25519_SMALL_ORDER.some((bad) => bad.equals(masked))) return true;
  const y = BigInt(`0x${Buffer.from(masked).reverse().toString('hex')}`);
  return y >= ED25519_P;
}

export function assertEd25519UserKey(raw: Uint8Array, field: string): void {
  if (isWeakEd25519(raw)) {
    throw new ProtocolError('bad_request', `${field}: Ed25519 key of small order or not canonical`);
  }
}

/** The modulus and exponent rules for an RSA user key (PROTOCOL.md §1 and ours beyond it). */
export function assertRsaUserKey(bits: number, e: bigint, field: string): void {
  if (bits < MIN_RSA_MODULUS_BITS || bits > MAX_RSA_MODULUS_BITS) {
    throw new ProtocolError(
      'bad_request',
      `${field}: RSA modulus must be ${MIN_RSA_MODULUS_BITS} to ${MAX_RSA_MODULUS_BITS} bits`,
    );
  }
  // PROTOCOL.md §1 sets no rule; we do: e = 1 makes signatures forgeable, a huge e makes every
  // verify expensive. FIPS 186-5 range, bounded to 32 bits.
  if (e % 2n === 0n || e < MIN_RSA_EXPONENT || e >= MAX_RSA_EXPONENT) {
    throw new ProtocolError(
      'bad_request',
      `${field}: RSA public exponent must be odd, 65537..2^32`,
    );
  }
}

export function rejectUserKeyType(field: string): never {
  throw new ProtocolError('bad_request', `${field}: key type is neither RSA nor Ed25519`);
}
