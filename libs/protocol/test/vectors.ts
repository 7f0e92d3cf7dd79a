/** Typed access to the known-answer vectors copied from shared/protocol/vectors.json. */
import { createPrivateKey } from 'node:crypto';

import {
  ed25519PrivateKeyFromSeed,
  importUserPublicKey,
  userKeyFromCryptoKeyPair,
  x25519KeyPair,
} from '../src/crypto';
import raw from './fixtures/vectors.json';

export const vectors = raw;

export const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
export const hex = (s: string): Buffer => Buffer.from(s, 'hex');

export const serverIdentityKey = ed25519PrivateKeyFromSeed(
  hex(vectors.keys.server_identity_ed25519_seed_hex),
);
export const userEd25519Key = ed25519PrivateKeyFromSeed(hex(vectors.keys.user_ed25519_seed_hex));
/** A node:crypto KeyObject whichever implementation ./crypto is (see userRsaKeyHandle). */
export const userRsaKey = createPrivateKey(vectors.keys.user_rsa_pkcs8_pem);
/** The RSA user public key, imported by ./crypto (a KeyObject, or a browser-crypto handle). */
export const userRsaPublicKey = () => importUserPublicKey(b64(vectors.keys.user_rsa_spki));

/**
 * The RSA user private key as a browser holds one: imported into WebCrypto (not extractable),
 * then made a key of ./crypto. Asynchronous, as WebCrypto is.
 */
export async function userRsaKeyHandle() {
  const { subtle } = globalThis.crypto;
  const algorithm = { name: 'RSA-PSS', hash: 'SHA-256' };
  const pkcs8 = userRsaKey.export({ format: 'der', type: 'pkcs8' });
  return userKeyFromCryptoKeyPair({
    privateKey: await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']),
    publicKey: await subtle.importKey('spki', b64(vectors.keys.user_rsa_spki), algorithm, true, [
      'verify',
    ]),
  });
}
export const serverEphemeral = () =>
  x25519KeyPair(hex(vectors.keys.server_ephemeral_x25519_private_hex));
export const clientEphemeral = () =>
  x25519KeyPair(hex(vectors.keys.client_ephemeral_x25519_private_hex));

/** The random bytes the vectors' client_hello and server_hello carry. */
export function helloRandom() {
  const frame1 = JSON.parse(b64(vectors.handshake.frame1).subarray(4).toString('utf8')) as {
    nonce: string;
  };
  const frame2 = JSON.parse(b64(vectors.handshake.frame2).subarray(4).toString('utf8')) as {
    challenge: string;
  };
  return { nonce: b64(frame1.nonce), challenge: b64(frame2.challenge) };
}

export type VectorRecord = (typeof vectors.records)[number];
