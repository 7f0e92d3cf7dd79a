import {
  type CountersignCheck,
  type RawFrame,
  type SendMessage,
  type ServerReceived,
  type ServerSession,
} from '@securechat/protocol';

import { type SingleRequest } from './request-handler';

/** One unit of work for the connection, in the order the client sent it. */
export type RecordUnit =
  /** A run of consecutive `send`s: stored as one batch, answered in order (§6). */
  | { readonly kind: 'sends'; readonly sends: readonly SendMessage[] }
  /** A run of consecutive `delivered`: confirmed together, no answer. */
  | { readonly kind: 'delivered'; readonly msgIds: readonly string[] }
  | { readonly kind: 'request'; readonly message: SingleRequest }
  | { readonly kind: 'bye' }
  | { readonly kind: 'countersign'; readonly check: CountersignCheck }
  /** A record that could not be read (§5, §10 item 2): the session answers or closes. */
  | { readonly kind: 'failure'; readonly error: unknown };

type Received = ServerReceived | { readonly failure: unknown };

/**
 * Opens the client's records strictly in arrival order (§5: one sequence number after the
 * other) and groups them into units of work: a run of `send`s or of `delivered` becomes one
 * unit, gathered only from what has already arrived and at most `maxRun` long, so batching adds
 * no queue of its own. A record read past the end of a run waits as the next unit.
 */
export class RecordReader {
  #lookahead: Received | undefined;

  constructor(
    private readonly frames: { next(): RawFrame | undefined; readonly hasFrame: boolean },
    private readonly session: Pick<ServerSession, 'receive'>,
    private readonly maxRun: number,
  ) {
    if (!Number.isInteger(maxRun) || maxRun < 1) {
      throw new RangeError('RecordReader: maxRun must be a positive integer');
    }
  }

  /** Nothing read and nothing waiting. */
  get idle(): boolean {
    return this.#lookahead === undefined && !this.frames.hasFrame;
  }

  /** The next unit of work, or undefined until more arrives. */
  next(): RecordUnit | undefined {
    const first = this.#read();
    if (!first) return undefined;
    if ('failure' in first) return { kind: 'failure', error: first.failure };
    if (first.countersign) return { kind: 'countersign', check: first.countersign };
    const message = first.message;
    switch (message.type) {
      case 'send':
        return { kind: 'sends', sends: this.#run(message, 'send') };
      case 'delivered':
        return {
          kind: 'delivered',
          msgIds: this.#run(message, 'delivered').map((m) => m.msg_id),
        };
      case 'bye':
        return { kind: 'bye' };
      case 'countersign':
        // ServerSession reports a countersign in `received.countersign`, handled above; one
        // without it cannot be read (it throws), so this is unreachable.
        return { kind: 'failure', error: new Error('countersign without a check') };
      default:
        return { kind: 'request', message };
    }
  }

  /** Forgets what was read ahead (the connection is closing). */
  clear(): void {
    this.#lookahead = undefined;
  }

  #run<T extends 'send' | 'delivered'>(
    first: Extract<ServerReceived['message'], { type: T }>,
    type: T,
  ): Extract<ServerReceived['message'], { type: T }>[] {
    const run = [first];
    while (run.length < this.maxRun) {
      const next = this.#read();
      if (!next) break;
      if ('failure' in next || next.message.type !== type) {
        this.#lookahead = next;
        break;
      }
      run.push(next.message as Extract<ServerReceived['message'], { type: T }>);
    }
    return run;
  }

  #read(): Received | undefined {
    const ahead = this.#lookahead;
    if (ahead) {
      this.#lookahead = undefined;
      return ahead;
    }
    const frame = this.frames.next();
    if (!frame) return undefined;
    try {
      return this.session.receive(frame);
    } catch (failure) {
      return { failure };
    }
  }
}
