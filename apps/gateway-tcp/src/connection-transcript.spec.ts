/**
 * One connection's transcript as shipped (PROTOCOL.md §7): records kept until the session
 * opens, positions in the order seen, and one close whose status says whether the client
 * countersigned.
 */
import { type ChunkRecord, type TranscriptClose, type TranscriptOpen } from '@securechat/core';
import {
  type CountersignCheck,
  type RecordEvent,
  sha256,
  toBase64,
  type TranscriptView,
} from '@securechat/protocol';

import { ConnectionTranscript } from './connection-transcript';

const bytes = (fill: number, length = 32): Buffer => Buffer.alloc(length, fill);

function fakeShipper(mode: 'full' | 'digest' = 'full') {
  return {
    mode,
    open: jest.fn<void, [TranscriptOpen]>(),
    record: jest.fn<void, [sessionId: string, position: number, record: ChunkRecord]>(),
    close: jest.fn<void, [TranscriptClose]>(),
  };
}

function event(n: number, direction: 'c2s' | 's2c', chained = true): RecordEvent {
  return { direction, sequence: n, plaintext: Buffer.from(`{"n":${n}}`), chained };
}

function view(fill: number, c2sCount = 3, s2cCount = 4): TranscriptView {
  return {
    sessionId: 'sess-1',
    c2sCount,
    c2sChain: bytes(fill),
    s2cCount,
    s2cChain: bytes(fill + 1),
  };
}

const viewDto = (v: TranscriptView) => ({
  c2sCount: v.c2sCount,
  c2sChain: toBase64(v.c2sChain),
  s2cCount: v.s2cCount,
  s2cChain: toBase64(v.s2cChain),
});

function setup(mode: 'full' | 'digest' = 'full') {
  let time = 1_700_000_000_000;
  const shipper = fakeShipper(mode);
  const transcript = new ConnectionTranscript({
    sessionId: 'sess-1',
    gateway: 'gw-1',
    shipper,
    now: () => time,
  });
  return {
    shipper,
    transcript,
    tick: (ms: number) => {
      time += ms;
    },
  };
}

const session = { username: 'alice', h2: bytes(0xaa) };

function closing(options: { receipt?: { view: TranscriptView; signature: Buffer } } = {}) {
  return { sentReceipt: options.receipt, view: jest.fn(() => view(0x10, 5, 6)) };
}

function check(outcome: 'agreed' | 'disputed'): CountersignCheck {
  return {
    outcome,
    viewsMatch: outcome === 'agreed',
    signatureValid: true,
    serverView: view(0x20),
    serverSignature: bytes(0x21, 64),
    clientView: view(outcome === 'agreed' ? 0x20 : 0x30),
    clientSignature: bytes(0x31, 64),
  };
}

