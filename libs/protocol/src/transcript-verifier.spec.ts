import { createHash } from 'node:crypto';

import { b64, serverIdentityKey, userEd25519Key, userRsaPublicKey, vectors } from '../test/vectors';
import { publicKeyOf } from './crypto';
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
  serverKey: publicKeyOf(serverIdentityKey),
  userKey: publicKeyOf(userEd25519Key),
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
    const altered = records.map((r, i): TranscriptRecordInput =>
      i === 1
        ? { direction: r.direction, chained: r.chained, plaintext: Buffer.from('{"type":"ping"}') }
        : r,
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
    expect(verifyTranscript({ ...base, serverKey: publicKeyOf(userEd25519Key) }).ok).toBe(false);
    expect(verifyTranscript({ ...base, userKey: userRsaPublicKey() }).ok).toBe(false);
    const { receipt: _receipt, ...withoutReceipt } = base;
    const result = verifyTranscript(withoutReceipt);
    expect(result.ok).toBe(false);
    expect(result.checks).toContainEqual(
      expect.objectContaining({ name: 'receipt present', ok: false }),
    );
  });

  // docs/PROTOCOL.md §10 item 25: a record the server refused before any work is stored as
  // SHA-256(plaintext); chain_i = SHA-256(chain_{i-1} || SHA-256(plaintext_i)) needs no more.
  it('recomputes the chains from records kept by digest, and says how many', () => {
    const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();
    const digested = records.map((r): TranscriptRecordInput =>
      r.direction === 'c2s' && r.chained
        ? { direction: r.direction, chained: r.chained, digest: sha256(r.plaintext!) }
        : r,
    );
    const kept = digested.filter((r) => r.digest !== undefined).length;
    expect(kept).toBeGreaterThan(0);
    const result = verifyTranscript({ ...base, records: digested });
    expect(result.ok).toBe(true);
    expect(result.checks[0]).toMatchObject({
      name: 'records match receipt',
      ok: true,
      detail: expect.stringContaining(`(${kept} of them kept by digest)`) as string,
    });

    // A digest of other bytes breaks the chain like an altered plaintext does.
    const wrong = digested.map((r, i) =>
      i === digested.findIndex((d) => d.digest !== undefined)
        ? { direction: r.direction, chained: r.chained, digest: sha256(Buffer.from('{}')) }
        : r,
    );
    expect(verifyTranscript({ ...base, records: wrong }).checks[0]).toMatchObject({
      name: 'records match receipt',
      ok: false,
    });

    // A digest that is not 32 bytes is malformed input: a failed check, not a crash.
    const short = digested.map((r) =>
      r.digest !== undefined ? { ...r, digest: r.digest.subarray(0, 31) } : r,
    );
    expect(verifyTranscript({ ...base, records: short })).toMatchObject({
      ok: false,
      checks: [{ name: 'input well-formed', ok: false }],
    });
  });
});
