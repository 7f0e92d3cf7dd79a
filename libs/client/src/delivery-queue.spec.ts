import { type Deliver } from '@securechat/protocol';

import {
  DeliveryQueue,
  type DeliveryQueueOptions,
  type InboundFlow,
  InboundOverflowError,
} from './delivery-queue';
import { type VerificationResult } from './peer-keys';

function deliver(msgId: string, from = 'alice'): Deliver {
  return {
    type: 'deliver',
    msg_id: msgId,
    id: `c-${msgId}`,
    from,
    to: 'bob',
    body: `body ${msgId}`,
    ts: 1,
    server_ts: 2,
    sig: 'c2ln',
  };
}

/** A verification the test finishes by hand, to control the order in which they complete. */
function deferred() {
  let resolve!: (result: VerificationResult) => void;
  const promise = new Promise<VerificationResult>((r) => (resolve = r));
  return { promise, resolve };
}

const verified: VerificationResult = { verification: 'verified' };
const settled = () => new Promise((resolve) => setImmediate(resolve));

function setup(overrides: Partial<DeliveryQueueOptions> = {}) {
  const log: string[] = [];
  const errors: unknown[] = [];
  const state = { accepting: true };
  const queue = new DeliveryQueue({
    seenMessageIds: 100,
    verify: () => Promise.resolve(verified),
    accepting: () => state.accepting,
    handOver: (d, result) => log.push(`message ${d.msg_id} ${result.verification}`),
    duplicate: (d) => log.push(`duplicate ${d.msg_id}`),
    confirm: (msgId) => log.push(`delivered ${msgId}`),
    onError: (error) => errors.push(error),
    ...overrides,
  });
  const flow = { pause: jest.fn(), resume: jest.fn(), destroy: jest.fn() } satisfies InboundFlow;
  return { queue, log, errors, state, flow };
}

