import { type InProcessServer } from './in-process.server';

/**
 * The process-wide registry the in-process transport routes through: servers register the
 * patterns they handle, clients look them up. One bus per embedded process (a Nest provider).
 */
export class InProcessBus {
  readonly #servers = new Set<InProcessServer>();

  register(server: InProcessServer): void {
    this.#servers.add(server);
  }

  unregister(server: InProcessServer): void {
    this.#servers.delete(server);
  }

  /** The server that handles `pattern`, if any is listening. */
  find(pattern: string): InProcessServer | undefined {
    for (const server of this.#servers) if (server.handles(pattern)) return server;
    return undefined;
  }
}
