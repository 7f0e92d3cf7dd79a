/** The key schedule of PROTOCOL.md §3 step 4 and §4, in the spec's names. */
import {
  AES_KEY_BYTES,
  GCM_NONCE_BYTES,
  HASH_BYTES,
  LABELS,
  TRAFFIC_SECRET_BYTES,
  X25519_KEY_BYTES,
} from './constants';
import { hkdfExpand, hkdfExtract, sha256 } from './crypto';
import { label } from './encoding';

function assertLength(value: Uint8Array, length: number, what: string): void {
  if (value.length !== length) throw new RangeError(`${what}: expected ${length} bytes`);
}

/** `H1 = SHA-256(frame1 || frame2)`, frames with their length prefixes (PROTOCOL.md §3 step 3). */
export function computeH1(frame1: Uint8Array, frame2: Uint8Array): Buffer {
  return sha256(frame1, frame2);
}

/** `H2 = SHA-256(frame1 || frame2 || frame3 || client_dh_pub)` (PROTOCOL.md §3 step 4). */
export function computeH2(
  frame1: Uint8Array,
  frame2: Uint8Array,
  frame3: Uint8Array,
  clientDhPub: Uint8Array,
): Buffer {
  assertLength(clientDhPub, X25519_KEY_BYTES, 'computeH2 client_dh_pub');
  return sha256(frame1, frame2, frame3, clientDhPub);
}

/** What the server's Ed25519 identity signs in `server_auth` (PROTOCOL.md §3 step 3). */
export function serverAuthInput(h1: Uint8Array): Buffer {
  assertLength(h1, HASH_BYTES, 'serverAuthInput H1');
  return Buffer.concat([label(LABELS.serverAuth), h1]);
}

/** What the user signs in the login payload (PROTOCOL.md §3 step 4). */
export function clientAuthInput(h2: Uint8Array): Buffer {
  assertLength(h2, HASH_BYTES, 'clientAuthInput H2');
  return Buffer.concat([label(LABELS.clientAuth), h2]);
}

/** `PRK = HKDF-Extract(salt = H2, ikm = shared)` (PROTOCOL.md §3 step 4). */
export function derivePrk(h2: Uint8Array, shared: Uint8Array): Buffer {
  assertLength(h2, HASH_BYTES, 'derivePrk H2');
  assertLength(shared, X25519_KEY_BYTES, 'derivePrk shared');
  return hkdfExtract(h2, shared);
}

export interface TrafficSecrets {
  /** The client's sending secret, the server's receiving one. */
  readonly c2s: Buffer;
  /** The server's sending secret, the client's receiving one. */
  readonly s2c: Buffer;
}

/** `c2s_secret` and `s2c_secret` (PROTOCOL.md §3 step 4). */
export function deriveTrafficSecrets(prk: Uint8Array): TrafficSecrets {
  return {
    c2s: hkdfExpand(prk, LABELS.c2s, TRAFFIC_SECRET_BYTES),
    s2c: hkdfExpand(prk, LABELS.s2c, TRAFFIC_SECRET_BYTES),
  };
}

export interface RecordKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
}

/** `key` and `iv` of one direction from its traffic secret (PROTOCOL.md §4). */
export function deriveRecordKeys(secret: Uint8Array): RecordKeys {
  assertLength(secret, TRAFFIC_SECRET_BYTES, 'deriveRecordKeys secret');
  return {
    key: hkdfExpand(secret, LABELS.key, AES_KEY_BYTES),
    iv: hkdfExpand(secret, LABELS.iv, GCM_NONCE_BYTES),
  };
}

/** The next traffic secret after a `key_update` (PROTOCOL.md §4). */
export function nextTrafficSecret(secret: Uint8Array): Buffer {
  assertLength(secret, TRAFFIC_SECRET_BYTES, 'nextTrafficSecret secret');
  return hkdfExpand(secret, LABELS.keyUpdate, TRAFFIC_SECRET_BYTES);
}
