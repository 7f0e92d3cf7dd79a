/**
 * The primitives of PROTOCOL.md §1 (the ProtocolCrypto of crypto/protocol-crypto.ts). On Node
 * they are node:crypto's (crypto/node-crypto.ts); a browser bundle aliases that module to
 * crypto/browser-crypto.ts, which exports the same names (browser-crypto.spec.ts checks both
 * lists against this one).
 *
 * Named constants rather than `export *`: compiled to CommonJS, `export *` adds a second getter
 * (this module's, over node-crypto's) to every call the record layer and the handshake make;
 * these bindings are read once at load, so a call costs what it did before there were two
 * implementations.
 */
import * as implementation from './crypto/node-crypto';

export type * from './crypto/node-crypto';
export const {
  aesGcmOpen,
  aesGcmSeal,
  assertUserPrivateKey,
  ed25519PrivateKeyFromSeed,
  ed25519Sign,
  ed25519Verify,
  exportSpki,
  fingerprint,
  hkdfExpand,
  hkdfExtract,
  importServerKey,
  importUserPublicKey,
  parkPublicKey,
  publicKeyOf,
  randomBytes,
  sha256,
  sha256ChainStep,
  timingSafeEqual,
  unparkPublicKey,
  userKeyFromCryptoKeyPair,
  userSign,
  userSignAsync,
  userVerify,
  userVerifyAsync,
  x25519,
  x25519KeyPair,
} = implementation;
