/**
 * PROTOCOL.md §7 offline verification: from the records of a session and its receipt, recompute
 * both chains and check both signatures. Used by the relay's transcript store, the admin export and
 * `securechat verify-transcript`.
 */
import { type KeyObject } from 'node:crypto';

import { ed25519Verify, timingSafeEqual, userVerify } from './crypto';
import { type Direction } from './record-layer';
import {
  type ChainEntry,
  computeChainOf,
  countersignSignedBytes,
  receiptDigest,
  receiptSignedBytes,
  type TranscriptView,
} from './transcript';

/**
 * One record of a transcript: its plaintext, or — a record the server stored by digest
 * (docs/PROTOCOL.md §10 item 25) — `digest`, the plaintext's SHA-256, which is what
 * docs/PROTOCOL.md §8.1 folds into the chain.
 */
export type TranscriptRecordInput = ChainEntry & {
  readonly direction: Direction;
  /** Whether the record counts in its chain (`bye`, `receipt`, `countersign` do not). */
  readonly chained: boolean;
};

export interface TranscriptVerificationInput {
  readonly sessionId: string;
  readonly h2: Uint8Array;
  /** Every record in the order it was exchanged; only their per-direction order matters. */
  readonly records?: readonly TranscriptRecordInput[];
  /** The receipt's view and signature (PROTOCOL.md §7), when the session reached a receipt. */
  readonly receipt?: { readonly view: TranscriptView; readonly signature: Uint8Array };
  readonly countersign?: { readonly view: TranscriptView; readonly signature: Uint8Array };
  readonly serverKey: KeyObject;
  readonly userKey?: KeyObject;
}

export interface TranscriptCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface TranscriptVerification {
  /** True when every check that could be made passed and a receipt was present. */
  readonly ok: boolean;
  readonly checks: TranscriptCheck[];
  /** The view recomputed from the records, when records were given. */
  readonly recomputed?: TranscriptView;
}

function sameView(a: TranscriptView, b: TranscriptView): boolean {
  return (
    a.sessionId === b.sessionId &&
    a.c2sCount === b.c2sCount &&
    a.s2cCount === b.s2cCount &&
    timingSafeEqual(a.c2sChain, b.c2sChain) &&
    timingSafeEqual(a.s2cChain, b.s2cChain)
  );
}

/** Runs every check the inputs allow and reports each one; never throws on bad data. */
export function verifyTranscript(input: TranscriptVerificationInput): TranscriptVerification {
  try {
    return runChecks(input);
  } catch (error) {
    // Malformed input (a chain or H2 of the wrong length, …) is a failed check, not a crash.
    return {
      ok: false,
      checks: [{ name: 'input well-formed', ok: false, detail: (error as Error).message }],
    };
  }
}

function runChecks(input: TranscriptVerificationInput): TranscriptVerification {
  const checks: TranscriptCheck[] = [];
  let recomputed: TranscriptView | undefined;

  if (input.records) {
    const chained = (direction: Direction) =>
      input.records!.filter((r) => r.direction === direction && r.chained);
    const c2s = computeChainOf(input.h2, chained('c2s'));
    const s2c = computeChainOf(input.h2, chained('s2c'));
    const byDigest = input.records.filter((r) => r.digest !== undefined).length;
    const digestNote = byDigest === 0 ? '' : ` (${byDigest} of them kept by digest)`;
    recomputed = {
      sessionId: input.sessionId,
      c2sCount: c2s.count,
      c2sChain: c2s.chain,
      s2cCount: s2c.count,
      s2cChain: s2c.chain,
    };
    if (input.receipt) {
      const ok = sameView(recomputed, input.receipt.view);
      checks.push({
        name: 'records match receipt',
        ok,
        detail: ok
          ? `c2s ${c2s.count} records, s2c ${s2c.count} records${digestNote}: both chains equal the receipt's`
          : `recomputed c2s ${c2s.count}/s2c ${s2c.count} records differ from the receipt's c2s ${input.receipt.view.c2sCount}/s2c ${input.receipt.view.s2cCount}`,
      });
    }
  }

  if (input.receipt) {
    const ok =
      input.receipt.view.sessionId === input.sessionId &&
      ed25519Verify(
        input.serverKey,
        receiptSignedBytes(receiptDigest(input.receipt.view)),
        input.receipt.signature,
      );
    checks.push({
      name: 'receipt signature',
      ok,
      detail: ok
        ? 'signed by the server identity key'
        : 'does not verify under the server identity key',
    });
  } else {
    checks.push({
      name: 'receipt present',
      ok: false,
      detail: 'the session has no receipt (it did not end with bye)',
    });
  }

  if (input.countersign) {
    if (input.receipt) {
      const ok = sameView(input.countersign.view, input.receipt.view);
      checks.push({
        name: 'views agree',
        ok,
        detail: ok
          ? "the client's view equals the server's"
          : "the client's view differs from the server's",
      });
    }
    if (input.userKey) {
      const ok = userVerify(
        input.userKey,
        countersignSignedBytes(receiptDigest(input.countersign.view)),
        input.countersign.signature,
      );
      checks.push({
        name: 'countersignature',
        ok,
        detail: ok ? "signed by the user's key" : "does not verify under the user's key",
      });
    }
  }

  return {
    ok: checks.length > 0 && checks.every((c) => c.ok),
    checks,
    ...(recomputed ? { recomputed } : {}),
  };
}
