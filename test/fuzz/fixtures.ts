/**
 * Fixed keys and randomness for the fuzz targets: the protocol's known-answer vectors
 * (shared/protocol/vectors.json, copied to libs/protocol/test/fixtures). With the vectors'
 * nonce, challenge and ephemeral keys a handshake is byte-for-byte the one in the vectors, so a
 * seed made of the vectors' frames gets past every signature and AEAD check, and any input
 * replays the same way.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

import { clientAuthInput, exportSpki, fingerprint, toBase64, userSign } from '@securechat/protocol';

import {
  b64,
  clientEphemeral as makeClientEphemeral,
  helloRandom,
  serverEphemeral as makeServerEphemeral,
  serverIdentityKey,
  userEd25519Key,
  vectors,
} from '../../libs/protocol/test/vectors';

export { b64, serverIdentityKey, vectors };

// Made once: importing a key costs about a millisecond under OpenSSL 3, more than the rest of
// a handshake. KeyObjects are immutable, so every execution can share them.
const clientEphemeralPair = makeClientEphemeral();
const serverEphemeralPair = makeServerEphemeral();
export const clientEphemeral = () => clientEphemeralPair;
export const serverEphemeral = () => serverEphemeralPair;
/** Verifying with a private KeyObject derives its public key each time: keep the public one. */
export const serverPublicKey = createPublicKey(serverIdentityKey);

/** alice's key: Ed25519, so a login costs microseconds (RSA would cost milliseconds). */
export const aliceKey: KeyObject = userEd25519Key;
export const alicePublicKey = createPublicKey(aliceKey);
export const ALICE = 'alice';
export const ALICE_PASSWORD = 'correct horse battery staple';
export const serverFingerprint = fingerprint(exportSpki(serverIdentityKey));
export const { nonce: FIXED_NONCE, challenge: FIXED_CHALLENGE } = helloRandom();

/** The vectors' session: login_ok's time and session id. */
export const SESSION_ID = 's-0001';
export const SERVER_TIME = 1764000000001;

/** The vectors' frames 1–4 (client_hello, server_hello, server_auth, login), prefix included. */
export const vectorFrames = {
  clientHello: b64(vectors.handshake.frame1),
  serverHello: b64(vectors.handshake.frame2),
  serverAuth: b64(vectors.handshake.frame3),
  login: b64(vectors.handshake.frame4),
};

/**
 * A placeholder the targets replace with a valid signature before sealing, so that inputs can
 * carry "a correct signature over whatever the rest of this message says" (PROTOCOL.md §3 client
 * auth, PROTOCOL.md §6 message signature): the fuzzer mutates the fields, the harness signs them.
 */
export const SIGN_PLACEHOLDER = 'SIGN';

/** `S` of PROTOCOL.md §3 step 4 by alice over H2. */
export function clientAuthSignature(h2: Uint8Array, key: KeyObject = aliceKey): string {
  return toBase64(userSign(key, clientAuthInput(h2)));
}
