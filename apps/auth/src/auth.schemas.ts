/**
 * The shapes of what the transport hands the auth controller (libs/core auth.contracts.ts),
 * checked strictly: the gateway is trusted to have validated the login record (docs/PROTOCOL.md
 * §3.2, §10.1), but a payload that reaches us malformed is answered, never acted on.
 */
import { z } from 'zod';

import { ACCOUNT_STATES_MAX_USERNAMES } from '@securechat/core';
import {
  base64Field,
  HASH_BYTES,
  MAX_USER_PUBLIC_KEY_BYTES,
  MAX_USER_SIGNATURE_BYTES,
} from '@securechat/protocol';

/** Longest textual IPv6 address with a zone id, with room to spare. Not a protocol number. */
const MAX_SOURCE_ADDRESS_LENGTH = 100;

// Username and password stay free-form strings here: a login with an invalid one must get the
// same `auth_failed` as any other failure (docs/PROTOCOL.md §4.5), so their rules are applied by
// AuthService.
const credentials = {
  username: z.string(),
  password: z.string(),
  signature: base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES }),
  h2: base64Field(HASH_BYTES),
  sourceAddress: z.string().min(1).max(MAX_SOURCE_ADDRESS_LENGTH),
};

/** LoginCommand: `publicKey` is required for `register` and not allowed for `login`. */
export const loginCommandSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('login'), ...credentials }),
  z.strictObject({
    action: z.literal('register'),
    ...credentials,
    publicKey: base64Field({ min: 1, max: MAX_USER_PUBLIC_KEY_BYTES }),
  }),
]);

/** GetKeyQuery. */
export const getKeyQuerySchema = z.strictObject({ user: z.string() });

/**
 * Longer than any username (docs/PROTOCOL.md §4.4: at most 32 characters), so a name that could
 * never match is left out by AuthService rather than refusing the gateway's whole batch.
 */
const MAX_RECHECKED_NAME_LENGTH = 64;

/** AccountStatesQuery: a bounded batch of names, so that one request's work is bounded. */
export const accountStatesQuerySchema = z.strictObject({
  usernames: z.array(z.string().max(MAX_RECHECKED_NAME_LENGTH)).max(ACCOUNT_STATES_MAX_USERNAMES),
});
