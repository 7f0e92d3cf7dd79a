/** The per-address keys: fixed cases, then property tests against models and node:net. */
import { createHash } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

import fc from 'fast-check';

import { addressKey, ipv6PrefixKey } from './address-key';

const RUNS = { numRuns: 2000 };

/** addressKey as it was before prefix keys were added: its keys are stored, so they must not move. */
function previousAddressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address)) return address;
  if (isIPv6(address)) {
    const bare = address.split('%')[0] ?? '';
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
    return `${groups
      .map((g) => parseInt(g, 16).toString(16))
      .slice(0, 4)
      .join(':')}::/64`;
  }
  return `other:${createHash('sha256').update(address, 'utf8').digest('hex')}`;
}

/** Zero groups are common in real addresses and make `::` compression possible. */
const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const groups = fc.array(group, { minLength: 8, maxLength: 8 });

/** Groups that are not ::ffff:0:0/96, which one spelling turns into IPv4. */
const ipv6Groups = groups.filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff));

/**
 * Every way RFC 4291 §2.2 lets one write `g`: leading zeros, either case, one run of zero
 * groups compressed to `::`, a dotted IPv4 tail, and a zone id.
 */
function spellings(g: readonly number[]): fc.Arbitrary<string> {
  return fc
    .record({
      pad: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      upper: fc.boolean(),
      dotted: fc.boolean(),
      gap: fc.option(fc.tuple(fc.nat(7), fc.nat(8)), { nil: undefined, freq: 2 }),
      zone: fc.option(fc.constantFrom('eth0', '1', 'en0.100'), { nil: undefined, freq: 2 }),
    })
    .map(({ pad, upper, dotted, gap, zone }) => {
      const hex = g.map((x, i) => {
        const text = x.toString(16);
        const padded = text.padStart(Math.min(4, text.length + pad[i]!), '0');
        return upper ? padded.toUpperCase() : padded;
      });
      const words: string[] = dotted
        ? [...hex.slice(0, 6), [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.')]
        : hex;
      // Compress the longest run of zero groups inside [start, start+length) that is allowed.
      let text = words.join(':');
      if (gap !== undefined) {
        const groupCount = dotted ? 6 : 8;
        const [start] = gap;
        let end = start;
        while (end < groupCount && g[end] === 0 && end - start < gap[1]) end++;
        if (end > start) {
          const head = words.slice(0, start).join(':');
          const tail = words.slice(end).join(':');
          text = `${head}::${tail}`;
        }
      }
      return zone === undefined ? text : `${text}%${zone}`;
    });
}

const spelledIPv6 = ipv6Groups.chain((g) => spellings(g).map((text) => ({ g, text })));

function expectedPrefix(g: readonly number[], bits: number): string {
  const shown = Math.ceil(bits / 16);
  const parts: string[] = [];
  for (let i = 0; i < shown; i++) {
    const kept = Math.min(16, bits - 16 * i);
    parts.push(((g[i]! >> (16 - kept)) << (16 - kept)).toString(16));
  }
  return `${parts.join(':')}${shown === 8 ? '' : '::'}/${bits}`;
}

function ipv4Text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

describe('addressKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002::', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['::', '0:0:0:0::/64'],
  ])('keys %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });

  it('hashes what is not an IP address', () => {
    expect(addressKey('/run/securechat.sock')).toMatch(/^other:[0-9a-f]{64}$/);
    expect(addressKey('unknown')).not.toBe(addressKey('unknown2'));
  });

  it('gives every IPv6 spelling the same key as before prefix keys existed', () => {
    fc.assert(
      fc.property(spelledIPv6, ({ text }) => {
        expect(addressKey(text)).toBe(previousAddressKey(text));
      }),
      RUNS,
    );
  });

  it('gives IPv4, mapped IPv4 and arbitrary strings the same key as before', () => {
    const input = fc.oneof(
      fc.nat({ max: 0xffffffff }).map(ipv4Text),
      fc.nat({ max: 0xffffffff }).map((n) => `::ffff:${ipv4Text(n)}`),
      fc.string(),
    );
    fc.assert(
      fc.property(input, (address) => {
        expect(addressKey(address)).toBe(previousAddressKey(address));
      }),
      RUNS,
    );
  });
});

