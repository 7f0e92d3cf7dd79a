/**
 * The key a client's source address is counted under, wherever SecureChat limits per address:
 * login throttling (docs/PROTOCOL.md §4.5) and the gateway's handshake caps.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * IPv4 addresses (IPv4-mapped IPv6 included) are keyed as themselves; IPv6 addresses by their
 * /64, because one subscriber usually holds a whole /64 and could otherwise rotate through
 * 2^64 addresses to escape the per-address limit. Anything else the gateway might pass (a
 * Unix socket path, say) is hashed.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`;
  return `other:${createHash('sha256').update(address, 'utf8').digest('hex')}`;
}

/** The eight 16-bit groups of a valid IPv6 address, as lowercase hex without leading zeros. */
function ipv6Groups(address: string): string[] {
  const bare = address.split('%')[0] ?? '';
  // An embedded dotted IPv4 tail stands for two groups; it only ever fills groups 7 and 8,
  // which the /64 key drops, so its value does not matter here.
  const split = (part: string): string[] =>
    part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const gap = bare.indexOf('::');
  const groups =
    gap === -1
      ? split(bare)
      : (() => {
          const head = split(bare.slice(0, gap));
          const tail = split(bare.slice(gap + 2));
          return [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
        })();
  return groups.map((g) => parseInt(g, 16).toString(16));
}
