/**
 * PROTOCOL.md §3 step 4: the plaintext of the login record. Note that it has `action` and no
 * `type`, although PROTOCOL.md §5 says every plaintext has a `type`; we follow PROTOCOL.md §3 for
 * this one record.
 */
import { z } from 'zod';

import { MAX_USER_PUBLIC_KEY_BYTES, MAX_USER_SIGNATURE_BYTES } from '../constants';
import { base64Field, parseStrict } from './fields';
import { parseJsonObject } from './json';

const signature = base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES });

export const loginPayloadSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('login'),
    username: z.string(),
    password: z.string(),
    signature,
  }),
  z.strictObject({
    action: z.literal('register'),
    username: z.string(),
    password: z.string(),
    signature,
    public_key: base64Field({ min: 1, max: MAX_USER_PUBLIC_KEY_BYTES }),
  }),
]);

export type LoginPayload = z.infer<typeof loginPayloadSchema>;

export function parseLoginPayload(plaintext: Uint8Array): LoginPayload {
  return parseStrict(loginPayloadSchema, parseJsonObject(plaintext), 'login payload');
}
