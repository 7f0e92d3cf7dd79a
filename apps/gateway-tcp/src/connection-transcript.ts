import { toTranscriptViewContract } from '@securechat/core';
import {
  type CountersignCheck,
  type RecordEvent,
  type ServerSession,
  sha256,
  toBase64,
} from '@securechat/protocol';

import { type TranscriptShipper } from './transcript-shipper';

export interface ConnectionTranscriptInit {
  readonly sessionId: string;
  readonly gateway: string;
  readonly shipper: Pick<TranscriptShipper, 'open' | 'record' | 'close' | 'mode'>;
  readonly now: () => number;
}

/**
 * One session's transcript as the gateway ships it (PROTOCOL.md §7): records seen before the
 * session is known (login_ok leaves the handshake before the session exists) are kept and
 * shipped once it opens; every record gets the next position, both directions interleaved in
 * the order the gateway saw them; the close carries the receipt and the client's countersign.
 *
 * A c2s request the gateway refuses by its own checks, before any service sees it (a `send`
 * with a bad signature, U+0000 or too large to deliver; a request breaking a docs/PROTOCOL.md §7.5
 * value rule), is shipped by digest: SHA-256 of its plaintext instead of the plaintext, which is
 * all the PROTOCOL.md §7 chain needs (docs/PROTOCOL.md §10 item 25), so a client cannot fill the
 * store with requests that did nothing. The server's `error` answer stays in full.
 *
 * Why the verdict comes first: a record handed to the shipper may be sealed into a chunk and
 * sent at once (TranscriptShipper seals a chunk that reaches its size inside `record`), so
 * it must never be rewritten afterwards. The session reports a c2s record when it opens it,
 * before the gateway has judged it; so the transcript holds that one record back (its
 * position already taken) until the connection's RecordReader says, synchronously and before
 * the next record is opened or any answer sealed, whether it refused it (`judged`). Nothing
 * else can be recorded in between, so the hold never reorders anything and holds at most one
 * record; should no verdict come, the next record or the close ships it in full.
 */
export class ConnectionTranscript {
  readonly #init: ConnectionTranscriptInit;
  #early: RecordEvent[] | undefined = [];
  #position = 0;
  /** The c2s record awaiting its verdict, at position `#position - 1` (see the class). */
  #awaiting: RecordEvent | undefined;
  #countersign: CountersignCheck | undefined;
  #closed = false;

  constructor(init: ConnectionTranscriptInit) {
    this.#init = init;
  }

  /** Whether `open` ran: a session started, so there is a transcript to close. */
  get opened(): boolean {
    return this.#early === undefined;
  }

  /** A record crossed the connection (the record layer's hook). */
  record(event: RecordEvent): void {
    if (this.#early) {
      this.#early.push(event);
      return;
    }
    this.#release(false);
    this.#position += 1;
    // Only a chained c2s record can be a refused request (`bye` and `countersign` are not).
    if (event.direction === 'c2s' && event.chained) this.#awaiting = event;
    else this.#ship(this.#position - 1, event, false);
  }

  /**
   * The gateway's verdict on the c2s record just opened (RecordChecks.judged): refused before
   * any service saw it, it is shipped by digest; otherwise in full. Without a record awaiting
   * (an s2c one, or a record that failed to open) it does nothing.
   */
  judged(refused: boolean): void {
    this.#release(refused);
  }

  /** The session is established: the transcript row opens, and the early records follow it. */
  open(session: Pick<ServerSession, 'username' | 'h2'>): void {
    const early = this.#early;
    if (!early) throw new Error('transcript already open');
    this.#early = undefined;
    this.#init.shipper.open({
      sessionId: this.#init.sessionId,
      username: session.username,
      gateway: this.#init.gateway,
      mode: this.#init.shipper.mode,
      h2: toBase64(session.h2),
      startedAt: this.#init.now(),
    });
    for (const event of early) this.record(event);
    // Nothing judges a record from before the session (none is a request).
    this.#release(false);
  }

  /** The client's countersign was read (PROTOCOL.md §7): the outcome the close will store. */
  countersigned(check: CountersignCheck): void {
    this.#countersign = check;
  }

  /**
   * Ships the close once: agreed/disputed after a countersign, incomplete otherwise (PROTOCOL.md
   * §10.12).
   */
  close(session: Pick<ServerSession, 'sentReceipt' | 'view'>): void {
    if (!this.opened || this.#closed) return;
    this.#release(false);
    this.#closed = true;
    const receipt = session.sentReceipt;
    const check = this.#countersign;
    this.#init.shipper.close({
      sessionId: this.#init.sessionId,
      endedAt: this.#init.now(),
      status: check?.outcome ?? 'incomplete',
      serverView: toTranscriptViewContract(receipt?.view ?? session.view()),
      ...(receipt ? { receiptSignature: toBase64(receipt.signature) } : {}),
      ...(check
        ? {
            clientView: toTranscriptViewContract(check.clientView),
            countersignature: toBase64(check.clientSignature),
          }
        : {}),
    });
  }

  #release(refused: boolean): void {
    const event = this.#awaiting;
    if (event === undefined) return;
    this.#awaiting = undefined;
    this.#ship(this.#position - 1, event, refused);
  }

  #ship(position: number, event: RecordEvent, byDigest: boolean): void {
    const { direction, chained, plaintext } = event;
    this.#init.shipper.record(
      this.#init.sessionId,
      position,
      byDigest
        ? { direction, chained, digest: sha256(plaintext) }
        : { direction, chained, plaintext },
    );
  }
}
