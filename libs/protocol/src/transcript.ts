/** PROTOCOL.md §7: the two transcript chains and the receipt digest `D`. */
import { packBytes, unpackBytes } from './compact-bytes';
import { HASH_BYTES, LABELS } from './constants';
import { sha256, sha256ChainStep } from './crypto';
import { label, lengthPrefixed, u64 } from './encoding';

/** `chain_i = SHA-256(chain_{i-1} || SHA-256(plaintext_i))`, starting from `chain_0 = H2`. */
export class TranscriptChain {
  /** Packed (compact-bytes.ts): a session keeps two chains for as long as it lives. */
  #head: string;
  #count = 0;

  constructor(h2: Uint8Array) {
    if (h2.length !== HASH_BYTES) throw new RangeError('TranscriptChain: H2 must be 32 bytes');
    this.#head = packBytes(h2);
  }

  append(plaintext: Uint8Array): void {
    this.appendDigest(sha256(plaintext));
  }

  /**
   * Folds in a record known only by `SHA-256(plaintext)`: the step is the same as `append`'s,
   * so a verifier recomputes the chain from a transcript that kept some records by digest
   * (docs/PROTOCOL.md §10 item 25).
   */
  appendDigest(digest: Uint8Array): void {
    if (digest.length !== HASH_BYTES) {
      throw new RangeError('TranscriptChain: a record digest must be 32 bytes');
    }
    // sha256(head || digest), the head read and written packed, with no Buffer for it.
    this.#head = sha256ChainStep(this.#head, digest);
    this.#count += 1;
  }

  /** The current chain value (a copy). */
  get head(): Buffer {
    return unpackBytes(this.#head);
  }

  /** How many records the chain covers (PROTOCOL.md §7 `c2s_count` / `s2c_count`). */
  get count(): number {
    return this.#count;
  }
}

/** Recomputes a chain from its plaintexts, as an offline verifier does (PROTOCOL.md §7). */
export function computeChain(h2: Uint8Array, plaintexts: Iterable<Uint8Array>) {
  const chain = new TranscriptChain(h2);
  for (const plaintext of plaintexts) chain.append(plaintext);
  return { count: chain.count, chain: chain.head };
}

/**
 * One covered record as a verifier has it: the plaintext, or only its SHA-256 (a record a
 * server stored by digest, docs/PROTOCOL.md §10 item 25). Exactly one of the two.
 */
export type ChainEntry =
  | { readonly plaintext: Uint8Array; readonly digest?: undefined }
  | { readonly digest: Uint8Array; readonly plaintext?: undefined };

/** Recomputes a chain (PROTOCOL.md §7) from records some of which may be known only by digest. */
export function computeChainOf(h2: Uint8Array, entries: Iterable<ChainEntry>) {
  const chain = new TranscriptChain(h2);
  for (const entry of entries) {
    if (entry.digest !== undefined) chain.appendDigest(entry.digest);
    else chain.append(entry.plaintext);
  }
  return { count: chain.count, chain: chain.head };
}

/** One party's view of a finished session, the input to `D`. */
export interface TranscriptView {
  readonly sessionId: string;
  readonly c2sCount: number;
  readonly c2sChain: Uint8Array;
  readonly s2cCount: number;
  readonly s2cChain: Uint8Array;
}

/** `D = SHA-256(F(session_id) || u64(c2s_count) || c2s_chain || u64(s2c_count) || s2c_chain)`. */
export function receiptDigest(view: TranscriptView): Buffer {
  if (view.c2sChain.length !== HASH_BYTES || view.s2cChain.length !== HASH_BYTES) {
    throw new RangeError('receiptDigest: chains must be 32 bytes');
  }
  return sha256(
    lengthPrefixed(view.sessionId),
    u64(view.c2sCount),
    view.c2sChain,
    u64(view.s2cCount),
    view.s2cChain,
  );
}

/** What the server's identity key signs in `receipt` (PROTOCOL.md §7). */
export function receiptSignedBytes(d: Uint8Array): Buffer {
  return Buffer.concat([label(LABELS.receipt), d]);
}

/** What the user's key signs in `countersign` (PROTOCOL.md §7). */
export function countersignSignedBytes(d: Uint8Array): Buffer {
  return Buffer.concat([label(LABELS.clientReceipt), d]);
}
