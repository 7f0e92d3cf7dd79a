import { Injectable } from '@nestjs/common';

import { type SessionCommand, SessionCommandPort } from './session-command.port';

/**
 * SessionCommandPort within one process (embedded mode). Listeners run on a later tick, not
 * inside `publish`: the caller (an HTTP request) gets its answer without waiting for sockets
 * to be written, and a listener's failure never reaches it.
 */
@Injectable()
export class InProcessSessionCommands extends SessionCommandPort {
  readonly #listeners = new Set<(command: SessionCommand) => void>();

  override publish(command: SessionCommand): Promise<void> {
    const listeners = [...this.#listeners];
    setImmediate(() => {
      for (const listener of listeners) {
        try {
          listener(command);
        } catch {
          // One failing listener must not keep the others from closing their sessions.
        }
      }
    });
    return Promise.resolve();
  }

  override subscribe(listener: (command: SessionCommand) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
