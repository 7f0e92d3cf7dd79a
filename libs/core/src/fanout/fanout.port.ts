import { type FanoutEvent } from '../contracts/relay.contracts';

/**
 * How the relay hands a stored message to every gateway, and how a gateway hears about it.
 * At most once (PROTOCOL.md §6 delivery is made reliable by the pending list, not by this channel):
 * in-process in the embedded mode, Redis pub/sub in the distributed one.
 */
export abstract class FanoutPort {
  abstract publish(event: FanoutEvent): Promise<void>;
  /** Registers a listener; returns a function that removes it. */
  abstract subscribe(listener: (event: FanoutEvent) => void): () => void;

  /**
   * Called after the channel came back from an outage, during which events may have been lost:
   * the gateway then resends its sessions' undelivered messages. In-process fan-out never
   * loses its channel, so by default nothing is ever called.
   */
  onReconnect(_listener: () => void): () => void {
    return () => undefined;
  }
}
