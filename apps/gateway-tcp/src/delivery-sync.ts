import { type LoggerService } from '@nestjs/common';
import { type PendingQuery, type PendingResult, type StoredMessage } from '@securechat/core';

/** Where deliveries go: the connection's output, seen only as far as pacing needs. */
export interface DeliveryOutput {
  /** Seals and writes one `deliver`; false when it could not be sent (it stays pending). */
  send(message: StoredMessage): boolean;
  /** Bytes written and not yet taken by the peer's kernel. */
  readonly outboundBytes: number;
  /** Resolves when the peer has read most of what waits (or the connection is gone). */
  drained(): Promise<void>;
}

export interface DeliverySyncLimits {
  /** Messages per pending page. */
  readonly pageMessages: number;
  /** Body bytes per pending page (the relay stops a page there; at least one message). */
  readonly pageBytes: number;
  /** Output waiting for the peer above which the backlog waits for it to read. */
  readonly writeAheadBytes: number;
  /**
   * Output waiting for the peer above which a live delivery is not written but left to
   * catch-up (its message is pending in storage).
   */
  readonly maxOutboundBytes: number;
  /** Live deliveries held while catching up, in bytes of body; past it they are re-read. */
  readonly maxHeldBytes: number;
}

export const DEFAULT_DELIVERY_SYNC_LIMITS: Omit<DeliverySyncLimits, 'maxOutboundBytes'> = {
  pageMessages: 200,
  pageBytes: 256 * 1024,
  writeAheadBytes: 256 * 1024,
  maxHeldBytes: 1024 * 1024,
};

/**
 * How many of the backlog's latest msg_ids a catch-up remembers, to recognise a fan-out copy of
 * a message it already wrote from storage (the copy arrives a moment later: stored while the
 * backlog was being read). Older ones are no longer in flight on the fan-out.
 */
const RECENTLY_WRITTEN = 4096;

/** What a held delivery costs besides its body (ids, names, signature), for the held bound. */
const HELD_OVERHEAD_BYTES = 512;

type State = 'catching_up' | 'live' | 'stopped';

/**
 * Delivery to one session (PROTOCOL.md §6): right after login every message still pending, in
 * storage order, then live fan-out. Everything is paced by the peer: pages are fetched by
 * bytes and written only as fast as the peer reads, so a slow link receives its whole backlog
 * in one session instead of being dropped for it. Live deliveries that arrive while a backlog
 * goes out are held and sent after it (bounded; past the bound they are dropped and the
 * backlog re-read, since every one of them is pending in storage). A live delivery that finds
 * the peer far behind is not written either: the session falls back to catching up from
 * storage, from the last message it wrote.
 */
