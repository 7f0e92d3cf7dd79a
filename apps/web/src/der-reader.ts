/**
 * A strict DER reader (X.690), just enough for the CLI's key file: definite, minimally encoded
 * lengths; no trailing bytes where a structure ends; single-byte tags only. Anything else throws.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
} as const;

export class DerReader {
  #offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.#offset === this.bytes.length;
  }

  /** The next element's tag, without reading it; undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.bytes[this.#offset];
  }

  /** Reads one element of tag `tag`; returns its contents. */
  read(tag: number): Uint8Array {
    const actual = this.#byte();
    if (actual !== tag) {
      throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${actual.toString(16)}`);
    }
    const first = this.#byte();
    let length = first;
    if (first & 0x80) {
      const count = first & 0x7f;
      if (count === 0 || count > 4) throw new DerError('unsupported length encoding');
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + this.#byte();
      if (length < 0x80 || length < 256 ** (count - 1)) {
        throw new DerError('length not minimally encoded');
      }
    }
    if (this.#offset + length > this.bytes.length) throw new DerError('truncated element');
    const value = this.bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  /** A SEQUENCE's contents as a reader of their own. */
  sequence(): DerReader {
    return new DerReader(this.read(TAG.SEQUENCE));
  }

  /** An OBJECT IDENTIFIER in dotted form. */
  oid(): string {
    const bytes = this.read(TAG.OID);
    if (bytes.length === 0) throw new DerError('empty OID');
    const parts: number[] = [];
    let value = 0;
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      if (value === 0 && byte === 0x80) throw new DerError('OID not minimally encoded');
      value = value * 128 + (byte & 0x7f);
      if (!(byte & 0x80)) {
        parts.push(value);
        value = 0;
      } else if (i === bytes.length - 1) {
        throw new DerError('truncated OID');
      }
    }
    const first = parts.shift()!;
    const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
    return [...head, ...parts].join('.');
  }

  /** A non-negative INTEGER that fits a JavaScript number. */
  smallInteger(): number {
    const bytes = this.read(TAG.INTEGER);
    if (bytes.length === 0 || bytes.length > 6) throw new DerError('integer out of range');
    if (bytes[0]! & 0x80) throw new DerError('negative integer');
    if (bytes.length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) {
      throw new DerError('integer not minimally encoded');
    }
    return bytes.reduce((n, b) => n * 256 + b, 0);
  }

  octetString(): Uint8Array {
    return this.read(TAG.OCTET_STRING);
  }

  /** Fails unless everything was read. */
  end(): void {
    if (!this.done) throw new DerError('unexpected trailing data');
  }

  #byte(): number {
    if (this.#offset >= this.bytes.length) throw new DerError('truncated');
    return this.bytes[this.#offset++]!;
  }
}