describe('DeliveryQueue', () => {
  it("hands deliveries over in the server's order even when verifications finish out of order", async () => {
    const pending = new Map([
      ['m1', deferred()],
      ['m2', deferred()],
    ]);
    const { queue, log, flow } = setup({ verify: (d) => pending.get(d.msg_id)!.promise });
    queue.push(deliver('m1'), flow);
    queue.push(deliver('m2'), flow);
    pending.get('m2')!.resolve({ verification: 'bad_signature' });
    await settled();
    expect(log).toEqual([]); // m2 is ready, but m1 comes first
    pending.get('m1')!.resolve(verified);
    await settled();
    expect(log).toEqual([
      'message m1 verified',
      'delivered m1',
      'message m2 bad_signature',
      'delivered m2',
    ]);
    expect(queue.waiting).toBe(0);
  });

  it('drops a repeated msg_id but confirms it again, so the server stops resending it', async () => {
    const { queue, log, flow } = setup();
    queue.push(deliver('m1'), flow);
    queue.push(deliver('m1'), flow);
    await settled();
    expect(log).toEqual(['message m1 verified', 'delivered m1', 'delivered m1', 'duplicate m1']);
  });

  it('leaves a delivery the application threw on unconfirmed, to be handed over again', async () => {
    let refuse = true;
    const thrown = new Error('the screen is gone');
    const log: string[] = [];
    const { queue, errors, flow } = setup({
      handOver: (d) => {
        if (refuse) throw thrown;
        log.push(`message ${d.msg_id}`);
      },
      confirm: (msgId) => log.push(`delivered ${msgId}`),
    });
    queue.push(deliver('m1'), flow);
    await settled();
    expect(errors).toEqual([thrown]);
    expect(log).toEqual([]);
    refuse = false;
    queue.push(deliver('m1'), flow); // the server's redelivery is not taken for a duplicate
    await settled();
    expect(log).toEqual(['message m1', 'delivered m1']);
  });

  it('after bye neither hands over nor confirms (§8.4: it comes again at the next login)', async () => {
    const { queue, log, state, flow } = setup();
    queue.push(deliver('m1'), flow);
    await settled();
    state.accepting = false;
    queue.push(deliver('m2'), flow);
    queue.push(deliver('m1'), flow);
    await settled();
    expect(log).toEqual(['message m1 verified', 'delivered m1', 'duplicate m1']);
  });

  it('reports a failed verification and goes on with the next delivery', async () => {
    const failure = new Error('get_key timed out');
    const { queue, log, errors, flow } = setup({
      verify: (d) => (d.msg_id === 'm1' ? Promise.reject(failure) : Promise.resolve(verified)),
    });
    queue.push(deliver('m1'), flow);
    queue.push(deliver('m2'), flow);
    await settled();
    expect(errors).toEqual([failure]);
    expect(log).toEqual(['message m2 verified', 'delivered m2']);
  });

  it('stops reading at the high-water mark and starts again at the low-water mark', async () => {
    const gate = deferred();
    let first = true;
    const { queue, flow } = setup({
      highWater: 4,
      lowWater: 1,
      verify: () => {
        if (!first) return Promise.resolve(verified);
        first = false;
        return gate.promise;
      },
    });
    for (let i = 0; i < 3; i++) queue.push(deliver(`m${i}`), flow);
    expect(flow.pause).not.toHaveBeenCalled();
    queue.push(deliver('m3'), flow);
    queue.push(deliver('m4'), flow);
    expect(flow.pause).toHaveBeenCalledTimes(1); // once, however many more arrive
    expect(queue.waiting).toBe(5);
    gate.resolve(verified);
    await settled();
    expect(queue.waiting).toBe(0);
    expect(flow.resume).toHaveBeenCalledTimes(1);
    expect(() => setup({ highWater: 4, lowWater: 4 })).toThrow(RangeError);
  });

  describe('while an answer is awaited', () => {
    /**
     * A connection whose frames are read one by one while it is not paused: what the server
     * already wrote (the backlog, then the `key` answer) waits in order behind a pause.
     */
    function connection(frames: (Deliver | 'key')[], onFrame: (frame: Deliver | 'key') => void) {
      let paused = false;
      let reading = false;
      const read = () => {
        if (reading) return; // a resume from inside onFrame: the loop below goes on
        reading = true;
        while (!paused && !flow.destroyed && frames.length > 0) onFrame(frames.shift()!);
        reading = false;
      };
      const flow = {
        destroyed: undefined as Error | undefined,
        pauses: 0,
        pause: () => {
          paused = true;
          flow.pauses += 1;
        },
        resume: () => {
          paused = false;
          read();
        },
        destroy: (reason: Error) => {
          flow.destroyed = reason;
        },
      } satisfies InboundFlow & Record<string, unknown>;
      return { flow, read, unread: () => frames.length };
    }

    /**
     * The client's glue: the first delivery from carol asks for her key (a request in flight
     * until the `key` frame is read); the verification of her deliveries waits for it.
     */
    function client(frames: (Deliver | 'key')[], options: Partial<DeliveryQueueOptions> = {}) {
      let answer: ((result: VerificationResult) => void) | undefined;
      let lookup: Promise<VerificationResult> | undefined;
      const handedOver: string[] = [];
      const queue: DeliveryQueue = new DeliveryQueue({
        highWater: 8,
        lowWater: 2,
        seenMessageIds: 1000,
        verify: (d) => {
          if (d.from !== 'carol') return Promise.resolve(verified);
          lookup ??= new Promise((resolve) => {
            answer = resolve;
            queue.answerAwaited(true); // get_key goes out: the tracker has it in flight
          });
          return lookup;
        },
        accepting: () => true,
        handOver: (d) => handedOver.push(d.msg_id),
        duplicate: () => undefined,
        confirm: () => undefined,
        onError: (error) => {
          throw error;
        },
        ...options,
      });
      const wire = connection(frames, (frame) => {
        if (frame === 'key') {
          queue.answerAwaited(false); // the tracker matched the answer
          answer!(verified);
        } else {
          queue.push(frame, wire.flow);
        }
      });
      return { queue, wire, handedOver };
    }

    const backlog = (n: number) =>
      Array.from({ length: n }, (_, i) => deliver(`m${i}`, 'carol')) as (Deliver | 'key')[];

    it('goes on reading past the high-water mark until the key answer behind the backlog is in', async () => {
      // More than the high-water mark from a sender whose key is not known yet, then the answer
      // to the get_key the first of them caused.
      const { queue, wire, handedOver } = client([...backlog(20), 'key', ...backlog(30).slice(20)]);
      wire.read();
      await settled();
      expect(wire.flow.destroyed).toBeUndefined();
      expect(wire.unread()).toBe(0);
      expect(handedOver).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`));
      expect(queue.waiting).toBe(0);
      // Reading stopped once the answer was in and the queue was still above the high-water
      // mark, and started again at the low-water mark.
      expect(wire.flow.pauses).toBeGreaterThan(0);
    });

    it('closes the connection past the hard limit instead of buffering without bound', async () => {
      // A server that never answers but keeps sending.
      const { queue, wire, handedOver } = client(backlog(100), { maxWaiting: 32 });
      wire.read();
      await settled();
      expect(wire.flow.destroyed).toBeInstanceOf(InboundOverflowError);
      expect(queue.waiting).toBe(32);
      expect(handedOver).toEqual([]);
      expect(() => setup({ highWater: 4, lowWater: 1, maxWaiting: 3 })).toThrow(RangeError);
    });
  });
});
