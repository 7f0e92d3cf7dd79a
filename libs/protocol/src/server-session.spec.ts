/**
 * ServerSession's closing rules (PROTOCOL.md §6, §7): what may still be said once `bye` was read.
 */
import { connectAlice, type ConnectedRun, type Sealer } from '../test/in-memory-pair';
import { toBase64 } from './encoding';
import { ProtocolError } from './errors/protocol-error';
import { type RecordEvent } from './session';
import { computeChain } from './transcript';

type Connected = ConnectedRun & {
  /** Every record the server sealed or opened, in order (its transcript). */
  serverRecords: RecordEvent[];
};

async function connect(): Promise<Connected> {
  const serverRecords: RecordEvent[] = [];
  const run = await connectAlice({
    sessionId: 's-7',
    serverSession: { onRecord: (event) => serverRecords.push(event) },
  });
  return { ...run, serverRecords };
}

/** The client's bytes, read by the server; the server's failure, if it threw one. */
function serverReads(run: Connected, bytes: Buffer): ProtocolError | undefined {
  try {
    for (const frame of run.toServer.frames(bytes)) run.serverSession.receive(frame);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
}

/** A session closed up to the receipt, with one request answered before it. */
async function afterReceipt(): Promise<Connected> {
  const run = await connect();
  serverReads(run, run.clientSession.send({ type: 'ping', n: 1 }));
  run.toClient.frames(run.serverSession.send({ type: 'pong', n: 1 }));
  serverReads(run, run.clientSession.bye());
  run.serverSession.receipt();
  return run;
}

const chain31 = Buffer.alloc(31, 1).toString('base64');

describe('ServerSession after its receipt (§6, §7)', () => {
  it.each([
    ['a ping', { type: 'ping', n: 2 }, 'unexpected_message'],
    ['a second bye', { type: 'bye' }, 'unexpected_message'],
    ['a countersign with a member not defined for it', 'countersign+note', 'bad_frame'],
    ['a countersign whose c2s_chain decodes to 31 bytes', 'countersign-31', 'bad_frame'],
  ] as const)(
    'answers %s with nothing: finalError is undefined and the chains stay as the receipt signed them',
    async (_what, message, code) => {
      const run = await afterReceipt();
      const receipt = run.serverSession.sentReceipt!;
      const recordsAtReceipt = run.serverRecords.length;
      const view = run.serverSession.view();
      const countersign = {
        type: 'countersign',
        c2s_count: view.c2sCount,
        c2s_chain: toBase64(view.c2sChain),
        s2c_count: view.s2cCount,
        s2c_chain: toBase64(view.s2cChain),
        signature: Buffer.alloc(64, 2).toString('base64'),
      };
      const record =
        message === 'countersign+note'
          ? { ...countersign, note: 'x' }
          : message === 'countersign-31'
            ? { ...countersign, c2s_chain: chain31 }
            : message;
      const error = serverReads(run, (run.clientSession as unknown as Sealer).seal(record, false));
      expect(error).toMatchObject({ code });
      expect(run.serverSession.state).toBe('closed');

      expect(run.serverSession.finalError(error!)).toBeUndefined();
      expect(run.serverSession.finalError(error!)).toBeUndefined();

      // Nothing sealed after the receipt: the server's transcript still recomputes its view.
      const sealedAfter = run.serverRecords
        .slice(recordsAtReceipt)
        .filter((r) => r.direction === 's2c');
      expect(sealedAfter).toEqual([]);
      expect(run.serverSession.view()).toEqual(receipt.view);
      const s2c = computeChain(
        run.serverSession.h2,
        run.serverRecords.filter((r) => r.direction === 's2c' && r.chained).map((r) => r.plaintext),
      );
      expect({ count: s2c.count, chain: s2c.chain }).toEqual({
        count: receipt.view.s2cCount,
        chain: receipt.view.s2cChain,
      });
    },
  );

  it('still says a fatal error once, as a record, before the receipt (§2, §10.8)', async () => {
    const run = await connect();
    const sealer = run.clientSession as unknown as Sealer;
    const error = serverReads(run, sealer.seal({ type: 'ping', n: 1, extra: true }, true));
    expect(error).toMatchObject({ code: 'bad_frame' });
    const last = run.serverSession.finalError(error!);
    expect(last).toBeInstanceOf(Buffer);
    const [frame] = run.toClient.frames(last!);
    expect(() => run.clientSession.receive(frame!)).not.toThrow();
    expect(run.serverRecords.at(-1)).toMatchObject({ direction: 's2c', chained: true });
    expect(JSON.parse(run.serverRecords.at(-1)!.plaintext.toString())).toMatchObject({
      type: 'error',
      code: 'bad_frame',
    });
    expect(run.serverSession.finalError(error!)).toBeUndefined(); // once
  });
});
