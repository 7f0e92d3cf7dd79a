import { Injectable } from '@nestjs/common';

import { type FanoutEvent } from '../contracts/relay.contracts';
import { FanoutPort } from './fanout.port';

/** Fan-out within one process: listeners are called synchronously, each isolated from the others' errors. */
@Injectable()
export class InProcessFanout extends FanoutPort {
  readonly #listeners = new Set<(event: FanoutEvent) => void>();

  publish(event: FanoutEvent): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing gateway listener must not stop delivery to the others; the message
        // stays pending for its recipients and goes out at their next login.
      }
    }
    return Promise.resolve();
  }

  subscribe(listener: (event: FanoutEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
