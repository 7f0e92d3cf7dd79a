/**
 * Runs in Chromium (bench/crypto-choice/crypto-choice.ts): the primitives of one securechat/1
 * handshake and record, once on @noble (synchronous, what libs/protocol's browser-crypto.ts
 * uses) and once on WebCrypto (asynchronous), timed with performance.now().
 */
import { type webcrypto } from 'node:crypto';

import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** The DOM's WebCrypto as far as used here (the project's types are Node's). */
const subtle = (globalThis as unknown as { crypto: { subtle: SubtleCrypto } }).crypto.subtle;
type SubtleCrypto = typeof webcrypto.subtle;
type CryptoKeyPair = { privateKey: unknown; publicKey: unknown };
const now = () => (globalThis as unknown as { performance: { now(): number } }).performance.now();
const random = (n: number) =>
  (
    globalThis as unknown as { crypto: { getRandomValues(a: Uint8Array): Uint8Array } }
  ).crypto.getRandomValues(new Uint8Array(n));

export interface Timing {
  readonly name: string;
  readonly library: 'noble' | 'webcrypto';
  /** Operations per second, over about `ms` of repetitions. */
  readonly opsPerSecond: number;
}

async function time(
  name: string,
  library: Timing['library'],
  ms: number,
  op: () => unknown,
): Promise<Timing> {
  for (let i = 0; i < 20; i++) await op(); // warm-up: JIT and WebCrypto's first-use costs
  let count = 0;
  const start = now();
  while (now() - start < ms) {
    await op();
    count++;
  }
  return { name, library, opsPerSecond: (count * 1000) / (now() - start) };
}

export async function run(ms: number): Promise<Timing[]> {
  const record = random(1024);
  const key = random(16);
  const nonce = random(12);
  const message = random(64);
  const nobleEd = ed25519.keygen();
  const nobleSig = ed25519.sign(message, nobleEd.secretKey);
  const peer = x25519.keygen();

  const webEd = (await subtle.generateKey({ name: 'Ed25519' }, false, [
    'sign',
    'verify',
  ])) as unknown as CryptoKeyPair;
  const webSig = await subtle.sign({ name: 'Ed25519' }, webEd.privateKey as never, message);
  const webPeer = (await subtle.generateKey({ name: 'X25519' }, false, [
    'deriveBits',
  ])) as unknown as CryptoKeyPair;
  const webAes = await subtle.importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt']);

  const results: Timing[] = [];
  const both = async (
    name: string,
    noble: () => unknown,
    web: () => Promise<unknown>,
  ): Promise<void> => {
    results.push(await time(name, 'noble', ms, noble));
    results.push(await time(name, 'webcrypto', ms, web));
  };
  await both(
    'X25519 key pair + agreement',
    () => x25519.getSharedSecret(x25519.keygen().secretKey, peer.publicKey),
    async () => {
      const mine = (await subtle.generateKey({ name: 'X25519' }, false, [
        'deriveBits',
      ])) as unknown as CryptoKeyPair;
      return subtle.deriveBits(
        { name: 'X25519', public: webPeer.publicKey } as never,
        mine.privateKey as never,
        256,
      );
    },
  );
  await both(
    'Ed25519 sign (64 B)',
    () => ed25519.sign(message, nobleEd.secretKey),
    () => subtle.sign({ name: 'Ed25519' }, webEd.privateKey as never, message),
  );
  await both(
    'Ed25519 verify (64 B)',
    () => ed25519.verify(nobleSig, message, nobleEd.publicKey),
    () => subtle.verify({ name: 'Ed25519' }, webEd.publicKey as never, webSig, message),
  );
  await both(
    'AES-128-GCM seal (1 KiB record)',
    () => gcm(key, nonce).encrypt(record),
    () => subtle.encrypt({ name: 'AES-GCM', iv: nonce }, webAes, record),
  );
  await both(
    'SHA-256 (1 KiB)',
    () => sha256(record),
    () => subtle.digest('SHA-256', record),
  );
  return results;
}

(globalThis as unknown as { securechatPage: unknown }).securechatPage = { run };
