/**
 * Byte-level notation of PROTOCOL.md §1 and the base64 rule of PROTOCOL.md §2. Every function
 * checks its arguments: these are the entry points all hashing and signing goes through.
 */
import { ProtocolError } from './errors/protocol-error';

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Decodes `text` if it is canonical standard base64: RFC 4648 §4 alphabet, padding present,
 * and the unused bits of the last group zero (RFC 4648 §3.5); undefined otherwise. PROTOCOL.md §2
 * only says "standard base64 with padding"; we also require canonical form so that one value has
 * one spelling. node's decoder skips what it does not understand (whitespace, `-`/`_`, missing
 * padding), and re-encoding always yields the canonical text, so "re-encodes to itself" is
 * exactly the rule — one decode and one encode, no regular expression over large inputs.
 */
export function decodeCanonicalBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Whether `text` is canonical standard base64 (see decodeCanonicalBase64). */
export function isCanonicalBase64(text: string): boolean {
  return decodeCanonicalBase64(text) !== undefined;
}

/**
 * Decodes a PROTOCOL.md §2 binary field. Throws `bad_frame` on non-canonical base64 or, when
 * `length` is given, on any other decoded length. `field` names the member in the error, never its
 * value.
 */
export function fromBase64(text: string, field: string, length?: number): Buffer {
  const bytes = decodeCanonicalBase64(text);
  if (bytes === undefined) {
    throw new ProtocolError('bad_frame', `${field}: not canonical padded base64`);
  }
  if (length !== undefined && bytes.length !== length) {
    throw new ProtocolError('bad_frame', `${field}: expected ${length} bytes`);
  }
  return bytes;
}

/** `u32(n)`, big-endian (PROTOCOL.md §1). */
export function u32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new RangeError('u32: expected an integer in 0..2^32-1');
  }
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(n, 0);
  return out;
}

/** `u64(n)`, big-endian (PROTOCOL.md §1). Counts here never exceed 2^53, so a number is enough. */
export function u64(n: number | bigint): Buffer {
  const value = typeof n === 'bigint' ? n : BigInt(n);
  if ((typeof n === 'number' && !Number.isSafeInteger(n)) || value < 0n || value >= 1n << 64n) {
    throw new RangeError('u64: expected an integer in 0..2^64-1');
  }
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(value, 0);
  return out;
}

/**
 * UTF-8 bytes of a string. Rejects unpaired surrogates, which have no UTF-8 form (PROTOCOL.md §1
 * "text is UTF-8 first").
 */
export function utf8(text: string): Buffer {
  if (!text.isWellFormed()) throw new RangeError('utf8: string has an unpaired surrogate');
  return Buffer.from(text, 'utf8');
}

/** `F(x) = u32(len(x)) || x`; text is UTF-8 first (PROTOCOL.md §1). */
export function lengthPrefixed(x: Uint8Array | string): Buffer {
  const bytes = typeof x === 'string' ? utf8(x) : x;
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** `label(s) = ASCII(s) || 0x00` (PROTOCOL.md §1). */
export function label(s: string): Buffer {
  if (!/^[\x20-\x7e]+$/.test(s)) throw new RangeError('label: expected printable ASCII');
  return Buffer.from(`${s}\0`, 'ascii');
}
