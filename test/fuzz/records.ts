/**
 * The record layer from the outside: the harness derives a session's keys the way either peer
 * does (PROTOCOL.md §3 step 4) from the frames it saw and its own ephemeral key, then seals
 * whatever plaintext the fuzzer made, so that inputs reach the parsers behind the AEAD instead of
 * dying at it.
 */
import {
  computeH2,
  derivePrk,
  deriveTrafficSecrets,
  fromBase64,
  type LoginOk,
  loginOkSchema,
  parseJsonObject,
  parseServerMessage,
  parseStrict,
  RecordDirection,
  serializeJson,
  toBase64,
  u32,
  x25519,
  type X25519KeyPair,
  type ServerMessage,
} from '@securechat/protocol';

import { invariant } from './harness';

export interface SessionKeys {
  readonly h2: Buffer;
  readonly c2s: RecordDirection;
  readonly s2c: RecordDirection;
}

/**
 * Both directions of a session from one side's view: `own` is this side's ephemeral key pair,
 * `peerDhPub` the other's public key; `clientDhPub` is what H2 covers (PROTOCOL.md §3 step 4).
 */
export function deriveSessionKeys(
  frames: { frame1: Buffer; frame2: Buffer; frame3: Buffer },
  own: X25519KeyPair,
  peerDhPub: Buffer,
  clientDhPub: Buffer,
): SessionKeys {
  const h2 = computeH2(frames.frame1, frames.frame2, frames.frame3, clientDhPub);
  const secrets = deriveTrafficSecrets(derivePrk(h2, x25519(own.privateKey, peerDhPub)));
  return {
    h2,
    c2s: new RecordDirection('c2s', secrets.c2s),
    s2c: new RecordDirection('s2c', secrets.s2c),
  };
}

/** `u32(N) || body` without the bound check of encodeFrame: oversized frames are inputs too. */
export function rawFrame(body: Buffer): Buffer {
  return Buffer.concat([u32(body.length), body]);
}

export function jsonFrame(message: object): Buffer {
  return rawFrame(serializeJson(message));
}

/** Seals `plaintext` as the next record of `direction` and frames it as `enc` (PROTOCOL.md §5). */
export function sealedFrame(direction: RecordDirection, plaintext: Buffer): Buffer {
  return jsonFrame({ type: 'enc', ct: toBase64(direction.seal(plaintext)) });
}

/**
 * Opens a record a peer under test sent: it must be a well-formed `enc` frame that
 * authenticates under the next sequence number (the peer is ours: it never sends garbage).
 */
export function openSealed(direction: RecordDirection, body: Buffer, where: string): Buffer {
  const frame = parseJsonObject(body);
  invariant(
    frame.type === 'enc' && typeof frame.ct === 'string',
    `${where}: expected an enc frame`,
  );
  return direction.open(fromBase64(frame.ct, 'ct'));
}

/**
 * Replaces every `"PLACEHOLDER"` in `text` by `"<value>"` (by the bare value when `value` is a
 * number), leaving every other byte as it was.
 */
export function fillPlaceholder(text: Buffer, placeholder: string, value: string | number): Buffer {
  const needle = Buffer.from(`"${placeholder}"`);
  const replacement = Buffer.from(typeof value === 'number' ? String(value) : `"${value}"`);
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, from)) {
    parts.push(text.subarray(from, at), replacement);
    from = at + needle.length;
  }
  if (parts.length === 0) return text;
  parts.push(text.subarray(from));
  return Buffer.concat(parts);
}

/** The answer to `login` (PROTOCOL.md §3 step 5): `login_ok`, or an `error` record. */
export function parseLoginReply(plaintext: Buffer): LoginOk | ServerMessage {
  const object = parseJsonObject(plaintext);
  if (object.type === 'login_ok') return parseStrict(loginOkSchema, object, 'login_ok');
  return parseServerMessage(plaintext);
}