describe('ConnectionTranscript', () => {
  it('keeps records seen before the session, and ships them after the open at 0..n', () => {
    const { shipper, transcript, tick } = setup('digest');
    const early = [event(0, 's2c'), event(1, 'c2s', false), event(2, 's2c')];
    for (const e of early) transcript.record(e);
    expect(transcript.opened).toBe(false);
    expect(shipper.open).not.toHaveBeenCalled();
    expect(shipper.record).not.toHaveBeenCalled();

    tick(250);
    transcript.open(session);
    expect(transcript.opened).toBe(true);
    expect(shipper.open).toHaveBeenCalledWith({
      sessionId: 'sess-1',
      username: 'alice',
      gateway: 'gw-1',
      mode: 'digest',
      h2: toBase64(session.h2),
      startedAt: 1_700_000_000_250,
    });
    expect(shipper.record.mock.calls).toEqual(
      early.map((e, position) => [
        'sess-1',
        position,
        { direction: e.direction, chained: e.chained, plaintext: e.plaintext },
      ]),
    );
    // The plaintext goes as the raw bytes (the shipper packs them into chunks), not base64.
    for (const [, , record] of shipper.record.mock.calls) {
      expect(Buffer.isBuffer(record.plaintext)).toBe(true);
    }
    // The open goes first: the relay stores records under an open transcript.
    expect(shipper.open.mock.invocationCallOrder[0]).toBeLessThan(
      shipper.record.mock.invocationCallOrder[0]!,
    );

    // Later records take the next positions, both directions interleaved as seen.
    const later = [event(3, 'c2s'), event(4, 's2c', false)];
    for (const e of later) transcript.record(e);
    expect(shipper.record.mock.calls.map(([, position, r]) => [position, r.direction])).toEqual([
      [0, 's2c'],
      [1, 'c2s'],
      [2, 's2c'],
      [3, 'c2s'],
      [4, 's2c'],
    ]);
    expect(shipper.record.mock.calls.slice(3)).toEqual(
      later.map((e, i) => [
        'sess-1',
        3 + i,
        { direction: e.direction, chained: e.chained, plaintext: e.plaintext },
      ]),
    );
  });

  it('opens with no early records, and only once', () => {
    const { shipper, transcript } = setup();
    transcript.open(session);
    expect(shipper.record).not.toHaveBeenCalled();
    transcript.record(event(0, 's2c'));
    expect(shipper.record).toHaveBeenCalledWith('sess-1', 0, {
      direction: 's2c',
      chained: true,
      plaintext: Buffer.from('{"n":0}'),
    });
    expect(() => transcript.open(session)).toThrow('already open');
    expect(shipper.open).toHaveBeenCalledTimes(1);
  });

  it('closes nothing that never opened', () => {
    const { shipper, transcript } = setup();
    transcript.record(event(0, 's2c'));
    transcript.close(closing());
    expect(shipper.close).not.toHaveBeenCalled();
  });

  it('closes once, as incomplete without a countersign, with the server’s own view', () => {
    const { shipper, transcript, tick } = setup();
    transcript.open(session);
    tick(5_000);
    const ending = closing();
    transcript.close(ending);
    transcript.close(ending);
    expect(shipper.close).toHaveBeenCalledTimes(1);
    const shipped = shipper.close.mock.calls[0]![0];
    expect(shipped).toEqual({
      sessionId: 'sess-1',
      endedAt: 1_700_000_005_000,
      status: 'incomplete',
      serverView: viewDto(view(0x10, 5, 6)),
    });
    expect(shipped).not.toHaveProperty('receiptSignature');
    expect(shipped).not.toHaveProperty('clientView');
    expect(shipped).not.toHaveProperty('countersignature');
  });

  it('closes as incomplete with the receipt when the client never countersigned', () => {
    const { shipper, transcript } = setup();
    transcript.open(session);
    const receipt = { view: view(0x40, 7, 8), signature: bytes(0x41, 64) };
    const ending = closing({ receipt });
    transcript.close(ending);
    expect(shipper.close.mock.calls[0]![0]).toEqual({
      sessionId: 'sess-1',
      endedAt: expect.any(Number),
      status: 'incomplete',
      serverView: viewDto(receipt.view),
      receiptSignature: toBase64(receipt.signature),
    });
    // The receipt's view is what the server signed: the live view is not asked for.
    expect(ending.view).not.toHaveBeenCalled();
  });

  it.each(['agreed', 'disputed'] as const)(
    'closes as %s after a countersign, with the client’s view and signature',
    (outcome) => {
      const { shipper, transcript } = setup();
      transcript.open(session);
      const receipt = { view: view(0x20), signature: bytes(0x21, 64) };
      const countersign = check(outcome);
      transcript.countersigned(countersign);
      transcript.close(closing({ receipt }));
      expect(shipper.close).toHaveBeenCalledTimes(1);
      expect(shipper.close.mock.calls[0]![0]).toEqual({
        sessionId: 'sess-1',
        endedAt: expect.any(Number),
        status: outcome,
        serverView: viewDto(receipt.view),
        receiptSignature: toBase64(receipt.signature),
        clientView: viewDto(countersign.clientView),
        countersignature: toBase64(countersign.clientSignature),
      });
    },
  );

  // docs/PROTOCOL.md §10 item 25: the verdict comes before the record reaches the shipper.
  describe('records the gateway refused', () => {
    const full = (e: RecordEvent) => ({
      direction: e.direction,
      chained: e.chained,
      plaintext: e.plaintext,
    });

    it('holds a chained c2s record until judged, then ships it by digest if refused', () => {
      const { shipper, transcript } = setup();
      transcript.open(session);
      const refused = event(0, 'c2s');
      transcript.record(refused);
      expect(shipper.record).not.toHaveBeenCalled(); // awaiting its verdict
      transcript.judged(true);
      expect(shipper.record.mock.calls).toEqual([
        ['sess-1', 0, { direction: 'c2s', chained: true, digest: sha256(refused.plaintext) }],
      ]);
      expect(shipper.record.mock.calls[0]![2]).not.toHaveProperty('plaintext');
      // The answer (an s2c error) goes in full at the next position.
      const answer = event(1, 's2c');
      transcript.record(answer);
      expect(shipper.record.mock.calls[1]).toEqual(['sess-1', 1, full(answer)]);
      transcript.judged(true); // nothing awaits: no effect
      expect(shipper.record).toHaveBeenCalledTimes(2);
    });

    it('ships an accepted record in full, once', () => {
      const { shipper, transcript } = setup();
      transcript.open(session);
      const accepted = event(0, 'c2s');
      transcript.record(accepted);
      transcript.judged(false);
      transcript.judged(true);
      expect(shipper.record.mock.calls).toEqual([['sess-1', 0, full(accepted)]]);
    });

    it('ships an unjudged record in full before the next record or the close, in order', () => {
      const { shipper, transcript } = setup();
      transcript.open(session);
      const first = event(0, 'c2s');
      const second = event(1, 'c2s');
      transcript.record(first);
      transcript.record(second);
      expect(shipper.record.mock.calls).toEqual([['sess-1', 0, full(first)]]);
      transcript.close(closing());
      expect(shipper.record.mock.calls).toEqual([
        ['sess-1', 0, full(first)],
        ['sess-1', 1, full(second)],
      ]);
      expect(shipper.record.mock.invocationCallOrder[1]).toBeLessThan(
        shipper.close.mock.invocationCallOrder[0]!,
      );
    });

    it('never holds an s2c record or an unchained c2s one (bye, countersign)', () => {
      const { shipper, transcript } = setup();
      transcript.open(session);
      transcript.record(event(0, 's2c'));
      transcript.record(event(1, 'c2s', false));
      expect(shipper.record).toHaveBeenCalledTimes(2);
      transcript.judged(true);
      expect(shipper.record.mock.calls.map(([, , r]) => 'plaintext' in r)).toEqual([true, true]);
    });
  });
});
