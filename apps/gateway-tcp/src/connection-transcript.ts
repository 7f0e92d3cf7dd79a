import { type TranscriptView as TranscriptViewDto } from '@securechat/core';
import {
  type CountersignCheck,
  type RecordEvent,
  type ServerSession,
  toBase64,
  type TranscriptView,
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
 */
export class ConnectionTranscript {
  readonly #init: ConnectionTranscriptInit;
  #early: RecordEvent[] | undefined = [];
  #position = 0;
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
    this.#init.shipper.record(this.#init.sessionId, this.#position++, {
      direction: event.direction,
      chained: event.chained,
      plaintext: event.plaintext,
    });
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
  }

  /** The client's countersign was read (§7): the outcome the close will store. */
  countersigned(check: CountersignCheck): void {
    this.#countersign = check;
  }

  /** Ships the close once: agreed/disputed after a countersign, incomplete otherwise (§10.12). */
  close(session: Pick<ServerSession, 'sentReceipt' | 'view'>): void {
    if (!this.opened || this.#closed) return;
    this.#closed = true;
    const receipt = session.sentReceipt;
    const check = this.#countersign;
    this.#init.shipper.close({
      sessionId: this.#init.sessionId,
      endedAt: this.#init.now(),
      status: check?.outcome ?? 'incomplete',
      serverView: viewDto(receipt?.view ?? session.view()),
      ...(receipt ? { receiptSignature: toBase64(receipt.signature) } : {}),
      ...(check
        ? {
            clientView: viewDto(check.clientView),
            countersignature: toBase64(check.clientSignature),
          }
        : {}),
    });
  }
}

function viewDto(view: TranscriptView): TranscriptViewDto {
  return {
    c2sCount: view.c2sCount,
    c2sChain: toBase64(view.c2sChain),
    s2cCount: view.s2cCount,
    s2cChain: toBase64(view.s2cChain),
  };
}
