/** Typed access to the known-answer vectors copied from shared/protocol/vectors.json. */
import { createPrivateKey } from 'node:crypto';

import { ed25519PrivateKeyFromSeed, x25519KeyPair } from '../src/crypto';
import raw from './fixtures/vectors.json';

export const vectors = raw;

export const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
export const hex = (s: string): Buffer => Buffer.from(s, 'hex');

export const serverIdentityKey = ed25519PrivateKeyFromSeed(
  hex(vectors.keys.server_identity_ed25519_seed_hex),
);
export const userEd25519Key = ed25519PrivateKeyFromSeed(hex(vectors.keys.user_ed25519_seed_hex));
export const userRsaKey = createPrivateKey(vectors.keys.user_rsa_pkcs8_pem);
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
