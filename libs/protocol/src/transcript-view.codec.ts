/**
 * A transcript view (PROTOCOL.md §7) as the members `receipt` and `countersign` carry it —
 * `c2s_count`, `c2s_chain`, `s2c_count`, `s2c_chain`, chains in base64 — and back. One codec
 * for every place that writes or reads those members: both session roles, the transcript file
 * (docs/PROTOCOL.md §8.5) and the relay's export.
 */
import { HASH_BYTES } from './constants';
import { fromBase64, toBase64 } from './encoding';
import { type TranscriptView } from './transcript';

/** The view members of `receipt` / `countersign` (PROTOCOL.md §7). */
export interface TranscriptViewMembers {
  readonly c2s_count: number;
  readonly c2s_chain: string;
  readonly s2c_count: number;
  readonly s2c_chain: string;
}

/** `view` as message members; `session_id` is the caller's (only `receipt` carries it). */
export function encodeTranscriptView(
  view: Omit<TranscriptView, 'sessionId'>,
): TranscriptViewMembers {
  return {
    c2s_count: view.c2sCount,
    c2s_chain: toBase64(view.c2sChain),
    s2c_count: view.s2cCount,
    s2c_chain: toBase64(view.s2cChain),
  };
}

/**
 * The view that `members` describe for session `sessionId`. Throws a `bad_frame`
 * ProtocolError (from `fromBase64`) when a chain is not base64 of exactly 32 bytes.
 */
export function decodeTranscriptView(
  sessionId: string,
  members: TranscriptViewMembers,
): TranscriptView {
  return {
    sessionId,
    c2sCount: members.c2s_count,
    c2sChain: fromBase64(members.c2s_chain, 'c2s_chain', HASH_BYTES),
    s2cCount: members.s2c_count,
    s2cChain: fromBase64(members.s2c_chain, 's2c_chain', HASH_BYTES),
  };
}
