/**
 * PROTOCOL.md §3 step 5 and §6: what a server sends inside the session. Strict, like every schema
 * here.
 */
import { z } from 'zod';

import {
  ED25519_SIGNATURE_BYTES,
  HASH_BYTES,
  MAX_USER_PUBLIC_KEY_BYTES,
  MAX_USER_SIGNATURE_BYTES,
} from '../constants';
import { base64Field, parseStrict, safeUint } from './fields';
import { errorSchema } from './handshake-frames';
import { parseJsonObject } from './json';

const chain = base64Field(HASH_BYTES);

export const loginOkSchema = z.strictObject({
  type: z.literal('login_ok'),
  username: z.string(),
  session_id: z.string(),
  server_time: safeUint,
});
export const ackSchema = z.strictObject({
  type: z.literal('ack'),
  id: z.string(),
  msg_id: z.string(),
  server_ts: safeUint,
});
export const deliverSchema = z.strictObject({
  type: z.literal('deliver'),
  msg_id: z.string(),
  id: z.string(),
  from: z.string(),
  to: z.string(),
  body: z.string(),
  ts: safeUint,
  server_ts: safeUint,
  sig: base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES }),
});
export const receiptSchema = z.strictObject({
  type: z.literal('receipt'),
  session_id: z.string(),
  c2s_count: safeUint,
  c2s_chain: chain,
  s2c_count: safeUint,
  s2c_chain: chain,
  signature: base64Field(ED25519_SIGNATURE_BYTES),
});
export const serverKeyUpdateSchema = z.strictObject({ type: z.literal('key_update') });
export const joinedSchema = z.strictObject({
  type: z.literal('joined'),
  room: z.string(),
  members: z.array(z.string()),
});
export const leftSchema = z.strictObject({ type: z.literal('left'), room: z.string() });
export const keySchema = z.strictObject({
  type: z.literal('key'),
  user: z.string(),
  public_key: base64Field({ min: 1, max: MAX_USER_PUBLIC_KEY_BYTES }),
  fingerprint: z.string(),
});
/**
 * PROTOCOL.md §6 says `messages` is "a list of deliver objects"; we read that as including
 * `"type":"deliver"`.
 */
export const historySchema = z.strictObject({
  type: z.literal('history'),
  with: z.string(),
  messages: z.array(deliverSchema),
});
export const pongSchema = z.strictObject({ type: z.literal('pong'), n: safeUint.optional() });

/** What a server may send inside an established session (`login_ok` is the handshake's). */
export const serverMessageSchema = z.discriminatedUnion('type', [
  ackSchema,
  deliverSchema,
  errorSchema,
  receiptSchema,
  serverKeyUpdateSchema,
  joinedSchema,
  leftSchema,
  keySchema,
  historySchema,
  pongSchema,
]);

export type LoginOk = z.infer<typeof loginOkSchema>;
export type Ack = z.infer<typeof ackSchema>;
export type Deliver = z.infer<typeof deliverSchema>;
export type Receipt = z.infer<typeof receiptSchema>;
export type Joined = z.infer<typeof joinedSchema>;
export type Left = z.infer<typeof leftSchema>;
export type KeyAnswer = z.infer<typeof keySchema>;
export type History = z.infer<typeof historySchema>;
export type Pong = z.infer<typeof pongSchema>;
export type ServerMessage = z.infer<typeof serverMessageSchema>;

export function parseServerMessage(plaintext: Uint8Array): ServerMessage {
  return parseStrict(serverMessageSchema, parseJsonObject(plaintext), 'message');
}
