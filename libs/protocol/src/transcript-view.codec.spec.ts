import fc from 'fast-check';

import { ProtocolError } from './errors/protocol-error';
import { receiptDigest } from './transcript';
import { decodeTranscriptView, encodeTranscriptView } from './transcript-view.codec';

const chain = fc.uint8Array({ minLength: 32, maxLength: 32 });
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const view = fc.record({
  sessionId: fc.string({ minLength: 1 }),
  c2sCount: count,
  c2sChain: chain,
  s2cCount: count,
  s2cChain: chain,
});

describe('transcript view codec (PROTOCOL.md §7)', () => {
  it('round-trips every view, so both sides sign the same D', () => {
    fc.assert(
      fc.property(view, (v) => {
        const decoded = decodeTranscriptView(v.sessionId, encodeTranscriptView(v));
        expect(decoded.c2sCount).toBe(v.c2sCount);
        expect(decoded.s2cCount).toBe(v.s2cCount);
        expect(Buffer.from(decoded.c2sChain).equals(Buffer.from(v.c2sChain))).toBe(true);
        expect(Buffer.from(decoded.s2cChain).equals(Buffer.from(v.s2cChain))).toBe(true);
        expect(receiptDigest(decoded).equals(receiptDigest(v))).toBe(true);
      }),
    );
  });

  it('writes exactly the four view members, chains in padded base64', () => {
    const members = encodeTranscriptView({
      c2sCount: 3,
      c2sChain: new Uint8Array(32).fill(0xff),
      s2cCount: 4,
      s2cChain: new Uint8Array(32),
    });
    expect(members).toEqual({
      c2s_count: 3,
      c2s_chain: Buffer.alloc(32, 0xff).toString('base64'),
      s2c_count: 4,
      s2c_chain: 'A'.repeat(43) + '=',
    });
  });

  it('refuses a chain that is not canonical base64 of 32 bytes with bad_frame', () => {
    const good = Buffer.alloc(32).toString('base64');
    for (const bad of [Buffer.alloc(31).toString('base64'), 'not base64', good.slice(0, -1)]) {
      for (const members of [
        { c2s_count: 0, c2s_chain: bad, s2c_count: 0, s2c_chain: good },
        { c2s_count: 0, c2s_chain: good, s2c_count: 0, s2c_chain: bad },
      ]) {
        let error: unknown;
        try {
          decodeTranscriptView('s', members);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ProtocolError);
        expect((error as ProtocolError).code).toBe('bad_frame');
      }
    }
  });
});
