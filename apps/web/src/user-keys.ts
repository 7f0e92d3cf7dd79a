/**
 * The user's key in the browser: an Ed25519 WebCrypto key pair made here with a non-extractable
 * private half (the page can sign with it, nothing can read it out, IndexedDB stores it as is),
 * turned into the key handle libs/protocol signs with through its *Async functions.
 */
import { type ClientCredentials, userKeyFromCryptoKeyPair } from '@securechat/protocol';

export async function generateUserKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
}

/** The handle ClientHandshake and ClientSession take (browser-crypto's, typed as node's). */
export function userKeyOf(pair: {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}): Promise<ClientCredentials['privateKey']> {
  return userKeyFromCryptoKeyPair(pair);
}
