import {
  BaseRpcContext,
  type CustomTransportStrategy,
  type ReadPacket,
  Server,
  type WritePacket,
} from '@nestjs/microservices';

import { type InProcessBus } from './in-process.bus';

/**
 * Nest transport strategy for the embedded mode: message handlers are called directly, in this
 * process. Payloads arrive JSON-cloned by the client, so handlers see exactly what a network
 * transport would deliver.
 */
export class InProcessServer extends Server implements CustomTransportStrategy {
  constructor(private readonly bus: InProcessBus) {
    super();
  }

  listen(callback: () => void): void {
    this.bus.register(this);
    callback();
  }

  close(): void {
    this.bus.unregister(this);
  }

  handles(pattern: string): boolean {
    return this.getHandlerByPattern(pattern) !== null;
  }

  /** Runs the handler for `packet` and reports through `respond` as a network server would. */
  async dispatch(
    packet: ReadPacket<unknown>,
    respond: (packet: WritePacket) => void,
  ): Promise<void> {
    const pattern = this.normalizePattern(packet.pattern as string);
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      respond({ err: `no handler for ${pattern}`, isDisposed: true });
      return;
    }
    try {
      const result$ = this.transformToObservable(
        await handler(packet.data, new BaseRpcContext([])),
      );
      this.send(result$, respond);
    } catch (error) {
      respond({ err: error, isDisposed: true });
    }
  }

  on(): never {
    throw new Error('the in-process transport emits no events');
  }

  unwrap<T>(): T {
    return this.bus as T;
  }
}
