/**
 * A strict DER reader (X.690): definite, minimally encoded lengths, minimal non-negative
 * INTEGERs, single-byte tags, and nothing left over where a structure ends. Every violation
 * throws DerError. The browser implementation reads RSA SubjectPublicKeyInfo with it
 * (crypto/browser-crypto.ts, PROTOCOL.md §1), the web client the CLI's encrypted key file.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

export const DER_TAG = {
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  sequence: 0x30,
} as const;

/** A reader over `bytes`; `maxLengthBytes` bounds the long form of a length (1 to 4 bytes). */
export class DerReader {
  #offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly maxLengthBytes = 4,
  ) {
    if (!Number.isInteger(maxLengthBytes) || maxLengthBytes < 1 || maxLengthBytes > 4) {
      throw new RangeError('DerReader: maxLengthBytes must be 1 to 4');
    }
  }

  get done(): boolean {
    return this.#offset === this.bytes.length;
  }

  /** The next element's tag, without reading it; undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.bytes[this.#offset];
  }

  /** The contents of the next element, which must carry `tag`. */
  read(tag: number): Uint8Array {
    const actual = this.#byte();
    if (actual !== tag) {
      throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${actual.toString(16)}`);
    }
    const first = this.#byte();
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      // 0x80 (indefinite) is BER.
      if (count === 0 || count > this.maxLengthBytes) throw new DerError('bad length');
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + this.#byte();
      // Minimal: the long form only from 128, and no leading zero byte.
      if (length < 0x80 || length < 256 ** (count - 1)) {
        throw new DerError('length not minimally encoded');
      }
    }
    if (this.#offset + length > this.bytes.length) throw new DerError('truncated');
    const contents = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return contents;
  }

  /** A reader over the contents of the next element (a SEQUENCE, a tagged wrapper…). */
  enter(tag: number): DerReader {
    return new DerReader(this.read(tag), this.maxLengthBytes);
  }

  /** A non-negative INTEGER in minimal form (X.690 §8.3.2), as its magnitude bytes. */
  readUnsigned(): Uint8Array {
    const contents = this.read(DER_TAG.integer);
    if (contents.length === 0) throw new DerError('empty INTEGER');
    if (contents[0]! & 0x80) throw new DerError('negative INTEGER');
    if (contents.length > 1 && contents[0] === 0 && !(contents[1]! & 0x80)) {
      throw new DerError('INTEGER not minimal');
    }
    return contents[0] === 0 && contents.length > 1 ? contents.subarray(1) : contents;
  }

  /**
   * An OBJECT IDENTIFIER as the lowercase hex of its contents: compared with known ones, never
   * decoded (a malformed one matches none).
   */
  readOid(): string {
    return Buffer.from(this.read(DER_TAG.oid)).toString('hex');
  }

  /** Fails unless everything was read. */
  finish(): void {
    if (!this.done) throw new DerError('trailing bytes');
  }

  #byte(): number {
    if (this.#offset >= this.bytes.length) throw new DerError('truncated');
    return this.bytes[this.#offset++]!;
  }
}
