/**
 * What happens to a `deliver` between the socket and the application (docs/PROTOCOL.md §7.4).
 * Deliveries are verified (which may need a `get_key` round trip) one after another, so the
 * application sees them in the server's order. A delivery is confirmed (`delivered`) only once the
 * application took it; a duplicate (delivery is at least once) is confirmed again but not handed
 * over. Past a high-water mark the connection stops reading until the queue is down to the
 * low-water mark: the bound on inbound memory when the application or the key lookups are slow.
 */
import { type Deliver } from '@securechat/protocol';

import { BoundedLru } from './bounded-lru';
import { type VerificationResult } from './peer-keys';

/** What can stop reading: a connection. */
export interface InboundFlow {
  pause(): void;
  resume(): void;
}

export interface DeliveryQueueOptions {
  /** Deliveries waiting before the connection stops reading (default 512). */
  readonly highWater?: number;
  /** ... and starts again (default 64). */
  readonly lowWater?: number;
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
  readonly #seen: BoundedLru<string, true>;
  readonly #paused = new Set<InboundFlow>();
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;

  constructor(options: DeliveryQueueOptions) {
    this.#highWater = options.highWater ?? 512;
    this.#lowWater = options.lowWater ?? 64;
    if (!(this.#lowWater >= 0 && this.#lowWater < this.#highWater)) {
      throw new RangeError('lowWater must be at least 0 and below highWater');
    }
    this.#options = options;
    this.#seen = new BoundedLru(options.seenMessageIds);
  }

  /** Deliveries queued and not yet through. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Handles `deliver` after every delivery queued before it; `flow` is where it came from. */
  push(deliver: Deliver, flow: InboundFlow): void {
    this.#waiting += 1;
    if (this.#waiting >= this.#highWater && !this.#paused.has(flow)) {
      this.#paused.add(flow);
      flow.pause();
    }
    this.#tail = this.#tail
      .then(() => this.#handle(deliver))
      .catch((error: unknown) => this.#options.onError(error))
      .finally(() => {
        this.#waiting -= 1;
        if (this.#paused.size > 0 && this.#waiting <= this.#lowWater) {
          for (const paused of this.#paused) paused.resume();
          this.#paused.clear();
        }
      });
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
