/**
 * StoredTranscriptVerifier.verify over a mocked store, with the protocol's published vectors as the
 * stored session (docs/PROTOCOL.md §8.5, §12): what it checks beyond verifyTranscript.
 */
import { createPublicKey } from 'node:crypto';

import { exportSpki } from '@securechat/protocol';

import {
  b64,
  serverIdentityKey,
  userEd25519Key,
  userRsaKey,
  vectors,
} from '../../../libs/protocol/test/vectors';
import {
  type StoredTranscript,
  type StoredTranscriptSession,
  type TranscriptRepository,
} from '../src/transcript.repository';
import {
  type DirectoryEntry,
  type UserDirectoryRepository,
} from '../src/user-directory.repository';
import { StoredTranscriptVerifier } from './stored-transcript-verifier';

const rc = vectors.receipt;
const view = {
  c2sCount: rc.c2s_count,
  c2sChain: b64(rc.c2s_chain),
  s2cCount: rc.s2c_count,
  s2cChain: b64(rc.s2c_chain),
};
const session: StoredTranscriptSession = {
  sessionId: rc.session_id,
  username: 'alice',
  gateway: 'gw',
  mode: 'full',
  h2: b64(vectors.handshake.H2),
  startedAt: 1,
  endedAt: 2,
  status: 'agreed',
  serverView: view,
  receiptSignature: b64(rc.receipt_signature),
  clientView: view,
  countersignature: b64(rc.countersign_signature_ed25519),
  recordsPurgedAt: undefined,
};
const records = vectors.records.map((r, position) => ({
  position,
  direction: r.direction as 'c2s' | 's2c',
  chained: 'chain_after' in r,
  plaintext: Buffer.from(r.plaintext, 'utf8'),
}));
const serverKey = createPublicKey(serverIdentityKey);

function setup(stored: StoredTranscript | undefined, user?: Partial<DirectoryEntry> | null) {
  const transcripts = { load: jest.fn(() => Promise.resolve(stored)) };
  const entry =
    user === null
      ? undefined
      : { username: 'alice', deleted: false, publicKey: exportSpki(userEd25519Key), ...user };
  const users = { find: jest.fn(() => Promise.resolve(entry)) };
  return new StoredTranscriptVerifier(
    transcripts as unknown as TranscriptRepository,
    users as unknown as UserDirectoryRepository,
  );
}

const names = (report: { checks: { name: string; ok: boolean }[] } | undefined) =>
  report!.checks.map((c) => [c.name, c.ok]);

describe('StoredTranscriptVerifier.verify', () => {
  it('verifies the vectors session as stored, and reports the row status', async () => {
    const report = await setup({ session, records }).verify(rc.session_id, serverKey);
    expect(report).toMatchObject({ ok: true, sessionId: rc.session_id, status: 'agreed' });
    expect(names(report)).toEqual([
      ['records contiguous', true],
      ['records match receipt', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
  });

  it('fails when a position is missing from the store', async () => {
    const gap = records.filter((r) => r.position !== 2);
    const report = await setup({ session, records: gap }).verify(rc.session_id, serverKey);
    expect(report!.ok).toBe(false);
    expect(names(report)[0]).toEqual(['records contiguous', false]);
  });

  it('fails, rather than skipping the check, when the user key is missing or unusable', async () => {
    for (const user of [null, { publicKey: Buffer.from('not a key') }]) {
      const report = await setup({ session, records }, user).verify(rc.session_id, serverKey);
      expect(report!.ok).toBe(false);
      expect(names(report)).toContainEqual(['user key', false]);
    }
  });

  it('fails with another user key (the account was re-keyed, or it is not their signature)', async () => {
    const report = await setup({ session, records }, { publicKey: exportSpki(userRsaKey) }).verify(
      rc.session_id,
      serverKey,
    );
    expect(names(report)).toContainEqual(['countersignature', false]);
  });

  it('checks only signatures in digest mode, and needs no user key without a countersign', async () => {
    const digest = { ...session, mode: 'digest' as const };
    const report = await setup({ session: digest, records: [] }).verify(rc.session_id, serverKey);
    expect(report).toMatchObject({ ok: true, mode: 'digest' });
    expect(names(report).map(([name]) => name)).toEqual([
      'receipt signature',
      'views agree',
      'countersignature',
    ]);
    const noCountersign = { ...digest, clientView: undefined, countersignature: undefined };
    const service = setup({ session: noCountersign, records: [] }, null);
    expect(await service.verify(rc.session_id, serverKey)).toMatchObject({ ok: true });
  });

  it('checks a purged session by its signatures over the stored chain heads, and says so', async () => {
    const purged = { ...session, recordsPurgedAt: Date.UTC(2026, 0, 1) };
    const report = await setup({ session: purged, records: [] }).verify(rc.session_id, serverKey);
    expect(report).toMatchObject({ ok: true, mode: 'full', recordsPurgedAt: Date.UTC(2026, 0, 1) });
    expect(report!.recomputed).toBeUndefined();
    expect(names(report)).toEqual([
      ['records purged', true],
      ['receipt signature', true],
      ['views agree', true],
      ['countersignature', true],
    ]);
    expect(report!.checks[0]!.detail).toContain('2026-01-01T00:00:00.000Z');
    // Records the store still returns (a purge racing the read) are not used.
    const raced = await setup({ session: purged, records }).verify(rc.session_id, serverKey);
    expect(names(raced)[0]).toEqual(['records purged', true]);
  });

  it('answers undefined for an unknown session', async () => {
    expect(await setup(undefined).verify('nope', serverKey)).toBeUndefined();
  });
});
