/**
 * The relay specs' check of what the relay stored (docs/PROTOCOL.md §8.5): a stored session
 * read back and verified offline, trusting nothing in the store. It recomputes both chains from
 * the stored records and checks both signatures with keys the caller supplies (the server's) or
 * the user directory holds (the user's). The product verifies transcripts in the client's
 * format (the admin export, `securechat verify-transcript`); this reads the relay's tables, so
 * that the int-specs can tell a storage fault from an export fault.
 * stored-transcript-verifier.spec.ts checks the checker.
 */
import { type KeyObject } from 'node:crypto';

import { type TranscriptStatus } from '@securechat/core';
import {
  importUserPublicKey,
  type TranscriptCheck,
  type TranscriptRecordInput,
  type TranscriptVerification,
  type TranscriptView,
  verifyTranscript,
} from '@securechat/protocol';

import {
  type StoredTranscript,
  type StoredView,
  type TranscriptRepository,
} from '../src/transcript.repository';
import { type UserDirectoryRepository } from '../src/user-directory.repository';

/** verifyTranscript's answer, plus what the session row says about itself. */
export interface TranscriptReport extends TranscriptVerification {
  readonly sessionId: string;
  readonly status: TranscriptStatus;
  readonly mode: StoredTranscript['session']['mode'];
  /** When retention deleted the records (ms since the epoch): only signatures were checked. */
  readonly recordsPurgedAt: number | undefined;
}

const toView = (sessionId: string, view: StoredView): TranscriptView => ({ sessionId, ...view });

export class StoredTranscriptVerifier {
  constructor(
    private readonly transcripts: TranscriptRepository,
    private readonly users: UserDirectoryRepository,
  ) {}

  /**
   * docs/PROTOCOL.md §8.5 for a stored session: in `full` mode recompute both chains from the
   * records (those kept by digest from their digests) and compare them with the receipt; in both
   * modes check the receipt signature with `serverPublicKey` and the countersignature with the
   * user's registered key. A session whose records retention deleted is checked like a `digest`
   * one, by its signatures over the stored chain heads, and says so (check `records purged`).
   * Undefined for an unknown session.
   */
  async verify(
    sessionId: string,
    serverPublicKey: KeyObject,
  ): Promise<TranscriptReport | undefined> {
    const stored = await this.transcripts.load(sessionId);
    if (!stored) return undefined;
    const { session, records } = stored;
    const extra: TranscriptCheck[] = [];

    let recordInputs: TranscriptRecordInput[] | undefined;
    if (session.recordsPurgedAt !== undefined) {
      // Not a failure: the records were deleted on purpose; the receipt and countersignature
      // still bind the stored chain heads, which is all that can be checked now.
      extra.push({
        name: 'records purged',
        ok: true,
        detail:
          `records deleted by retention at ${new Date(session.recordsPurgedAt).toISOString()}; ` +
          'only the signatures over the stored chain heads can be checked',
      });
    } else if (session.mode === 'full') {
      // A record kept by digest (a request the gateway refused, docs/PROTOCOL.md §10 item 25)
      // goes into its chain as that digest: docs/PROTOCOL.md §8.1 hashes each plaintext before
      // chaining it.
      recordInputs = records.map((r) =>
        r.digest !== undefined
          ? { direction: r.direction, chained: r.chained, digest: r.digest }
          : { direction: r.direction, chained: r.chained, plaintext: r.plaintext },
      );
      // A gap means a record never reached the store; the chains would fail too, but this
      // says why.
      const contiguous = records.every((r, i) => r.position === i);
      extra.push({
        name: 'records contiguous',
        ok: contiguous,
        detail: contiguous
          ? `positions 0..${records.length - 1} all present`
          : 'positions have gaps: records are missing from the store',
      });
    }

    const receipt =
      session.serverView && session.receiptSignature
        ? { view: toView(sessionId, session.serverView), signature: session.receiptSignature }
        : undefined;
    const countersign =
      session.clientView && session.countersignature
        ? { view: toView(sessionId, session.clientView), signature: session.countersignature }
        : undefined;

    let userKey: KeyObject | undefined;
    if (countersign) {
      const user = await this.users.find(session.username);
      try {
        userKey = user ? importUserPublicKey(user.publicKey) : undefined;
      } catch {
        userKey = undefined;
      }
      // verifyTranscript skips the countersignature without a key; an unverifiable
      // countersignature must not let the session pass.
      if (!userKey) {
        extra.push({
          name: 'user key',
          ok: false,
          detail: "the user's public key is not on record or not usable",
        });
      }
    }

    const result = verifyTranscript({
      sessionId,
      h2: session.h2,
      ...(recordInputs ? { records: recordInputs } : {}),
      ...(receipt ? { receipt } : {}),
      ...(countersign ? { countersign } : {}),
      serverKey: serverPublicKey,
      ...(userKey ? { userKey } : {}),
    });
    const checks = [...extra, ...result.checks];
    return {
      ...result,
      ok: result.ok && checks.every((c) => c.ok),
      checks,
      sessionId,
      status: session.status,
      mode: session.mode,
      recordsPurgedAt: session.recordsPurgedAt,
    };
  }
}
