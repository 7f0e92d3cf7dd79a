/**
 * Property tests of PROTOCOL.md §4 and §5: records round-trip across key updates in both
 * directions, and any tampering, truncation or wrong sequence number fails to authenticate.
 */
import { createCipheriv } from 'node:crypto';

import fc from 'fast-check';

import { KEY_UPDATE_LIMIT } from './constants';
import { ProtocolError } from './errors/protocol-error';
import { RecordAuthenticationError } from './errors/record-authentication-error';
import { deriveRecordKeys, nextTrafficSecret } from './key-schedule';
import { type Direction, RecordDirection, recordNonce } from './record-layer';

const RUNS = { numRuns: 1000 };

const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const directionArb = fc.constantFrom<Direction>('c2s', 's2c');
/** Mostly short plaintexts (cheap to generate), sometimes up to ~5000 bytes. */
const plaintextArb = fc
  .oneof(
    { weight: 8, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 5000 }) },
  )
  .map((a) => Buffer.from(a));
/** A sequence number below 2^24, often near the ends of the range. */
const sequenceArb = fc.oneof(
  fc.integer({ min: 0, max: 16 }),
  fc.integer({ min: 0, max: KEY_UPDATE_LIMIT - 1 }),
  fc.integer({ min: KEY_UPDATE_LIMIT - 16, max: KEY_UPDATE_LIMIT - 1 }),
);

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function expectAuthFailure(receiver: RecordDirection, sealed: Uint8Array): void {
  const before = receiver.sequence;
  const error = catchError(() => receiver.open(sealed));
  expect(error).toBeInstanceOf(RecordAuthenticationError);
  expect(error).toBeInstanceOf(ProtocolError);
  expect(error).toMatchObject({ code: 'bad_frame', silent: true, direction: receiver.direction });
  // PROTOCOL.md §5: nothing is processed from it, and the count does not move.
  expect(receiver.sequence).toBe(before);
}