export class DeliverySync {
  #state: State = 'catching_up';
  /**
   * Live deliveries waiting for the backlog, by msg_id, in arrival order. Made when the first
   * one is held and dropped when emptied: a live session, idle most of its life, holds none.
   */
  #held: Map<string, StoredMessage> | undefined;
  #heldBytes = 0;
  /** Held deliveries were dropped: the backlog pass must run again from where it got. */
  #overflowed = false;
  /** The fan-out channel came back from an outage: everything pending must be sent again. */
  #restart = false;
  /** The last msg_id written, where a catch-up after falling behind starts. */
  #lastSent: string | undefined;
  /** msg_ids the running catch-up wrote from storage (the latest RECENTLY_WRITTEN). */
  #writtenFromStorage: Set<string> | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly username: string,
    private readonly pending: (query: PendingQuery) => Promise<PendingResult>,
    private readonly output: DeliveryOutput,
    private readonly limits: DeliverySyncLimits,
    private readonly logger: LoggerService,
  ) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`DeliverySync: ${name} must be a positive integer`);
      }
    }
  }

  get state(): State {
    return this.#state;
  }

  /** PROTOCOL.md §6: the backlog right after `login_ok`; resolves when the session is live. */
  start(): Promise<void> {
    return this.#catchUp(undefined);
  }

  /** Fan-out: one live message for this user. */
  deliver(message: StoredMessage): void {
    switch (this.#state) {
      case 'stopped':
        return;
      case 'catching_up':
        this.#hold(message);
        return;
      case 'live':
        if (this.output.outboundBytes > this.limits.maxOutboundBytes) {
          // The peer is far behind: storage holds the message, so catch up from there
          // rather than grow our buffer.
          this.#hold(message);
          void this.#catchUp(this.#lastSent);
          return;
        }
        this.#write(message);
    }
  }

  /**
   * Sends every pending message again (the fan-out channel came back from an outage: it is at
   * most once). Recipients drop duplicates by msg_id (PROTOCOL.md §6).
   */
  resync(): Promise<void> {
    if (this.#stopped()) return Promise.resolve();
    if (this.#state === 'catching_up') {
      this.#restart = true;
      return this.#running ?? Promise.resolve();
    }
    return this.#catchUp(undefined);
  }

  /** The session ended: nothing more is written. */
  stop(): void {
    this.#state = 'stopped';
    this.#dropHeld();
    this.#writtenFromStorage = undefined;
  }

  #catchUp(after: string | undefined): Promise<void> {
    this.#state = 'catching_up';
    if (!this.#running) {
      const run = this.#run(after).finally(() => {
        // Only this run: a catch-up asked for as it finished has started a run of its own.
        if (this.#running === run) this.#running = undefined;
      });
      this.#running = run;
    }
    return this.#running;
  }

  async #run(start: string | undefined): Promise<void> {
    let after = start;
    try {
      for (;;) {
        this.#overflowed = false;
        this.#restart = false;
        after = await this.#sendBacklog(after);
        if (this.#stopped()) return;
        if (this.#restart) after = undefined;
        else if (!this.#overflowed) break;
      }
    } catch (error) {
      // The session stays usable; what was not sent stays pending for the next login.
      this.logger.warn(`pending messages not loaded: ${(error as Error).message}`);
    }
    if (this.#stopped()) return;
    // Held deliveries arrived after the pass read their place in storage, or were missed by
    // it (stored late by a concurrent transaction): in arrival order, which per conversation
    // is storage order. Bounded by maxHeldBytes.
    const held = [...(this.#held?.values() ?? [])];
    this.#dropHeld();
    this.#writtenFromStorage = undefined;
    // Live from here on: a catch-up asked for from now (the writes below may put the peer far
    // behind) starts a new run instead of joining this finished one.
    this.#running = undefined;
    this.#state = 'live';
    for (const message of held) this.#write(message);
  }

  /** Pages through storage from `after`, paced by the peer; returns where it got. */
  async #sendBacklog(after: string | undefined): Promise<string | undefined> {
    const { pageMessages, pageBytes, writeAheadBytes } = this.limits;
    for (;;) {
      const page = await this.pending({
        username: this.username,
        limit: pageMessages,
        maxBytes: pageBytes,
        ...(after === undefined ? {} : { after }),
      });
      for (const message of page.messages) {
        if (this.#stopped() || this.#restart) return after;
        if (this.output.outboundBytes >= writeAheadBytes) {
          // Paced by the peer: a slow link gets its backlog slowly, never dropped for it.
          await this.output.drained();
          if (this.#stopped() || this.#restart) return after;
        }
        // Sent now from storage: a held copy of it would be a duplicate, and so would one that
        // the fan-out brings later in this catch-up.
        const held = this.#held?.get(message.msg_id);
        if (held) {
          this.#held!.delete(message.msg_id);
          this.#heldBytes -= heldSize(held);
        }
        this.#write(message);
        this.#rememberWritten(message.msg_id);
        after = message.msg_id;
      }
      if (!page.more && page.messages.length < pageMessages) return after;
    }
  }

  /** A method, not a field read: the state changes across awaits, which narrowing ignores. */
  #stopped(): boolean {
    return this.#state === 'stopped';
  }

  #rememberWritten(msgId: string): void {
    const written = (this.#writtenFromStorage ??= new Set());
    written.add(msgId);
    if (written.size > RECENTLY_WRITTEN) written.delete(written.values().next().value!);
  }

  #hold(message: StoredMessage): void {
    if (this.#held?.has(message.msg_id) || this.#writtenFromStorage?.has(message.msg_id)) return;
    const bytes = heldSize(message);
    if (this.#heldBytes + bytes > this.limits.maxHeldBytes) {
      // Every held message is pending in storage: drop them and read the backlog again.
      this.#dropHeld();
      this.#overflowed = true;
      return;
    }
    (this.#held ??= new Map()).set(message.msg_id, message);
    this.#heldBytes += bytes;
  }

  #dropHeld(): void {
    this.#held = undefined;
    this.#heldBytes = 0;
  }

  #write(message: StoredMessage): void {
    if (this.output.send(message)) this.#lastSent = message.msg_id;
  }
}

function heldSize(message: StoredMessage): number {
  return Buffer.byteLength(message.body, 'utf8') + HELD_OVERHEAD_BYTES;
}
