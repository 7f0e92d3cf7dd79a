import { type FanoutEvent } from '../contracts/relay.contracts';

/**
 * How the relay hands a stored message to every gateway, and how a gateway hears about it.
 * At most once (§6 delivery is made reliable by the pending list, not by this channel):
 * in-process in the embedded mode, Redis pub/sub in the distributed one.
 */
export abstract class FanoutPort {
  abstract publish(event: FanoutEvent): Promise<void>;
  /** Registers a listener; returns a function that removes it. */
  abstract subscribe(listener: (event: FanoutEvent) => void): () => void;
}
