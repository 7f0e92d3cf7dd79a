/** PROTOCOL.md §6 "Message signature": the authorship signature every `send` carries. */
import { type KeyObject } from 'node:crypto';

import { LABELS, MAX_TIMESTAMP } from './constants';
import { sha256, userSign, userVerify } from './crypto';
import { fromBase64, label, lengthPrefixed, toBase64 } from './encoding';

export interface SignedMessageFields {
  /** The author's username; the server fills it in from the session, never from the client. */
  readonly from: string;
  readonly to: string;
  /** The client's message id. */
  readonly id: string;
  /** Client time, integer milliseconds, 0 ≤ ts < 2^53 (PROTOCOL.md §9). */
  readonly ts: number;
  readonly body: string;
}

/** `decimal(ts)`: shortest base-10, no sign, exponent or leading zeros (PROTOCOL.md §9). */
export function decimalTimestamp(ts: number): string {
  if (!Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP) {
    throw new RangeError('ts must be an integer in 0..2^53-1');
  }
  return ts.toString(10);
}

/** `M = F(from) || F(to) || F(id) || F(decimal(ts)) || F(body)`. */
export function messageInput(fields: SignedMessageFields): Buffer {
  return Buffer.concat([
    lengthPrefixed(fields.from),
    lengthPrefixed(fields.to),
    lengthPrefixed(fields.id),
    lengthPrefixed(decimalTimestamp(fields.ts)),
    lengthPrefixed(fields.body),
  ]);
}

/** `label("SecureChat v1 message") || SHA-256(M)`: the bytes UserSign covers. */
export function messageSignedBytes(fields: SignedMessageFields): Buffer {
  return Buffer.concat([label(LABELS.message), sha256(messageInput(fields))]);
}

/** The `sig` member of a `send`, base64. */
export function signMessage(privateKey: KeyObject, fields: SignedMessageFields): string {
  return toBase64(userSign(privateKey, messageSignedBytes(fields)));
}

/** Whether `sig` (base64) is the author's signature over these fields. Never throws on bad input. */
export function verifyMessage(
  publicKey: KeyObject,
  fields: SignedMessageFields,
  sig: string,
): boolean {
  let signed: Buffer;
  let signature: Buffer;
  try {
    signed = messageSignedBytes(fields);
    signature = fromBase64(sig, 'sig');
  } catch {
    return false;
  }
  return userVerify(publicKey, signed, signature);
}
