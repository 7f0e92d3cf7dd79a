/**
 * The plaintext frames (PROTOCOL.md §2, §3): `client_hello`, `server_hello`, `server_auth`,
 * `login`, `enc` (PROTOCOL.md §5) and `error`. Every schema is strict: an unknown member is
 * `bad_frame`.
 */
import { z } from 'zod';

import {
  CHALLENGE_BYTES,
  ED25519_SIGNATURE_BYTES,
  GCM_TAG_BYTES,
  MAX_USER_PUBLIC_KEY_BYTES,
  NONCE_BYTES,
  PROTOCOL_ID,
  X25519_KEY_BYTES,
} from '../constants';
import { ERROR_CODES } from '../errors/error-codes';
import { ProtocolError } from '../errors/protocol-error';
import { base64Field, parseStrict, safeUint } from './fields';
import { parseJsonObject } from './json';

/** Most a record's ciphertext can be: the whole frame is bounded by max_frame anyway. */
const MAX_RECORD_BYTES = 1 << 30;

export const clientHelloSchema = z.strictObject({
  type: z.literal('client_hello'),
  protocol: z.string(),
  nonce: base64Field(NONCE_BYTES),
});

export const serverHelloSchema = z.strictObject({
  type: z.literal('server_hello'),
  server_version: z.string(),
  challenge: base64Field(CHALLENGE_BYTES),
  dh_pub: base64Field(X25519_KEY_BYTES),
  server_key: base64Field({ min: 1, max: MAX_USER_PUBLIC_KEY_BYTES }),
});

export const serverAuthSchema = z.strictObject({
  type: z.literal('server_auth'),
  signature: base64Field(ED25519_SIGNATURE_BYTES),
});

export const loginFrameSchema = z.strictObject({
  type: z.literal('login'),
  dh_pub: base64Field(X25519_KEY_BYTES),
  payload: base64Field({ min: GCM_TAG_BYTES, max: MAX_RECORD_BYTES }),
});

export const encFrameSchema = z.strictObject({
  type: z.literal('enc'),
  ct: base64Field({ min: GCM_TAG_BYTES, max: MAX_RECORD_BYTES }),
});

/**
 * PROTOCOL.md §2: `rate_limited` carries an integer `retry_after`; a request's `id` is echoed
 * (PROTOCOL.md §6).
 */
export const errorSchema = z
  .strictObject({
    type: z.literal('error'),
    code: z.enum(ERROR_CODES),
    message: z.string(),
    id: z.string().optional(),
    retry_after: safeUint.optional(),
  })
  .refine((e) => e.code !== 'rate_limited' || e.retry_after !== undefined, {
    message: 'rate_limited without retry_after',
    path: ['retry_after'],
  });

export const frameSchema = z.discriminatedUnion('type', [
  clientHelloSchema,
  serverHelloSchema,
  serverAuthSchema,
  loginFrameSchema,
  encFrameSchema,
  errorSchema,
]);

export type ClientHello = z.infer<typeof clientHelloSchema>;
export type ServerHello = z.infer<typeof serverHelloSchema>;
export type ServerAuth = z.infer<typeof serverAuthSchema>;
export type LoginFrame = z.infer<typeof loginFrameSchema>;
export type EncFrame = z.infer<typeof encFrameSchema>;
export type ErrorMessage = z.infer<typeof errorSchema>;
export type Frame = z.infer<typeof frameSchema>;

/**
 * Parses a frame body (PROTOCOL.md §2). A `client_hello` naming another protocol is
 * `unsupported_protocol` (PROTOCOL.md §3 step 1) even if its other members are not ours.
 */
export function parseFrame(body: Uint8Array): Frame {
  const object = parseJsonObject(body);
  if (
    object.type === 'client_hello' &&
    typeof object.protocol === 'string' &&
    object.protocol !== PROTOCOL_ID
  ) {
    throw new ProtocolError('unsupported_protocol', `only ${PROTOCOL_ID} is supported`);
  }
  return parseStrict(frameSchema, object, 'frame');
}
