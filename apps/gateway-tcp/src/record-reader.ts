import {
  type CountersignCheck,
  ProtocolError,
  type RawFrame,
  type SendMessage,
  type ServerReceived,
  type ServerSession,
} from '@securechat/protocol';

import { type CheckedSend, type SingleRequest } from './request-handler';

/** One unit of work for the connection, in the order the client sent it. */
export type RecordUnit =
  /**
   * A run of consecutive `send`s: stored as one batch, answered in order (PROTOCOL.md §6).
   * `checked[i]` is the gateway's verdict on `sends[i]` (RecordChecks.checkSend), made as it was
   * read.
   */
  | {
      readonly kind: 'sends';
      readonly sends: readonly SendMessage[];
      readonly checked: readonly CheckedSend[];
    }
  /** A run of consecutive `delivered`: confirmed together, no answer. */
  | { readonly kind: 'delivered'; readonly msgIds: readonly string[] }
  | { readonly kind: 'request'; readonly message: SingleRequest }
  | { readonly kind: 'bye' }
  | { readonly kind: 'countersign'; readonly check: CountersignCheck }
  /**
   * A record that could not be read (PROTOCOL.md §5, §10 item 2): the session answers or closes.
   */
  | { readonly kind: 'failure'; readonly error: unknown };

/** What the reader asks of the connection about each record, as it opens it. */
export interface RecordChecks {
  /** The gateway's own checks of a `send` (request-handler.ts checkSend). */
  checkSend(message: SendMessage): CheckedSend;
  /**
   * Called after every read, before the next record is opened: whether the record just
   * opened was refused by the gateway itself, before any service saw it — a `send` that
   * checkSend refused, or a request the docs/PROTOCOL.md §7.5 value rules refused (`bad_request`,
   * `too_large`). ConnectionTranscript keeps such a record by digest (docs/PROTOCOL.md §10 item
   * 25).
   */
  judged(refused: boolean): void;
}

type Received =
  | { readonly received: ServerReceived; readonly checked?: CheckedSend }
  | { readonly failure: unknown };

/**
 * Opens the client's records strictly in arrival order (PROTOCOL.md §5: one sequence number after
 * the other) and groups them into units of work: a run of `send`s or of `delivered` becomes one
 * unit, gathered only from what has already arrived and at most `maxRun` long, so batching adds
 * no queue of its own. A record read past the end of a run waits as the next unit.
 *
 * Every record is judged as it is opened (RecordChecks): whether the gateway refuses it is
 * known before the next record crosses the connection, so the transcript can keep a refused
 * one by digest without touching a record it already handed on.
 */
export class RecordReader {
  #lookahead: Received | undefined;

  constructor(
    private readonly frames: { next(): RawFrame | undefined; readonly hasFrame: boolean },
    private readonly session: Pick<ServerSession, 'receive'>,
    private readonly maxRun: number,
    private readonly checks: RecordChecks,
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
    const { received } = first;
    if (received.countersign) return { kind: 'countersign', check: received.countersign };
    const message = received.message;
    switch (message.type) {
      case 'send':
        return this.#sends(message, first.checked!);
      case 'delivered':
        return { kind: 'delivered', msgIds: this.#delivered(message.msg_id) };
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

  #sends(first: SendMessage, checked: CheckedSend): RecordUnit {
    const sends = [first];
    const verdicts = [checked];
    this.#run('send', (next) => {
      sends.push(next.received.message as SendMessage);
      verdicts.push(next.checked!);
    });
    return { kind: 'sends', sends, checked: verdicts };
  }

  #delivered(first: string): string[] {
    const msgIds = [first];
    this.#run('delivered', (next) => {
      msgIds.push((next.received.message as { msg_id: string }).msg_id);
    });
    return msgIds;
  }

  /** Reads on while the records are of `type`, up to maxRun in all; the first other waits. */
  #run(
    type: 'send' | 'delivered',
    take: (next: Extract<Received, { received: ServerReceived }>) => void,
  ): void {
    for (let length = 1; length < this.maxRun; length++) {
      const next = this.#read();
      if (!next) break;
      if ('failure' in next || next.received.message.type !== type) {
        this.#lookahead = next;
        break;
      }
      take(next);
    }
  }

  #read(): Received | undefined {
    const ahead = this.#lookahead;
    if (ahead) {
      this.#lookahead = undefined;
      return ahead;
    }
    const frame = this.frames.next();
    if (!frame) return undefined;
    let received: ServerReceived;
    try {
      received = this.session.receive(frame);
    } catch (failure) {
      // After the session took a record in, only its value rules throw (docs/PROTOCOL.md §7.5;
      // `bad_request` or `too_large`, the session goes on): the gateway refused that record itself.
      this.checks.judged(
        failure instanceof ProtocolError &&
          (failure.code === 'bad_request' || failure.code === 'too_large'),
      );
      return { failure };
    }
    if (received.message.type !== 'send') {
      this.checks.judged(false);
      return { received };
    }
    const checked = this.checks.checkSend(received.message);
    this.checks.judged(!checked.ok);
    return { received, checked };
  }
}
