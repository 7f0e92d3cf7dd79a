/**
 * One direction of the record layer: PROTOCOL.md §4 (keys, sequence numbers, key update) and
 * PROTOCOL.md §5 (records).
 */
import { ownedCopy } from './compact-bytes';
import {
  AES_KEY_BYTES,
  GCM_NONCE_BYTES,
  KEY_UPDATE_LIMIT,
  TRAFFIC_SECRET_BYTES,
} from './constants';
import { aesGcmOpen, aesGcmSeal } from './crypto';
import { ProtocolError } from './errors/protocol-error';
import { RecordAuthenticationError } from './errors/record-authentication-error';
import { deriveRecordKeys, nextTrafficSecret } from './key-schedule';

export type Direction = 'c2s' | 's2c';

/** `nonce = iv XOR (0x00000000 || u64(n))` (PROTOCOL.md §5). */
export function recordNonce(iv: Uint8Array, sequence: number): Buffer {
  if (iv.length !== GCM_NONCE_BYTES) throw new RangeError('recordNonce: iv must be 12 bytes');
  if (!Number.isSafeInteger(sequence) || sequence < 0) {
    throw new RangeError('recordNonce: sequence must be a non-negative integer');
  }
  const nonce = Buffer.from(iv);
  // The sequence never reaches 2^53 (PROTOCOL.md §4 caps it at 2^24), so hi/lo 32-bit halves are
  // exact.
  const hi = Math.floor(sequence / 2 ** 32);
  const lo = sequence >>> 0;
  nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ hi) >>> 0, 4);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ lo) >>> 0, 8);
  return nonce;
}

/** Where the iv starts in a direction's `secret || key || iv`. */
const IV_OFFSET = TRAFFIC_SECRET_BYTES + AES_KEY_BYTES;

/** A traffic secret and its record key and iv (PROTOCOL.md §4), as RecordDirection keeps them. */
function materialOf(secret: Uint8Array): Buffer {
  const { key, iv } = deriveRecordKeys(secret);
  return ownedCopy(secret, key, iv);
}

/**
 * The state of one direction: traffic secret, key, iv and the implicit sequence number. The
 * sender seals and the receiver opens with their own count, never one from the wire (PROTOCOL.md
 * §5).
 */
export class RecordDirection {
  /**
   * `secret || key || iv` in one buffer of its own: a session keeps it as long as it lives,
   * and pool slices would pin node's 8 KiB slabs with it (compact-bytes.ts). The parts are
   * cut out when used: a view kept for each would cost ~100 bytes more per direction.
   */
  #material: Buffer;
  #sequence: number;

  constructor(
    readonly direction: Direction,
    secret: Uint8Array,
    initialSequence = 0,
  ) {
    this.#material = materialOf(secret);
    this.#sequence = initialSequence;
  }

  /**
   * Both directions of a session, their key material in one buffer of its own (until one of
   * them updates its keys): a server keeps one pair per live session, and each buffer of its
   * own costs ~300 bytes besides its data.
   */
  static pair(
    c2sSecret: Uint8Array,
    s2cSecret: Uint8Array,
  ): { readonly c2s: RecordDirection; readonly s2c: RecordDirection } {
    const c2s = new RecordDirection('c2s', c2sSecret);
    const s2c = new RecordDirection('s2c', s2cSecret);
    const both = ownedCopy(c2s.#material, s2c.#material);
    c2s.#material = both.subarray(0, c2s.#material.length);
    s2c.#material = both.subarray(c2s.#material.length);
    return { c2s, s2c };
  }

  /** The sequence number the next record in this direction uses. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Seals `plaintext` as the next record (PROTOCOL.md §5). */
  seal(plaintext: Uint8Array): Buffer {
    if (this.#sequence >= KEY_UPDATE_LIMIT) {
      // Our own sender must have rotated before this (PROTOCOL.md §4); refusing beats breaking the
      // spec.
      throw new Error(`${this.direction}: sequence number reached 2^24 without a key update`);
    }
    const sealed = aesGcmSeal(this.#key, recordNonce(this.#iv, this.#sequence), plaintext);
    this.#sequence += 1;
    return sealed;
  }

  /**
   * Opens the next record. A record that fails to authenticate throws
   * RecordAuthenticationError (PROTOCOL.md §5: fatal, process nothing); the count does not move.
   */
  open(sealed: Uint8Array): Buffer {
    if (this.#sequence >= KEY_UPDATE_LIMIT) {
      // PROTOCOL.md §4: the peer MUST have sent key_update before its count reached 2^24.
      throw new ProtocolError(
        'unexpected_message',
        `${this.direction}: no key_update before 2^24 records`,
      );
    }
    const plaintext = aesGcmOpen(this.#key, recordNonce(this.#iv, this.#sequence), sealed);
    if (plaintext === undefined) throw new RecordAuthenticationError(this.direction);
    this.#sequence += 1;
    return plaintext;
  }

  /** PROTOCOL.md §4 key update: the next secret, new key and iv, sequence number back to 0. */
  update(): void {
    this.#material = materialOf(nextTrafficSecret(this.#secret));
    this.#sequence = 0;
  }

  /** Current key material, for known-answer tests only. */
  snapshotForTests(): { secret: Buffer; key: Buffer; iv: Buffer; sequence: number } {
    return {
      secret: Buffer.from(this.#secret),
      key: Buffer.from(this.#key),
      iv: Buffer.from(this.#iv),
      sequence: this.#sequence,
    };
  }

  get #secret(): Buffer {
    return this.#material.subarray(0, TRAFFIC_SECRET_BYTES);
  }

  get #key(): Buffer {
    return this.#material.subarray(TRAFFIC_SECRET_BYTES, IV_OFFSET);
  }

  get #iv(): Buffer {
    return this.#material.subarray(IV_OFFSET, IV_OFFSET + GCM_NONCE_BYTES);
  }

  /** Keeps key material out of logs and inspection. */
  toJSON(): object {
    return { direction: this.direction, sequence: this.#sequence };
  }
}
