/**
 * The key a client's source address is counted under, wherever SecureChat limits per address:
 * login throttling (docs/PROTOCOL.md §4.5) and the gateway's handshake admission.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/** The one spelling of an IPv4-mapped IPv6 address that Node gives a dual-stack socket. */
const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * IPv4 addresses (IPv4-mapped IPv6 included) are keyed as themselves; IPv6 addresses by their
 * /64, because one subscriber usually holds a whole /64 and could otherwise rotate through
 * 2^64 addresses to escape the per-address limit. Anything else the gateway might pass (a
 * Unix socket path, say) is hashed.
 *
 * The output is stored by login throttling, so it must not change for any input.
 */
export function addressKey(address: string): string {
  const ipv4 = asIPv4(address);
  if (ipv4 !== undefined) return ipv4;
  if (isIPv6(address)) return formatPrefix(ipv6Groups(address), 64);
  return `other:${createHash('sha256').update(address, 'utf8').digest('hex')}`;
}

/**
 * The key of the IPv6 prefix of length `bits` that holds `address`, e.g.
 * `ipv6PrefixKey('2001:db8:1:2ab::5', 56)` is `'2001:db8:1:200::/56'`; `undefined` for what
 * {@link addressKey} keys as IPv4 (IPv4-mapped IPv6 included) and for anything that is not an
 * IP address. Wider groupings than the /64 catch a subscriber who was delegated a /56 or /48
 * and spreads over its 256 or 65536 /64s. With `bits` 64 the key equals `addressKey`'s.
 */
export function ipv6PrefixKey(address: string, bits: number): string | undefined {
  if (typeof address !== 'string') throw new TypeError('address must be a string');
  if (!Number.isInteger(bits) || bits < 0 || bits > 128) {
    throw new RangeError(`prefix length must be an integer from 0 to 128, not ${bits}`);
  }
  if (asIPv4(address) !== undefined || !isIPv6(address)) return undefined;
  return formatPrefix(ipv6Groups(address), bits);
}

function asIPv4(address: string): string | undefined {
  const mapped = MAPPED_IPV4.exec(address)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  return isIPv4(address) ? address : undefined;
}

/**
 * The prefix's groups in lowercase hex without leading zeros, host bits cleared, then `::`
 * (unless all eight are shown) and the length. Zero groups inside the prefix are written out,
 * never compressed: that is the form login throttling has always stored for /64.
 */
function formatPrefix(groups: readonly number[], bits: number): string {
  const shown = Math.ceil(bits / 16);
  let key = '';
  for (let i = 0; i < shown; i++) {
    const kept = Math.min(16, bits - 16 * i);
    const mask = (0xffff << (16 - kept)) & 0xffff;
    key += `${i === 0 ? '' : ':'}${((groups[i] ?? 0) & mask).toString(16)}`;
  }
  return `${key}${shown === 8 ? '' : '::'}/${bits}`;
}

/**
 * The eight 16-bit groups of an address that `isIPv6` accepted (zone id ignored). Runs on
 * every accept, three times (/64, /56, /48), hence plain loops.
 */
function ipv6Groups(address: string): number[] {
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  const gap = bare.indexOf('::');
  if (gap === -1) return hexGroups(bare);
  const groups = hexGroups(bare.slice(0, gap));
  const tail = hexGroups(bare.slice(gap + 2));
  for (let i = groups.length + tail.length; i < 8; i++) groups.push(0);
  groups.push(...tail);
  return groups;
}

function hexGroups(part: string): number[] {
  const groups: number[] = [];
  if (part === '') return groups;
  for (const word of part.split(':')) {
    if (word.includes('.')) {
      // A dotted IPv4 tail (only ever last) stands for the final two groups.
      const [a = 0, b = 0, c = 0, d = 0] = word.split('.').map(Number);
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(word, 16));
    }
  }
  return groups;
}