describe('tampered records', () => {
  const sealedArb = fc.record({
    direction: directionArb,
    secret: secretArb,
    sequence: sequenceArb,
    plaintext: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  });

  it('fails to authenticate with any single bit flipped, ciphertext or tag', () => {
    fc.assert(
      fc.property(
        sealedArb.chain((r) =>
          fc.tuple(fc.constant(r), fc.nat({ max: (r.plaintext.length + 16) * 8 - 1 })),
        ),
        ([{ direction, secret, sequence, plaintext }, bit]) => {
          const sealed = new RecordDirection(direction, secret, sequence).seal(plaintext);
          expect(sealed).toHaveLength(plaintext.length + 16);
          const tampered = Buffer.from(sealed);
          tampered[bit >> 3]! ^= 1 << (bit & 7);
          const receiver = new RecordDirection(direction, secret, sequence);
          expectAuthFailure(receiver, tampered);
          // The untouched record still opens at the same count.
          expect(receiver.open(sealed).equals(plaintext)).toBe(true);
          expect(receiver.sequence).toBe(sequence + 1);
        },
      ),
      RUNS,
    );
  });

  it('fails to authenticate when truncated or extended', () => {
    fc.assert(
      fc.property(
        sealedArb.chain((r) =>
          fc.tuple(
            fc.constant(r),
            fc.nat({ max: r.plaintext.length + 15 }),
            fc.uint8Array({ minLength: 1, maxLength: 32 }),
          ),
        ),
        ([{ direction, secret, sequence, plaintext }, keep, extra]) => {
          const sealed = new RecordDirection(direction, secret, sequence).seal(plaintext);
          const receiver = new RecordDirection(direction, secret, sequence);
          expectAuthFailure(receiver, sealed.subarray(0, keep));
          expectAuthFailure(receiver, Buffer.concat([sealed, extra]));
          expect(receiver.open(sealed).equals(plaintext)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('fails to authenticate under another sequence number (replay, reorder, drop)', () => {
    fc.assert(
      fc.property(
        sealedArb.chain((r) =>
          fc.tuple(
            fc.constant(r),
            fc
              .oneof(
                fc.integer({ min: -3, max: 3 }),
                fc.integer({ min: -r.sequence, max: KEY_UPDATE_LIMIT - 1 - r.sequence }),
                fc.constantFrom(2 ** 8, 2 ** 16, -(2 ** 8)),
              )
              .filter((d) => d !== 0 && r.sequence + d >= 0 && r.sequence + d < KEY_UPDATE_LIMIT),
          ),
        ),
        ([{ direction, secret, sequence, plaintext }, d]) => {
          const sealed = new RecordDirection(direction, secret, sequence).seal(plaintext);
          expectAuthFailure(new RecordDirection(direction, secret, sequence + d), sealed);
        },
      ),
      RUNS,
    );
  });

  it('fails to authenticate under another secret or after a key update on one side only', () => {
    fc.assert(
      fc.property(sealedArb, secretArb, ({ direction, secret, sequence, plaintext }, other) => {
        fc.pre(!other.equals(secret));
        const sealed = new RecordDirection(direction, secret, sequence).seal(plaintext);
        expectAuthFailure(new RecordDirection(direction, other, sequence), sealed);
        const updated = new RecordDirection(direction, secret, sequence);
        updated.update();
        expectAuthFailure(updated, sealed);
      }),
      RUNS,
    );
  });
});

/** `iv XOR (0x00000000 || u64(n))` with BigInt, independent of recordNonce. */
function referenceNonce(iv: Uint8Array, sequence: number): Buffer {
  const ivInt = BigInt(`0x${Buffer.from(iv).toString('hex')}`);
  const hex = (ivInt ^ BigInt(sequence)).toString(16).padStart(24, '0');
  return Buffer.from(hex, 'hex');
}

/** AES-128-GCM by hand with the PROTOCOL.md §4 keys: what seal must produce. */
function referenceSeal(secret: Uint8Array, sequence: number, plaintext: Uint8Array): Buffer {
  const { key, iv } = deriveRecordKeys(secret);
  const cipher = createCipheriv('aes-128-gcm', key, referenceNonce(iv, sequence), {
    authTagLength: 16,
  });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

type Op =
  | { kind: 'send'; direction: Direction; plaintext: Buffer }
  | { kind: 'update'; direction: Direction };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      direction: directionArb,
      plaintext: plaintextArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('update' as const), direction: directionArb }),
  },
);

describe('round trips across key updates', () => {
  it('opens what the other side sealed, in both directions, at any interleaving', () => {
    fc.assert(
      fc.property(
        secretArb,
        secretArb,
        fc.array(opArb, { maxLength: 30 }),
        (c2sSecret, s2cSecret, ops) => {
          // c2s: client seals, server opens; s2c: the reverse. The client's login record is
          // c2s sequence 0, so the client starts there too.
          const sender = {
            c2s: new RecordDirection('c2s', c2sSecret),
            s2c: new RecordDirection('s2c', s2cSecret),
          };
          // The receiving side as a server makes it: a pair sharing one buffer until one of
          // them updates its keys.
          const receiver = RecordDirection.pair(c2sSecret, s2cSecret);
          // The model: current secret and sequence per direction.
          const model: Record<Direction, { secret: Buffer; sequence: number }> = {
            c2s: { secret: c2sSecret, sequence: 0 },
            s2c: { secret: s2cSecret, sequence: 0 },
          };
          const keyUpdate = Buffer.from('{"type":"key_update"}');
          let inStep = true;

          for (const op of ops) {
            const d = op.direction;
            // PROTOCOL.md §4: the key_update record is protected with the old key, then both sides
            // move on.
            const plaintext = op.kind === 'send' ? op.plaintext : keyUpdate;
            const sealed = sender[d].seal(plaintext);
            expect(
              sealed.equals(referenceSeal(model[d].secret, model[d].sequence, plaintext)),
            ).toBe(true);
            expect(receiver[d].open(sealed).equals(plaintext)).toBe(true);
            model[d].sequence += 1;
            if (op.kind === 'update') {
              sender[d].update();
              receiver[d].update();
              model[d] = { secret: nextTrafficSecret(model[d].secret), sequence: 0 };
            }
            for (const dir of ['c2s', 's2c'] as const) {
              inStep &&=
                sender[dir].sequence === model[dir].sequence &&
                receiver[dir].sequence === model[dir].sequence &&
                sender[dir].snapshotForTests().secret.equals(model[dir].secret) &&
                receiver[dir].snapshotForTests().secret.equals(model[dir].secret);
            }
          }
          expect(inStep).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it('keeps key material out of JSON', () => {
    const secret = Buffer.alloc(32, 7);
    const direction = new RecordDirection('s2c', secret, 5);
    const snapshot = direction.snapshotForTests();
    const json = JSON.stringify(direction);
    expect(JSON.parse(json)).toEqual({ direction: 's2c', sequence: 5 });
    for (const material of [snapshot.secret, snapshot.key, snapshot.iv]) {
      expect(json).not.toContain(material.toString('hex'));
      expect(json).not.toContain(material.toString('base64'));
    }
  });
});

describe('recordNonce', () => {
  const ivArb = fc.uint8Array({ minLength: 12, maxLength: 12 });
  const seqArb = fc.oneof(
    fc.maxSafeNat(),
    fc.nat({ max: 2 ** 24 }),
    fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 31, 2 ** 31 - 1),
    fc.integer({ min: 0, max: 2 ** 21 - 1 }).map((hi) => hi * 2 ** 32 + 0xffff_ffff),
  );

  it('XORs u64(n) into the last 8 bytes, like a BigInt reference', () => {
    fc.assert(
      fc.property(ivArb, seqArb, (iv, sequence) => {
        const copy = Buffer.from(iv);
        const nonce = recordNonce(iv, sequence);
        expect(nonce.toString('hex')).toBe(referenceNonce(iv, sequence).toString('hex'));
        expect(nonce.subarray(0, 4).equals(copy.subarray(0, 4))).toBe(true);
        expect(Buffer.from(iv).equals(copy)).toBe(true); // iv not modified
        const xored = Buffer.alloc(8);
        for (let i = 0; i < 8; i++) xored[i] = nonce[4 + i]! ^ copy[4 + i]!;
        expect(xored.readBigUInt64BE(0)).toBe(BigInt(sequence));
      }),
      RUNS,
    );
  });

  it('matches hand-computed values', () => {
    const iv = Buffer.from('000102030405060708090a0b', 'hex');
    expect(recordNonce(iv, 0).toString('hex')).toBe('000102030405060708090a0b');
    expect(recordNonce(iv, 1).toString('hex')).toBe('000102030405060708090a0a');
    expect(recordNonce(iv, 2 ** 32).toString('hex')).toBe('000102030405060608090a0b');
    expect(recordNonce(Buffer.alloc(12, 0xff), 2 ** 53 - 1).toString('hex')).toBe(
      'ffffffffffe0000000000000',
    );
  });

  it('refuses a bad iv or sequence', () => {
    expect(() => recordNonce(Buffer.alloc(11), 0)).toThrow(RangeError);
    expect(() => recordNonce(Buffer.alloc(13), 0)).toThrow(RangeError);
    for (const sequence of [-1, 1.5, 2 ** 53, NaN, Infinity]) {
      expect(() => recordNonce(Buffer.alloc(12), sequence)).toThrow(RangeError);
    }
  });
});

describe('the 2^24 limit (§4)', () => {
  const secret = Buffer.alloc(32, 0x42);

  it('refuses to seal at sequence 2^24 and leaves the count alone', () => {
    const sender = new RecordDirection('c2s', secret, KEY_UPDATE_LIMIT);
    expect(() => sender.seal(Buffer.from('{}'))).toThrow(/2\^24/);
    expect(sender.sequence).toBe(KEY_UPDATE_LIMIT);
    sender.update();
    expect(sender.sequence).toBe(0);
    expect(() => sender.seal(Buffer.from('{}'))).not.toThrow();
  });

  it('refuses to open at sequence 2^24 with unexpected_message', () => {
    const receiver = new RecordDirection('s2c', secret, KEY_UPDATE_LIMIT);
    const sealed = new RecordDirection('s2c', secret, KEY_UPDATE_LIMIT - 1).seal(Buffer.from('{}'));
    const error = catchError(() => receiver.open(sealed));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).not.toBeInstanceOf(RecordAuthenticationError);
    expect(error).toMatchObject({ code: 'unexpected_message' });
    expect(receiver.sequence).toBe(KEY_UPDATE_LIMIT);
  });

  it('seals and opens the last record at 2^24 - 1, then needs a key update', () => {
    const sender = new RecordDirection('c2s', secret, KEY_UPDATE_LIMIT - 1);
    const receiver = new RecordDirection('c2s', secret, KEY_UPDATE_LIMIT - 1);
    const keyUpdate = Buffer.from('{"type":"key_update"}');
    expect(receiver.open(sender.seal(keyUpdate)).equals(keyUpdate)).toBe(true);
    expect(() => sender.seal(Buffer.from('{}'))).toThrow();
    expect(catchError(() => receiver.open(Buffer.alloc(16)))).toMatchObject({
      code: 'unexpected_message',
    });
    sender.update();
    receiver.update();
    const next = Buffer.from('{"type":"ping"}');
    expect(receiver.open(sender.seal(next)).equals(next)).toBe(true);
    expect(sender.sequence).toBe(1);
  });
});
