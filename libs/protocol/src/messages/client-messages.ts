/**
 * PROTOCOL.md §6: what a client sends inside the session. These schemas check structure and JSON
 * types (failures are `bad_frame`); value rules — patterns, ranges, sizes — are in request-rules.ts
 * and answered with `bad_request`/`too_large`, keeping the session.
 */
import { z } from 'zod';

import { HASH_BYTES, MAX_USER_SIGNATURE_BYTES } from '../constants';
import { base64Field, parseStrict, safeUint } from './fields';
import { parseJsonObject } from './json';

const userSignature = base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES });
const chain = base64Field(HASH_BYTES);

export const sendSchema = z.strictObject({
  type: z.literal('send'),
  id: z.string(),
  to: z.string(),
  body: z.string(),
  ts: z.number(),
  sig: userSignature,
});
export const deliveredSchema = z.strictObject({ type: z.literal('delivered'), msg_id: z.string() });
export const joinSchema = z.strictObject({ type: z.literal('join'), room: z.string() });
export const leaveSchema = z.strictObject({ type: z.literal('leave'), room: z.string() });
export const getKeySchema = z.strictObject({ type: z.literal('get_key'), user: z.string() });
export const historyRequestSchema = z.strictObject({
  type: z.literal('history'),
  with: z.string(),
  before: z.string().optional(),
  limit: z.number().optional(),
});
export const pingSchema = z.strictObject({ type: z.literal('ping'), n: z.number().optional() });
export const keyUpdateSchema = z.strictObject({ type: z.literal('key_update') });
export const byeSchema = z.strictObject({ type: z.literal('bye') });
export const countersignSchema = z.strictObject({
  type: z.literal('countersign'),
  c2s_count: safeUint,
  c2s_chain: chain,
  s2c_count: safeUint,
  s2c_chain: chain,
  signature: userSignature,
});

export const clientMessageSchema = z.discriminatedUnion('type', [
  sendSchema,
  deliveredSchema,
  joinSchema,
  leaveSchema,
  getKeySchema,
  historyRequestSchema,
  pingSchema,
  keyUpdateSchema,
  byeSchema,
  countersignSchema,
]);

export type SendMessage = z.infer<typeof sendSchema>;
export type DeliveredMessage = z.infer<typeof deliveredSchema>;
export type JoinMessage = z.infer<typeof joinSchema>;
export type LeaveMessage = z.infer<typeof leaveSchema>;
export type GetKeyMessage = z.infer<typeof getKeySchema>;
export type HistoryRequest = z.infer<typeof historyRequestSchema>;
export type PingMessage = z.infer<typeof pingSchema>;
export type CountersignMessage = z.infer<typeof countersignSchema>;
export type ClientMessage = z.infer<typeof clientMessageSchema>;

export function parseClientMessage(plaintext: Uint8Array): ClientMessage {
  return parseStrict(clientMessageSchema, parseJsonObject(plaintext), 'message');
}
