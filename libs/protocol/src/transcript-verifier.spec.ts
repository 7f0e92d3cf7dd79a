import { createPublicKey } from 'node:crypto';

import { b64, serverIdentityKey, userEd25519Key, userRsaKey, vectors } from '../test/vectors';
import { type TranscriptRecordInput, verifyTranscript } from './transcript-verifier';

const rc = vectors.receipt;
const view = {
  sessionId: rc.session_id,
  c2sCount: rc.c2s_count,
  c2sChain: b64(rc.c2s_chain),
  s2cCount: rc.s2c_count,
  s2cChain: b64(rc.s2c_chain),
};
const records: TranscriptRecordInput[] = vectors.records.map((r) => ({
  direction: r.direction as 'c2s' | 's2c',
  chained: 'chain_after' in r,
  plaintext: Buffer.from(r.plaintext, 'utf8'),
}));
const base = {
  sessionId: 's-0001',
  h2: b64(vectors.handshake.H2),
  records,
  receipt: { view, signature: b64(rc.receipt_signature) },
  countersign: { view, signature: b64(rc.countersign_signature_ed25519) },
  serverKey: createPublicKey(serverIdentityKey),
  userKey: createPublicKey(userEd25519Key),
};

describe('verifyTranscript', () => {
  it('verifies the vectors session: records, receipt and countersignature', () => {
    const result = verifyTranscript(base);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['records match receipt', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
    expect(result.ok).toBe(true);
  });

  it('fails when a record was altered, dropped or reordered', () => {
    const altered = records.map((r, i) =>
      i === 1 ? { ...r, plaintext: Buffer.from('{"type":"ping"}') } : r,
    );
    expect(verifyTranscript({ ...base, records: altered }).ok).toBe(false);
    expect(verifyTranscript({ ...base, records: records.slice(0, -3) }).ok).toBe(false);
    const c2s = records.filter((r) => r.direction === 'c2s');
    const swapped = [
      c2s[1]!,
      c2s[0]!,
      ...c2s.slice(2),
      ...records.filter((r) => r.direction === 's2c'),
    ];
    expect(verifyTranscript({ ...base, records: swapped }).ok).toBe(false);
  });

  it('fails on a foreign server key, a wrong user key, or a missing receipt', () => {
    expect(verifyTranscript({ ...base, serverKey: createPublicKey(userEd25519Key) }).ok).toBe(
      false,
    );
    expect(verifyTranscript({ ...base, userKey: createPublicKey(userRsaKey) }).ok).toBe(false);
    const { receipt: _receipt, ...withoutReceipt } = base;
    const result = verifyTranscript(withoutReceipt);
    expect(result.ok).toBe(false);
    expect(result.checks).toContainEqual(
      expect.objectContaining({ name: 'receipt present', ok: false }),
    );
  });
});
