/**
 * browser-crypto.ts against node-crypto.ts: the same bytes out of both for the primitives of
 * PROTOCOL.md §1, the same keys accepted and refused, and RSA-PSS (which the browser does only
 * through WebCrypto, asynchronously) interoperating both ways. node-crypto is the oracle: it is
 * OpenSSL, and the rest of the suite pins it to the vectors.
 */
import {
  type KeyObject,
  constants,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
} from 'node:crypto';

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';

import { b64, hex, userRsaKey, vectors } from '../../test/vectors';
import { ProtocolError } from '../errors/protocol-error';
import { messageSignedBytes } from '../message-signature';
import * as reexported from '../crypto';
import * as browser from './browser-crypto';
import * as node from './node-crypto';

const bytes = (max = 300) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const exactly = (length: number) =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((a) => Buffer.from(a));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** What an import did: the key's type and SPKI, or the error code it was refused with. */
function outcome(importKey: () => { asymmetricKeyType?: string | undefined }, spki: () => Buffer) {
  try {
    const key = importKey();
    return { accepted: key.asymmetricKeyType, spki: hexOf(spki()) };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { refused: error.code };
  }
}

function importBoth(spki: Uint8Array, as: 'user' | 'server' = 'user') {
  let nodeKey: KeyObject | undefined;
  let browserKey: browser.BrowserPublicKey | undefined;
  const nodeImport = as === 'user' ? node.importUserPublicKey : node.importServerKey;
  const browserImport = as === 'user' ? browser.importUserPublicKey : browser.importServerKey;
  return {
    node: outcome(
      () => (nodeKey = nodeImport(spki)),
      () => node.exportSpki(nodeKey!),
    ),
    browser: outcome(
      () => (browserKey = browserImport(spki)),
      () => browser.exportSpki(browserKey!),
    ),
  };
}

const spkiOf = (key: KeyObject) => key.export({ format: 'der', type: 'spki' });

describe('browser-crypto exports what node-crypto exports', () => {
  it('the same names, each a function of the same arity', () => {
    const names = (m: object) => Object.keys(m).sort();
    expect(names(browser)).toEqual(names(node));
    // crypto.ts names each export (see there): none may be missing.
    expect(names(reexported)).toEqual(names(node));
    expect(names(node).length).toBeGreaterThan(20);
    for (const name of names(node)) {
      const [n, b] = [
        (node as Record<string, unknown>)[name],
        (browser as Record<string, unknown>)[name],
      ];
      expect(typeof b).toBe(typeof n);
      if (typeof n === 'function')
        expect([name, (b as () => void).length]).toEqual([name, n.length]);
    }
  });
});

describe('hashing and HKDF: byte for byte', () => {
  it('sha256 over any parts, and one transcript chain step', () => {
    fc.assert(
      fc.property(fc.array(bytes(), { maxLength: 5 }), exactly(32), (parts, digest) => {
        expect(hexOf(browser.sha256(...parts))).toBe(hexOf(node.sha256(...parts)));
        expect(Buffer.isBuffer(browser.sha256(...parts))).toBe(true);
        const head = node.sha256(...parts).toString('latin1');
        expect(browser.sha256ChainStep(head, digest)).toBe(node.sha256ChainStep(head, digest));
      }),
    );
  });

  it('HKDF extract and expand, and the same refusals', () => {
    fc.assert(
      fc.property(
        bytes(80),
        bytes(80),
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
        }),
        fc.integer({ min: 1, max: 255 * 32 }),
        (salt, ikm, info, length) => {
          const prk = node.hkdfExtract(salt, ikm);
          expect(hexOf(browser.hkdfExtract(salt, ikm))).toBe(hexOf(prk));
          expect(hexOf(browser.hkdfExpand(prk, info, length))).toBe(
            hexOf(node.hkdfExpand(prk, info, length)),
          );
        },
      ),
      { numRuns: 50 },
    );
    for (const [prk, length] of [
      [Buffer.alloc(31), 32],
      [Buffer.alloc(32), 0],
      [Buffer.alloc(32), 255 * 32 + 1],
      [Buffer.alloc(32), 1.5],
    ] as const) {
      expect(() => node.hkdfExpand(prk, 'x', length)).toThrow(RangeError);
      expect(() => browser.hkdfExpand(prk, 'x', length)).toThrow(RangeError);
    }
  });

  it('timingSafeEqual', () => {
    fc.assert(
      fc.property(bytes(40), bytes(40), fc.boolean(), (a, b, same) => {
        const other = same ? Buffer.from(a) : b;
        expect(browser.timingSafeEqual(a, other)).toBe(node.timingSafeEqual(a, other));
      }),
    );
  });

  it('randomBytes: the length asked, beyond one getRandomValues call, and not all zero', () => {
    const big = browser.randomBytes(70_000);
    expect(Buffer.isBuffer(big)).toBe(true);
    expect(big).toHaveLength(70_000);
    expect(big.subarray(65_536).some((byte) => byte !== 0)).toBe(true);
    expect(browser.randomBytes(32).equals(browser.randomBytes(32))).toBe(false);
  });
});

