/** The client side of a login as the gateway specs drive it: alice, trusting on first use. */
import { type KeyObject } from 'node:crypto';

import { ClientHandshake } from '@securechat/protocol';

export const ALICE_PASSWORD = 'correct horse battery staple';

export function aliceHandshake(privateKey: KeyObject): ClientHandshake {
  return new ClientHandshake({
    trust: { onFirstUse: () => true },
    credentials: { action: 'login', username: 'alice', password: ALICE_PASSWORD, privateKey },
  });
}