describe('ipv6PrefixKey', () => {
  it.each([
    ['2001:db8:1:2ab::5', 56, '2001:db8:1:200::/56'],
    ['2001:db8:1:2ab::5', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2ab::5', 64, '2001:db8:1:2ab::/64'],
    ['2001:0DB8:0001:02FF:ffff::', 56, '2001:db8:1:200::/56'],
    ['2001:db8::', 48, '2001:db8:0::/48'],
    ['::', 56, '0:0:0:0::/56'],
    ['fe80::1%eth0', 48, 'fe80:0:0::/48'],
    ['fe80::1%25eth0', 56, 'fe80:0:0:0::/56'],
    ['64:ff9b::192.0.2.1', 128, '64:ff9b:0:0:0:0:c000:201/128'],
    ['::192.0.2.1', 112, '0:0:0:0:0:0:c000::/112'],
    ['1:2:3:4:5:6:7:8', 0, '::/0'],
    ['1:2:3:4:5:6:7:8', 1, '0::/1'],
    ['8000::', 1, '8000::/1'],
  ])('keys %s /%i as %s', (address, bits, key) => {
    expect(ipv6PrefixKey(address, bits)).toBe(key);
  });

  it('has no IPv6 prefix for IPv4, IPv4-mapped IPv6, or non-addresses', () => {
    for (const address of ['192.0.2.1', '::ffff:192.0.2.1', '::FFFF:10.0.0.1', 'unknown', '']) {
      expect(ipv6PrefixKey(address, 56)).toBeUndefined();
    }
  });

  it('checks its arguments', () => {
    for (const bits of [-1, 129, 56.5, Number.NaN]) {
      expect(() => ipv6PrefixKey('2001:db8::1', bits)).toThrow(RangeError);
    }
    expect(() => ipv6PrefixKey(undefined as unknown as string, 56)).toThrow(TypeError);
  });

  it('reads every spelling of an address as its groups, masked to the prefix', () => {
    fc.assert(
      fc.property(spelledIPv6, fc.integer({ min: 0, max: 128 }), ({ g, text }, bits) => {
        expect(isIPv6(text)).toBe(true); // the generator writes only valid addresses
        expect(ipv6PrefixKey(text, bits)).toBe(expectedPrefix(g, bits));
      }),
      RUNS,
    );
  });

  it('agrees with addressKey at /64', () => {
    fc.assert(
      fc.property(spelledIPv6, ({ text }) => {
        expect(ipv6PrefixKey(text, 64)).toBe(addressKey(text));
      }),
      RUNS,
    );
  });

  it('puts two addresses under one key exactly when node:net puts them in one subnet', () => {
    // b shares a random number of leading bits with a, so both outcomes are frequent.
    const pair = fc
      .tuple(ipv6Groups, ipv6Groups, fc.integer({ min: 0, max: 128 }))
      .map(([a, other, shared]) => {
        const b = a.map((x, i) => {
          const kept = Math.max(0, Math.min(16, shared - 16 * i));
          const mask = (0xffff << (16 - kept)) & 0xffff;
          return (x & mask) | (other[i]! & ~mask & 0xffff);
        });
        const text = (g: number[]) => g.map((x) => x.toString(16)).join(':');
        return { a: text(a), b: text(b) };
      })
      .filter(({ a, b }) => ipv6PrefixKey(a, 0) !== undefined && ipv6PrefixKey(b, 0) !== undefined);
    fc.assert(
      fc.property(pair, fc.constantFrom(48, 56, 64), ({ a, b }, bits) => {
        const subnet = new BlockList();
        subnet.addSubnet(a, bits, 'ipv6');
        expect(ipv6PrefixKey(a, bits) === ipv6PrefixKey(b, bits)).toBe(subnet.check(b, 'ipv6'));
      }),
      RUNS,
    );
  });
});