describe('AES-128-GCM: byte for byte, and the same refusals', () => {
  const sealedArb = fc.record({ key: exactly(16), nonce: exactly(12), plaintext: bytes(2000) });

  it('seals alike and each opens the other', () => {
    fc.assert(
      fc.property(sealedArb, ({ key, nonce, plaintext }) => {
        const sealed = node.aesGcmSeal(key, nonce, plaintext);
        expect(hexOf(browser.aesGcmSeal(key, nonce, plaintext))).toBe(hexOf(sealed));
        expect(hexOf(browser.aesGcmOpen(key, nonce, sealed)!)).toBe(hexOf(plaintext));
        expect(hexOf(node.aesGcmOpen(key, nonce, browser.aesGcmSeal(key, nonce, plaintext))!)).toBe(
          hexOf(plaintext),
        );
      }),
    );
  });

  it('a flipped bit anywhere, or a truncated tag, opens to undefined in both', () => {
    fc.assert(
      fc.property(
        sealedArb,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: 16 }),
        (input, at, bit, cut) => {
          const { key, nonce, plaintext } = input;
          const sealed = node.aesGcmSeal(key, nonce, plaintext);
          const flipped = Buffer.from(sealed);
          flipped[at % flipped.length]! ^= 1 << bit;
          const truncated = sealed.subarray(0, sealed.length - cut);
          for (const bad of [flipped, truncated]) {
            expect(node.aesGcmOpen(key, nonce, bad)).toBeUndefined();
            expect(browser.aesGcmOpen(key, nonce, bad)).toBeUndefined();
          }
        },
      ),
    );
  });
});

describe('X25519', () => {
  it('the same public keys and shared secrets, for any keys', () => {
    fc.assert(
      fc.property(exactly(32), exactly(32), (a, b) => {
        const [nodeA, browserA] = [node.x25519KeyPair(a), browser.x25519KeyPair(a)];
        const [nodeB, browserB] = [node.x25519KeyPair(b), browser.x25519KeyPair(b)];
        expect(hexOf(browserA.publicRaw)).toBe(hexOf(nodeA.publicRaw));
        const shared = node.x25519(nodeA.privateKey, nodeB.publicRaw);
        expect(hexOf(browser.x25519(browserA.privateKey, browserB.publicRaw))).toBe(hexOf(shared));
        expect(hexOf(browser.x25519(browserB.privateKey, browserA.publicRaw))).toBe(hexOf(shared));
      }),
      { numRuns: 50 },
    );
  });

  it('any 32 peer bytes: the same secret, or bad_frame from both', () => {
    const own = browser.randomBytes(32);
    const smallOrder = [
      Buffer.alloc(32),
      Buffer.from([1, ...Buffer.alloc(31)]),
      hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'),
      b64(vectors.must_reject[0]!.dh_pub!),
    ];
    fc.assert(
      fc.property(fc.oneof(exactly(32), fc.constantFrom(...smallOrder)), (peer) => {
        const result = (f: () => Buffer) => {
          try {
            return hexOf(f());
          } catch (error) {
            return (error as ProtocolError).code;
          }
        };
        const expected = result(() => node.x25519(node.x25519KeyPair(own).privateKey, peer));
        expect(result(() => browser.x25519(browser.x25519KeyPair(own).privateKey, peer))).toBe(
          expected,
        );
      }),
      { numRuns: 60 },
    );
    for (const peer of smallOrder) {
      expect(() => browser.x25519(browser.x25519KeyPair(own).privateKey, peer)).toThrow(
        expect.objectContaining({ code: 'bad_frame' }),
      );
    }
  });
});

