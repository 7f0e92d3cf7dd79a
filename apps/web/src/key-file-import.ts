/**
 * Imports the CLI's key file (apps/cli key-files.ts): passphrase-encrypted PKCS#8 PEM, PBES2 with
 * PBKDF2-HMAC-SHA256 (or the PKCS#5 default, HMAC-SHA1) and AES-CBC — what node writes for
 * `export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })`. The file is
 * parsed with a strict DER reader, decrypted with WebCrypto, and the key imported as a
 * non-extractable RSA-PSS (SHA-256) or Ed25519 CryptoKey; its public half is derived on the way.
 */
import { DER_TAG, DerError, DerReader } from '@securechat/protocol';

/** The OIDs' DER contents, in hex (DerReader.readOid): the dotted form in each comment. */
const OID = {
  pbes2: '2a864886f70d01050d', // 1.2.840.113549.1.5.13
  pbkdf2: '2a864886f70d01050c', // 1.2.840.113549.1.5.12
  hmacWithSha1: '2a864886f70d0207', // 1.2.840.113549.2.7
  hmacWithSha256: '2a864886f70d0209', // 1.2.840.113549.2.9
  aes128Cbc: '608648016503040102', // 2.16.840.1.101.3.4.1.2
  aes256Cbc: '60864801650304012a', // 2.16.840.1.101.3.4.1.42
  rsaEncryption: '2a864886f70d010101', // 1.2.840.113549.1.1.1
  ed25519: '2b6570', // 1.3.101.112
} as const;

/** A non-negative INTEGER that fits a JavaScript number exactly (iteration counts, lengths). */
function smallInteger(reader: DerReader): number {
  const magnitude = reader.readUnsigned();
  if (magnitude.length > 6) throw new DerError('integer out of range');
  return magnitude.reduce((n, b) => n * 256 + b, 0);
}

/** A key file this page cannot use, or a wrong passphrase: the message says which. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

const PEM =
  /^-----BEGIN ENCRYPTED PRIVATE KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END ENCRYPTED PRIVATE KEY-----\r?\n?$/;

function pemBody(text: string): Uint8Array {
  const match = PEM.exec(text.trim() + '\n');
  if (match === null) {
    throw new KeyFileError(
      'not an encrypted private key file (expected "BEGIN ENCRYPTED PRIVATE KEY")',
    );
  }
  const binary = atob(match[1]!.replace(/\s+/g, ''));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

interface Pbes2 {
  readonly salt: Uint8Array<ArrayBuffer>;
  readonly iterations: number;
  readonly hash: 'SHA-1' | 'SHA-256';
  readonly keyBits: 128 | 256;
  readonly iv: Uint8Array<ArrayBuffer>;
  readonly data: Uint8Array<ArrayBuffer>;
}

/** RFC 5958 EncryptedPrivateKeyInfo with RFC 8018 PBES2 parameters. */
export function parseEncryptedPrivateKeyInfo(der: Uint8Array): Pbes2 {
  const top = new DerReader(der);
  const info = top.enter(DER_TAG.sequence);
  top.finish();
  const algorithm = info.enter(DER_TAG.sequence);
  if (algorithm.readOid() !== OID.pbes2) throw new KeyFileError('not PBES2-encrypted');
  const params = algorithm.enter(DER_TAG.sequence);
  algorithm.finish();

  const kdf = params.enter(DER_TAG.sequence);
  if (kdf.readOid() !== OID.pbkdf2) throw new KeyFileError('not PBKDF2');
  const kdfParams = kdf.enter(DER_TAG.sequence);
  kdf.finish();
  const salt = kdfParams.read(DER_TAG.octetString);
  const iterations = smallInteger(kdfParams);
  let declaredKeyLength: number | undefined;
  if (kdfParams.peekTag() === DER_TAG.integer) declaredKeyLength = smallInteger(kdfParams);
  let hash: Pbes2['hash'] = 'SHA-1';
  if (!kdfParams.done) {
    const prf = kdfParams.enter(DER_TAG.sequence);
    const prfOid = prf.readOid();
    if (prf.peekTag() === DER_TAG.null && prf.read(DER_TAG.null).length !== 0) {
      throw new DerError('NULL with contents');
    }
    prf.finish();
    if (prfOid === OID.hmacWithSha256) hash = 'SHA-256';
    else if (prfOid !== OID.hmacWithSha1) throw new KeyFileError('unsupported PBKDF2 hash');
  }
  kdfParams.finish();

  const cipher = params.enter(DER_TAG.sequence);
  const cipherOid = cipher.readOid();
  const iv = cipher.read(DER_TAG.octetString);
  cipher.finish();
  params.finish();
  const keyBits = cipherOid === OID.aes256Cbc ? 256 : cipherOid === OID.aes128Cbc ? 128 : undefined;
  if (keyBits === undefined) throw new KeyFileError('unsupported cipher (AES-CBC expected)');
  if (iv.length !== 16) throw new KeyFileError('bad AES-CBC IV');
  if (declaredKeyLength !== undefined && declaredKeyLength * 8 !== keyBits) {
    throw new KeyFileError('PBKDF2 key length does not match the cipher');
  }
  if (iterations < 1 || iterations > 10_000_000) throw new KeyFileError('bad iteration count');
  const data = info.read(DER_TAG.octetString);
  info.finish();
  // Copies: WebCrypto takes buffers of their own.
  return {
    salt: new Uint8Array(salt),
    iterations,
    hash,
    keyBits,
    iv: new Uint8Array(iv),
    data: new Uint8Array(data),
  };
}

