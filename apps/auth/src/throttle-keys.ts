/**
 * The keys AuthService throttles on (docs/PROTOCOL.md §4.5: "throttled per username and per
 * source address"). Both are bounded in length whatever the client sent, so a throttle table
 * cannot be made to hold large strings.
 */
import { createHash } from 'node:crypto';

import { addressKey } from '@securechat/core';
import { USERNAME_PATTERN } from '@securechat/protocol';

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * A valid username is its own key. Anything else (which can never log in, but must be
 * answered like an unknown account) is keyed by its SHA-256: `:` cannot occur in a username,
 * so the two never collide.
 */
export function usernameThrottleKey(username: string): string {
  return USERNAME_PATTERN.test(username) ? username : `invalid:${digest(username)}`;
}

/** Per source address, IPv6 by its /64 (see addressKey, shared with the gateway's caps). */
export const addressThrottleKey = addressKey;