describe('Ed25519', () => {
  it('the same SPKI and signatures; each verifies the other; tampering fails both', () => {
    fc.assert(
      fc.property(exactly(32), bytes(), fc.nat(), (seed, message, at) => {
        const nodeKey = node.ed25519PrivateKeyFromSeed(seed);
        const browserKey = browser.ed25519PrivateKeyFromSeed(seed);
        expect(hexOf(browser.exportSpki(browserKey))).toBe(hexOf(node.exportSpki(nodeKey)));
        const signature = node.ed25519Sign(nodeKey, message);
        expect(hexOf(browser.ed25519Sign(browserKey, message))).toBe(hexOf(signature));
        expect(hexOf(browser.userSign(browserKey, message))).toBe(
          hexOf(node.userSign(nodeKey, message)),
        );

        const nodePublic = node.importServerKey(node.exportSpki(nodeKey));
        const browserPublic = browser.importServerKey(browser.exportSpki(browserKey));
        expect(browser.ed25519Verify(browserPublic, message, signature)).toBe(true);
        expect(
          node.ed25519Verify(nodePublic, message, browser.ed25519Sign(browserKey, message)),
        ).toBe(true);
        expect(browser.userVerify(browserPublic, message, signature)).toBe(true);

        const forged = Buffer.from(signature);
        forged[at % 64]! ^= 1 << (at % 8);
        const otherMessage = Buffer.concat([message, Buffer.of(at & 0xff)]);
        for (const [m, s] of [
          [message, forged],
          [otherMessage, signature],
          [message, signature.subarray(0, 63)],
        ] as const) {
          expect(browser.ed25519Verify(browserPublic, m, s)).toBe(false);
          expect(node.ed25519Verify(nodePublic, m, s)).toBe(false);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('a private handle shows no secret', () => {
    const seed = hex(vectors.keys.user_ed25519_seed_hex);
    const key = browser.ed25519PrivateKeyFromSeed(seed);
    expect(JSON.stringify(key)).toBe('{"type":"private","asymmetricKeyType":"ed25519"}');
    expect(Object.isFrozen(key)).toBe(true);
    // A look-alike not made by browser-crypto is refused, not trusted.
    expect(() => browser.userSign({ ...key }, Buffer.of(1))).toThrow(TypeError);
  });
});

// ------------------------------------------------------------ SPKI import

/** A minimal DER writer, to build SPKIs node would never export. */
const der = {
  /** Minimal, or (nonMinimal) one byte longer than it needs to be: BER, not DER. */
  length(n: number, nonMinimal = false): Buffer {
    if (n < 0x80 && !nonMinimal) return Buffer.of(n);
    const minimal = Buffer.from(n.toString(16).padStart(n > 0xff ? 4 : 2, '0'), 'hex');
    const body = nonMinimal && n >= 0x80 ? Buffer.concat([Buffer.of(0), minimal]) : minimal;
    return Buffer.concat([Buffer.of(0x80 | body.length), body]);
  },
  tlv(tag: number, contents: Buffer, nonMinimal = false): Buffer {
    return Buffer.concat([Buffer.of(tag), der.length(contents.length, nonMinimal), contents]);
  },
  int(magnitude: Buffer, padded = false): Buffer {
    const needsZero = (magnitude[0]! & 0x80) !== 0 || padded;
    return der.tlv(0x02, needsZero ? Buffer.concat([Buffer.of(0), magnitude]) : magnitude);
  },
};
const RSA_ALGORITHM = hex('300d06092a864886f70d0101010500');

function buildRsaSpki(
  n: Buffer,
  e: Buffer,
  options: { padE?: boolean; longOuter?: boolean; algorithm?: Buffer } = {},
) {
  const key = der.tlv(0x30, Buffer.concat([der.int(n), der.int(e, options.padE)]));
  const bitString = der.tlv(0x03, Buffer.concat([Buffer.of(0), key]));
  const algorithm = options.algorithm ?? RSA_ALGORITHM;
  return der.tlv(0x30, Buffer.concat([algorithm, bitString]), options.longOuter);
}

const HASH_OID = { sha256: '608648016503040201', sha512: '608648016503040203' } as const;

/** id-RSASSA-PSS with RSASSA-PSS-params (RFC 8017 §A.2.3), as OpenSSL writes them. */
function pssAlgorithm(params?: { hash: keyof typeof HASH_OID; salt: number }): Buffer {
  const oid = der.tlv(0x06, hex('2a864886f70d01010a'));
  if (params === undefined) return der.tlv(0x30, oid);
  const hashId = der.tlv(
    0x30,
    Buffer.concat([der.tlv(0x06, hex(HASH_OID[params.hash])), hex('0500')]),
  );
  const mgf = der.tlv(0x30, Buffer.concat([der.tlv(0x06, hex('2a864886f70d010108')), hashId]));
  const fields = Buffer.concat([
    der.tlv(0xa0, hashId),
    der.tlv(0xa1, mgf),
    der.tlv(0xa2, der.int(Buffer.of(params.salt))),
  ]);
  return der.tlv(0x30, Buffer.concat([oid, der.tlv(0x30, fields)]));
}

function rsaNumbers(key: KeyObject) {
  const jwk = key.export({ format: 'jwk' });
  return { n: Buffer.from(jwk.n!, 'base64url'), e: Buffer.from(jwk.e!, 'base64url') };
}

// RSA key generation is slow: a small pool, made once.
const rsaPool = [2048, 2048, 3072].map(
  (modulusLength) => generateKeyPairSync('rsa', { modulusLength }).publicKey,
);
/** RSA-PSS public keys as node generates them, parameters or not. */
function pssKey(params: { hashAlgorithm?: string; mgf1HashAlgorithm?: string; salt?: number }) {
  const { salt, ...hashes } = params;
  return generateKeyPairSync('rsa-pss', {
    modulusLength: 2048,
    ...hashes,
    // @types/node types saltLength as a string; node wants the number of bytes.
    ...(salt === undefined ? {} : { saltLength: salt as unknown as string }),
  }).publicKey;
}
const pssPool = [
  pssKey({}),
  pssKey({ hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256', salt: 32 }),
  pssKey({ hashAlgorithm: 'sha256', mgf1HashAlgorithm: 'sha256', salt: 64 }),
  pssKey({ hashAlgorithm: 'sha512', salt: 32 }),
];
const weakRsa = [
  generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
  generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey,
];

describe('Ed25519: a signature whose R carries a small-order part', () => {
  // R = [r]B + T with T of order 8, S = r + k·a: the cofactored equation holds, the exact one
  // does not. OpenSSL refuses it; so must the browser, or a message would show as signed in a
  // browser and unsigned everywhere else.
  const { Point } = ed25519;
  const order = Point.Fn.ORDER;
  const le = (bytes: Uint8Array) =>
    BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`);
  const toLe = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();
  const torsion = Point.fromBytes(
    Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'),
  );

  it('is refused by both implementations, while the honest signature passes both', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ maxLength: 100 }),
        (seed, nonce, message) => {
          const { scalar, pointBytes } = ed25519.utils.getExtendedPublicKey(seed);
          const r = (le(nonce) % (order - 1n)) + 1n;
          const R = Point.BASE.multiply(r).add(torsion).toBytes();
          const k = le(sha512(Buffer.concat([R, pointBytes, message]))) % order;
          const forged = Buffer.concat([R, toLe((r + k * scalar) % order)]);
          const privateKey = browser.ed25519PrivateKeyFromSeed(seed);
          const spki = browser.exportSpki(browser.publicKeyOf(privateKey));
          const browserKey = browser.importUserPublicKey(spki);
          const nodeKey = node.importUserPublicKey(spki);
          expect(browser.userVerify(browserKey, message, forged)).toBe(false);
          expect(node.userVerify(nodeKey, message, forged)).toBe(false);
          expect(browser.ed25519Verify(browserKey, message, forged)).toBe(false);
          const honest = browser.userSign(privateKey, message);
          expect(browser.userVerify(browserKey, message, honest)).toBe(true);
          expect(node.userVerify(nodeKey, message, honest)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('user and server key import: both accept and refuse the same SPKIs', () => {
  it('random RSA, RSA-PSS and Ed25519 keys from node:crypto import alike', () => {
    const keyArb = fc.oneof(
      fc.constantFrom(...rsaPool, ...pssPool),
      fc.constant(null).map(() => generateKeyPairSync('ed25519').publicKey),
    );
    fc.assert(
      fc.property(keyArb, (key) => {
        const spki = spkiOf(key);
        const both = importBoth(spki);
        expect(both.browser).toEqual(both.node);
        expect(both.node).toEqual({ accepted: key.asymmetricKeyType, spki: hexOf(spki) });
        expect(browser.fingerprint(spki)).toBe(node.fingerprint(spki));
        if (key.asymmetricKeyType !== 'ed25519') {
          const details = browser.importUserPublicKey(spki).asymmetricKeyDetails;
          expect(details).toEqual({
            modulusLength: key.asymmetricKeyDetails!.modulusLength,
            publicExponent: key.asymmetricKeyDetails!.publicExponent,
          });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('refuses non-canonical DER, trailing bytes, small RSA, bad exponents and weak Ed25519', () => {
    const { n, e } = rsaNumbers(rsaPool[0]!);
    const good = buildRsaSpki(n, e);
    expect(good.equals(spkiOf(rsaPool[0]!))).toBe(true); // the builder writes what node writes
    const ed = spkiOf(generateKeyPairSync('ed25519').publicKey);
    const edWith = (point: string) => Buffer.concat([ed.subarray(0, 12), hex(point)]);
    const bad: [string, Buffer][] = [
      ['trailing byte after RSA', Buffer.concat([good, Buffer.of(0)])],
      ['trailing byte after Ed25519', Buffer.concat([ed, Buffer.of(0)])],
      ['length with a leading zero byte', buildRsaSpki(n, e, { longOuter: true })],
      [
        'long-form length where short fits',
        Buffer.concat([hex('3082012330810d'), good.subarray(6)]),
      ],
      ['INTEGER with a needless leading zero', buildRsaSpki(n, e, { padE: true })],
      ['RSA-1024', spkiOf(weakRsa[0]!)],
      ['e = 3', spkiOf(weakRsa[1]!)],
      ['even e', buildRsaSpki(n, Buffer.of(0x01, 0x00, 0x02))],
      ['e = 2^32 + 1', buildRsaSpki(n, Buffer.of(1, 0, 0, 0, 1))],
      [
        'rsaEncryption without NULL',
        Buffer.concat([hex('30820120300b06092a864886f70d010101'), good.subarray(4 + 15)]),
      ],
      ['Ed25519 identity point', edWith('01'.padEnd(64, '0'))],
      [
        'Ed25519 order-8 point',
        edWith('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
      ],
      [
        'Ed25519 y = p (non-canonical)',
        edWith('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
      ],
      ['X25519 key', spkiOf(generateKeyPairSync('x25519').publicKey)],
      ['P-256 key', spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)],
      ['empty', Buffer.alloc(0)],
      ['not DER', Buffer.from('not a key')],
    ];
    for (const [what, spki] of bad) {
      expect([what, importBoth(spki)]).toEqual([
        what,
        { node: { refused: 'bad_request' }, browser: { refused: 'bad_request' } },
      ]);
    }
    // The server key is Ed25519 or nothing (PROTOCOL.md §3 step 2): bad_frame.
    for (const spki of [good, ed.subarray(0, 40)]) {
      expect(importBoth(spki, 'server')).toEqual({
        node: { refused: 'bad_frame' },
        browser: { refused: 'bad_frame' },
      });
    }
  });

  it('any one-byte change to a valid SPKI: the same verdict from both', () => {
    const keys = [...rsaPool.slice(0, 1), pssPool[1]!, generateKeyPairSync('ed25519').publicKey];
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (key, at, xor) => {
          const spki = spkiOf(key);
          // Mostly in the structure (the first 40 bytes), sometimes in the key itself.
          const index = at % 3 === 0 ? at % spki.length : at % Math.min(40, spki.length);
          spki[index]! ^= xor;
          const both = importBoth(spki);
          expect(both.browser).toEqual(both.node);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ------------------------------------------------------------ RSA-PSS (PROTOCOL.md §1, §9)

describe('RSA-PSS user signatures', () => {
  const hs = vectors.handshake;
  const ms = vectors.message_signature;
  const fields = { from: ms.from, to: ms.to, id: ms.id, ts: ms.ts, body: ms.body };
  const rsaSpki = b64(vectors.keys.user_rsa_spki);
  const samples: [string, Buffer, Buffer][] = [
    [
      'client_auth_signature_rsa_pss_sample',
      b64(hs.client_auth_signed_bytes),
      b64(hs.client_auth_signature_rsa_pss_sample),
    ],
    ['sig_rsa_pss_sample', messageSignedBytes(fields), b64(ms.sig_rsa_pss_sample)],
  ];

  it.each(samples)(
    '%s verifies through userVerifyAsync of both, and fails tampered',
    async (_, data, signature) => {
      const keys = [
        node.importUserPublicKey(rsaSpki),
        browser.importUserPublicKey(rsaSpki),
      ] as const;
      expect(await node.userVerifyAsync(keys[0], data, signature)).toBe(true);
      expect(await browser.userVerifyAsync(keys[1], data, signature)).toBe(true);
      const flipped = Buffer.from(signature);
      flipped[100]! ^= 1;
      const otherData = Buffer.concat([data, Buffer.of(0)]);
      for (const [d, s] of [
        [data, flipped],
        [otherData, signature],
        [data, Buffer.alloc(0)],
      ] as const) {
        expect(await node.userVerifyAsync(keys[0], d, s)).toBe(false);
        expect(await browser.userVerifyAsync(keys[1], d, s)).toBe(false);
      }
    },
  );

  it('never PKCS#1 v1.5 and never another salt, in either', async () => {
    const data = Buffer.from('never v1.5');
    const keys = [node.importUserPublicKey(rsaSpki), browser.importUserPublicKey(rsaSpki)] as const;
    const withSalt = (saltLength: number) =>
      nodeSign('sha256', data, {
        key: userRsaKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength,
      });
    const pkcs1 = nodeSign('sha256', data, userRsaKey);
    for (const signature of [pkcs1, withSalt(20), withSalt(222)]) {
      expect(await node.userVerifyAsync(keys[0], data, signature)).toBe(false);
      expect(await browser.userVerifyAsync(keys[1], data, signature)).toBe(false);
    }
    expect(await browser.userVerifyAsync(keys[1], data, withSalt(32))).toBe(true);
  });

  it('RSA-PSS keys whose parameters node will not verify under, browser-crypto will not either', async () => {
    const data = Buffer.from('pss params');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { n, e } = rsaNumbers(publicKey);
    const signature = nodeSign('sha256', data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    const cases = [
      undefined,
      { hash: 'sha256', salt: 32 },
      { hash: 'sha256', salt: 16 },
      { hash: 'sha256', salt: 64 },
      { hash: 'sha512', salt: 32 },
    ] as const;
    const verdicts: boolean[] = [];
    for (const params of cases) {
      const spki = buildRsaSpki(n, e, { algorithm: pssAlgorithm(params) });
      const both = importBoth(spki);
      expect(both.browser).toEqual(both.node);
      expect(both.node).toMatchObject({ accepted: 'rsa-pss' });
      const expected = node.userVerify(node.importUserPublicKey(spki), data, signature);
      expect(
        await browser.userVerifyAsync(browser.importUserPublicKey(spki), data, signature),
      ).toBe(expected);
      verdicts.push(expected);
    }
    // Both kinds (a salt of at least 32 is allowed, a key that demands more or SHA-512 is not):
    // not a comparison of nothing but "false"s.
    expect(verdicts).toEqual([true, true, true, false, false]);
    // DER leaves DEFAULT values out (X.690 §11.5): an explicit salt of 20 is not canonical.
    expect(
      importBoth(buildRsaSpki(n, e, { algorithm: pssAlgorithm({ hash: 'sha256', salt: 20 }) })),
    ).toEqual({
      node: { refused: 'bad_request' },
      browser: { refused: 'bad_request' },
    });
  });

  it('userSignAsync with a WebCrypto key verifies with node userVerify; sync RSA refuses', async () => {
    const { subtle } = globalThis.crypto;
    const algorithm = { name: 'RSA-PSS', hash: 'SHA-256' };
    const privateKey = await browser.userKeyFromCryptoKeyPair({
      privateKey: await subtle.importKey(
        'pkcs8',
        userRsaKey.export({ format: 'der', type: 'pkcs8' }),
        algorithm,
        false,
        ['sign'],
      ),
      publicKey: await subtle.importKey('spki', rsaSpki, algorithm, true, ['verify']),
    });
    expect(privateKey).toMatchObject({ type: 'private', asymmetricKeyType: 'rsa' });
    expect(browser.exportSpki(privateKey).equals(rsaSpki)).toBe(true);
    const data = Buffer.from(hs.client_auth_signed_bytes, 'base64');
    const signature = await browser.userSignAsync(privateKey, data);
    expect(Buffer.isBuffer(signature)).toBe(true);
    const nodePublic = createPublicKey(userRsaKey);
    expect(node.userVerify(nodePublic, data, signature)).toBe(true);
    expect(node.userVerify(nodePublic, Buffer.concat([data, Buffer.of(0)]), signature)).toBe(false);

    const browserPublic = browser.publicKeyOf(privateKey);
    for (const refused of [
      () => browser.userSign(privateKey, data),
      () => browser.userVerify(browserPublic, data, signature),
    ]) {
      expect(refused).toThrow(ProtocolError);
      expect(refused).toThrow(expect.objectContaining({ code: 'internal' }));
    }
  });
});
