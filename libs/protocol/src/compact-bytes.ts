/**
 * How a session keeps small byte strings that live as long as it does. A server holds one
 * session per connected user, most of them idle for hours, so what each one keeps is what a
 * gateway's memory is made of (docs/BENCHMARKS.md, idle sessions). Two costs matter:
 *
 * - A small Buffer from `Buffer.from`, `Buffer.concat`, `allocUnsafe` or a string is a slice of
 *   node's shared 8 KiB allocation pool. Kept for long, it keeps its whole slab alive, however
 *   much of the slab is garbage: the few such slices a session kept pinned ~4.5 KiB of slabs
 *   per idle session.
 * - A Buffer of its own is a view, an ArrayBuffer and a native backing store: ~300 bytes
 *   for 32 bytes of data.
 *
 * Not exported from the package: only the session classes use it.
 */

/**
 * The concatenation of `parts` in memory of its own (never a pool slice), for key material:
 * secrets stay in Buffers, never in strings, which heap snapshots show in clear.
 */
export function ownedCopy(...parts: Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const copy = Buffer.allocUnsafeSlow(length);
  let offset = 0;
  for (const part of parts) {
    copy.set(part, offset);
    offset += part.length;
  }
  return copy;
}

/**
 * Public bytes (hashes: H2, the transcript chain heads) as a one-byte string, one character per
 * byte: 32 bytes cost a 48-byte heap string instead of a Buffer's ~300. Never for secrets.
 */
export function packBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of `packBytes`, as a new Buffer. */
export function unpackBytes(packed: string): Buffer {
  return Buffer.from(packed, 'latin1');
}
