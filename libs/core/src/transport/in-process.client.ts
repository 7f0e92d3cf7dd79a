import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';

import { type InProcessBus } from './in-process.bus';

/** Clones through JSON so that in-process calls carry exactly what a network transport can. */
function jsonClone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** Nest client proxy for the embedded mode: requests go to the InProcessServer on the same bus. */
export class InProcessClient extends ClientProxy {
  constructor(private readonly bus: InProcessBus) {
    super();
  }

  connect(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {}

  protected publish(
    packet: ReadPacket<unknown>,
    callback: (packet: WritePacket) => void,
  ): () => void {
    let cancelled = false;
    const pattern = this.normalizePattern(packet.pattern as string);
    const server = this.bus.find(pattern);
    if (!server) {
      callback({ err: new Error(`no in-process server handles ${pattern}`), isDisposed: true });
      return () => undefined;
    }
    void server.dispatch({ pattern, data: jsonClone(packet.data) }, (reply) => {
      if (cancelled) return;
      callback({ ...reply, response: jsonClone<unknown>(reply.response) });
    });
    return () => {
      cancelled = true;
    };
  }

  protected dispatchEvent<T = unknown>(packet: ReadPacket<unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.publish(packet, (reply) =>
        reply.err ? reject(reply.err as Error) : resolve(reply.response as T),
      );
    });
  }

  unwrap<T>(): T {
    return this.bus as T;
  }
}
