/**
 * What happens to a `deliver` between the socket and the application (docs/PROTOCOL.md §7.4).
 * Deliveries are verified (which may need a `get_key` round trip) one after another, so the
 * application sees them in the server's order. A delivery is confirmed (`delivered`) only once the
 * application took it; a duplicate (delivery is at least once) is confirmed again but not handed
 * over. Past a high-water mark the connection stops reading until the queue is down to the
 * low-water mark: the bound on inbound memory when the application or the key lookups are slow.
 * Except while an answer is awaited: the `key` a verification waits for comes on the same
 * connection, behind the deliveries that filled the queue, so stopping then would stall the
 * queue until the request times out. Reading goes on until the answer is in, up to a hard limit
 * past which the connection is closed (what was not confirmed is delivered again, §7.4).
 */
import { type Deliver } from '@securechat/protocol';

import { BoundedLru } from './bounded-lru';
import { type VerificationResult } from './peer-keys';

/** What can stop reading: a connection. */
export interface InboundFlow {
  pause(): void;
  resume(): void;
  /** Ends the connection: it sent more than the queue may hold. */
  destroy(reason: Error): void;
}

/** More deliveries arrived than the queue may hold, even while reading for an answer. */
export class InboundOverflowError extends Error {
  override readonly name = 'InboundOverflowError';

  constructor(readonly limit: number) {
    super(`more than ${limit} deliveries are waiting to be verified: the connection was closed`);
  }
}

export interface DeliveryQueueOptions {
  /** Deliveries waiting before the connection stops reading (default 512). */
  readonly highWater?: number;
  /** ... and starts again (default 64). */
  readonly lowWater?: number;
  /**
   * Deliveries waiting past which the connection is closed (default 8 × `highWater`). Reached
   * only when reading goes on above the high-water mark because an answer is awaited.
   */
  readonly maxWaiting?: number;
  /** How many handed-over `msg_id`s are remembered to drop duplicates. */
  readonly seenMessageIds: number;
  readonly verify: (deliver: Deliver) => Promise<VerificationResult>;
  /** False once nothing may be confirmed any more (after bye, docs/PROTOCOL.md §8.4). */
  readonly accepting: () => boolean;
  /** Hands a delivery to the application; a throw leaves it unconfirmed. */
  readonly handOver: (deliver: Deliver, result: VerificationResult) => void;
  readonly duplicate: (deliver: Deliver) => void;
  /** Queues the `delivered` for `msgId`. */
  readonly confirm: (msgId: string) => void;
  readonly onError: (error: unknown) => void;
}

export class DeliveryQueue {
  readonly #options: DeliveryQueueOptions;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #maxWaiting: number;
  readonly #seen: BoundedLru<string, true>;
  /** The flows over the high-water mark, and whether each is paused now. */
  readonly #throttled = new Map<InboundFlow, boolean>();
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  #answerAwaited = false;

  constructor(options: DeliveryQueueOptions) {
    this.#highWater = options.highWater ?? 512;
    this.#lowWater = options.lowWater ?? 64;
    if (!(this.#lowWater >= 0 && this.#lowWater < this.#highWater)) {
      throw new RangeError('lowWater must be at least 0 and below highWater');
    }
    this.#maxWaiting = options.maxWaiting ?? this.#highWater * 8;
    if (!(this.#maxWaiting >= this.#highWater)) {
      throw new RangeError('maxWaiting must be at least highWater');
    }
    this.#options = options;
    this.#seen = new BoundedLru(options.seenMessageIds);
  }

  /** Deliveries queued and not yet through. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Whether an answer is owed on the connection (a request in flight, such as the `get_key` a
   * verification waits for): reading then goes on above the high-water mark, so that the answer
   * can arrive, and stops again once it is in.
   */
  answerAwaited(awaited: boolean): void {
    if (this.#answerAwaited === awaited) return;
    this.#answerAwaited = awaited;
    this.#regulate();
  }

  /** Handles `deliver` after every delivery queued before it; `flow` is where it came from. */
  push(deliver: Deliver, flow: InboundFlow): void {
    if (this.#waiting >= this.#maxWaiting) {
      // Not queued and not confirmed: the server keeps it pending (§7.4).
      flow.destroy(new InboundOverflowError(this.#maxWaiting));
      return;
    }
    this.#waiting += 1;
    if (this.#waiting >= this.#highWater && !this.#throttled.has(flow)) {
      this.#throttled.set(flow, false);
      this.#regulate();
    }
    this.#tail = this.#tail
      .then(() => this.#handle(deliver))
      .catch((error: unknown) => this.#options.onError(error))
      .finally(() => {
        this.#waiting -= 1;
        if (this.#throttled.size > 0 && this.#waiting <= this.#lowWater) {
          for (const [throttled, paused] of this.#throttled) if (paused) throttled.resume();
          this.#throttled.clear();
        }
      });
  }

  /** Pauses the flows over the high-water mark, unless an answer is awaited. */
  #regulate(): void {
    const pause = !this.#answerAwaited;
    for (const [flow, paused] of this.#throttled) {
      if (paused === pause) continue;
      this.#throttled.set(flow, pause);
      if (pause) flow.pause();
      else flow.resume();
    }
  }

  async #handle(deliver: Deliver): Promise<void> {
    const options = this.#options;
    if (this.#seen.has(deliver.msg_id)) {
      // Confirmed again, so that the server stops resending it.
      if (options.accepting()) options.confirm(deliver.msg_id);
      options.duplicate(deliver);
      return;
    }
    const result = await options.verify(deliver);
    // After bye it could not be confirmed; the server delivers it again at the next login.
    if (!options.accepting()) return;
    try {
      options.handOver(deliver, result);
    } catch (error) {
      // The application did not take it: unconfirmed, the server keeps it pending.
      options.onError(error);
      return;
    }
    this.#seen.set(deliver.msg_id, true);
    options.confirm(deliver.msg_id);
  }
}
