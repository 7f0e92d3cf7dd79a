/**
 * How the client decides whether to trust a server's key on this connection
 * (docs/PROTOCOL.md §4.3): a pinned key is enforced and never replaced; otherwise a fingerprint
 * configured out of band, or trust on first use (automatic or asked). No I/O of its own: the store
 * is injected.
 */
import { type ServerTrust } from '@securechat/protocol';

import { TrustConfigurationError } from './client-errors';
import { type KnownServersStore } from './known-servers';

/** What the user is shown on first contact with a server (docs/PROTOCOL.md §4.3). */
export interface FirstContact {
  /** `host:port`. */
  readonly address: string;
  readonly fingerprint: string;
}

/**
 * How an unpinned server is trusted: `'tofu'` pins the first key that proves itself, `ask`
 * asks the user (like SSH's prompt), `fingerprint` is a fingerprint configured out of band.
 * Whatever the policy, a pinned key is enforced and never replaced.
 */
export type ServerTrustPolicy =
  | 'tofu'
  | { readonly ask: (contact: FirstContact) => boolean | Promise<boolean> }
  | { readonly fingerprint: string };

export interface ClientTrustOptions {
  readonly store: KnownServersStore;
  readonly policy: ServerTrustPolicy;
}

export interface ResolvedServerTrust {
  readonly trust: ServerTrust;
  /** A configured fingerprint to pin once the login succeeded. */
  readonly pinAfterLogin?: string;
}

/**
 * The trust for one connection attempt. The first-use callback runs only after `server_auth`
 * verified (docs/PROTOCOL.md §10 item 19) and pins before the login record is sent.
 */
export async function resolveServerTrust(
  address: string,
  { store, policy }: ClientTrustOptions,
): Promise<ResolvedServerTrust> {
  const pinned = await store.get(address);
  const configured =
    typeof policy === 'object' && 'fingerprint' in policy ? policy.fingerprint : undefined;
  if (pinned !== undefined) {
    if (configured !== undefined && configured !== pinned) {
      throw new TrustConfigurationError(address, pinned, configured);
    }
    return { trust: { fingerprint: pinned } };
  }
  if (configured !== undefined) {
    return { trust: { fingerprint: configured }, pinAfterLogin: configured };
  }
  return {
    trust: {
      onFirstUse: async ({ fingerprint }) => {
        const accepted =
          policy === 'tofu'
            ? true
            : typeof policy === 'object' && 'ask' in policy
              ? await policy.ask({ address, fingerprint })
              : false;
        if (accepted) await store.pin(address, fingerprint);
        return accepted;
      },
    },
  };
}