/** The algorithm of a PKCS#8 PrivateKeyInfo, for WebCrypto's importKey. */
function keyAlgorithm(pkcs8: Uint8Array): RsaHashedImportParams | { name: 'Ed25519' } {
  const info = new DerReader(pkcs8).enter(DER_TAG.sequence);
  smallInteger(info);
  const oid = info.enter(DER_TAG.sequence).readOid();
  if (oid === OID.rsaEncryption) return { name: 'RSA-PSS', hash: 'SHA-256' };
  if (oid === OID.ed25519) return { name: 'Ed25519' };
  throw new KeyFileError('the key is neither RSA nor Ed25519');
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'] as const;

export async function importKeyFile(
  pem: string,
  passphrase: string,
): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  let parsed: Pbes2;
  try {
    parsed = parseEncryptedPrivateKeyInfo(pemBody(pem));
  } catch (error) {
    if (error instanceof DerError) throw new KeyFileError(`malformed key file: ${error.message}`);
    throw error;
  }
  const subtle = crypto.subtle;
  const base = await subtle.importKey(
    'raw',
    new TextEncoder().encode(passphrase),
    'PBKDF2',
    false,
    ['deriveKey'],
  );
  const aes = await subtle.deriveKey(
    { name: 'PBKDF2', salt: parsed.salt, iterations: parsed.iterations, hash: parsed.hash },
    base,
    { name: 'AES-CBC', length: parsed.keyBits },
    false,
    ['decrypt'],
  );
  let pkcs8: Uint8Array<ArrayBuffer>;
  let algorithm: ReturnType<typeof keyAlgorithm>;
  let transient: CryptoKey;
  try {
    pkcs8 = new Uint8Array(
      await subtle.decrypt({ name: 'AES-CBC', iv: parsed.iv }, aes, parsed.data),
    );
    algorithm = keyAlgorithm(pkcs8);
    // Extractable for one moment, to read the public half (JWK without the private members).
    transient = await subtle.importKey('pkcs8', pkcs8, algorithm, true, ['sign']);
  } catch (error) {
    if (error instanceof KeyFileError) throw error;
    throw new KeyFileError('wrong passphrase, or a damaged key file');
  }
  const jwk = await subtle.exportKey('jwk', transient);
  for (const member of PRIVATE_JWK_MEMBERS) delete jwk[member];
  jwk.key_ops = ['verify'];
  const publicKey = await subtle.importKey('jwk', jwk, algorithm, true, ['verify']);
  const privateKey = await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
  pkcs8.fill(0);
  return { privateKey, publicKey };
}
