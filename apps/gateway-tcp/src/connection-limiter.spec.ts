/**
 * Admission (handshake caps per prefix, accept rate) and session caps, against a fake config
 * and a fake clock.
 */
import { type SecureChatConfig } from '@securechat/core';

import { ConnectionLimiter } from './connection-limiter';

interface Limits {
  maxHandshakesPerAddress: number;
  maxHandshakes: number;
  maxSessions: number;
  maxSessionsPerUser?: number;
  maxHandshakesPer56?: number;
  maxHandshakesPer48?: number;
  acceptRatePerAddress?: number;
  acceptBurstPerAddress?: number;
}

/** A clock that moves only when the test says so. */
class FakeClock {
  time = 1_700_000_000_000;
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

/** Wider caps and the accept rate stay out of the way unless a test sets them. */
function limiterWith(limits: Limits, clock = new FakeClock()): ConnectionLimiter {
  return new ConnectionLimiter(
    {
      limits: {
        maxSessionsPerUser: 1000,
        maxHandshakesPer56: 1_000_000,
        maxHandshakesPer48: 1_000_000,
        acceptRatePerAddress: 1_000_000,
        acceptBurstPerAddress: 1_000_000,
        ...limits,
      },
    } as unknown as SecureChatConfig,
    clock,
  );
}

describe('ConnectionLimiter', () => {
  it('starts with no handshakes and no sessions', () => {
    expect(
      limiterWith({ maxHandshakesPerAddress: 1, maxHandshakes: 1, maxSessions: 1 }).counts,
    ).toEqual({ handshakes: 0, sessions: 0 });
  });

  describe('handshakes', () => {
    it('caps handshakes from one address without affecting other addresses', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('too_many_handshakes');
      expect(limiter.tryStartHandshake('10.0.0.2')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.2')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.2')).toBe('too_many_handshakes');
      // Refusals take no slot.
      expect(limiter.counts.handshakes).toBe(4);
    });

    it('frees an address slot when one of its handshakes ends', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      limiter.tryStartHandshake('10.0.0.1');
      limiter.tryStartHandshake('10.0.0.1');
      limiter.endHandshake('10.0.0.1');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('too_many_handshakes');
    });

    it('caps handshakes in total across addresses', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 3,
        maxSessions: 100,
      });
      expect(limiter.tryStartHandshake('a')).toBe('ok');
      expect(limiter.tryStartHandshake('b')).toBe('ok');
      expect(limiter.tryStartHandshake('c')).toBe('ok');
      expect(limiter.tryStartHandshake('d')).toBe('too_many_handshakes');
      expect(limiter.tryStartHandshake('a')).toBe('too_many_handshakes');
      expect(limiter.counts.handshakes).toBe(3);
      limiter.endHandshake('b');
      expect(limiter.tryStartHandshake('d')).toBe('ok');
      expect(limiter.tryStartHandshake('e')).toBe('too_many_handshakes');
    });

    it('gives an address its full quota again once all its handshakes ended', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 3,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 3; i++) expect(limiter.tryStartHandshake('10.0.0.9')).toBe('ok');
        expect(limiter.tryStartHandshake('10.0.0.9')).toBe('too_many_handshakes');
        for (let i = 0; i < 3; i++) limiter.endHandshake('10.0.0.9');
        expect(limiter.counts.handshakes).toBe(0);
      }
    });

    it('returns to zero after many different addresses start and end, in any order', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 10_000,
        maxSessions: 1,
      });
      const addresses = Array.from({ length: 2000 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
      for (const address of addresses) {
        expect(limiter.tryStartHandshake(address)).toBe('ok');
        expect(limiter.tryStartHandshake(address)).toBe('ok');
      }
      expect(limiter.counts).toEqual({ handshakes: 4000, sessions: 0 });
      for (const address of [...addresses].reverse()) limiter.endHandshake(address);
      for (const address of addresses) limiter.endHandshake(address);
      expect(limiter.counts).toEqual({ handshakes: 0, sessions: 0 });
      // Every address starts from an empty count again: its whole quota, no more.
      for (const address of addresses.slice(0, 50)) {
        expect(limiter.tryStartHandshake(address)).toBe('ok');
        expect(limiter.tryStartHandshake(address)).toBe('ok');
        expect(limiter.tryStartHandshake(address)).toBe('too_many_handshakes');
      }
    });

    it('removes an address entry when its count reaches zero', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 10_000,
        maxSessions: 1,
      });
      const deleteSpy = jest.spyOn(Map.prototype, 'delete');
      try {
        limiter.tryStartHandshake('192.0.2.1');
        limiter.tryStartHandshake('192.0.2.1');
        limiter.endHandshake('192.0.2.1');
        expect(deleteSpy).not.toHaveBeenCalledWith('192.0.2.1');
        limiter.endHandshake('192.0.2.1');
        expect(deleteSpy).toHaveBeenCalledWith('192.0.2.1');
      } finally {
        deleteSpy.mockRestore();
      }
    });
  });

  describe('sessions', () => {
    it('caps sessions in total and frees a slot when one ends', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 10,
        maxSessions: 2,
      });
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartSession('alice')).toBe('server_full');
      expect(limiter.counts.sessions).toBe(2);
      limiter.endSession('alice');
      expect(limiter.counts.sessions).toBe(1);
      expect(limiter.tryStartSession('alice')).toBe('ok');
      limiter.endSession('alice');
      limiter.endSession('alice');
      expect(limiter.counts).toEqual({ handshakes: 0, sessions: 0 });
    });

    it("answers 'too_many_sessions' to a new handshake while sessions are full, and takes no slot", () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 10,
        maxSessions: 1,
      });
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('too_many_sessions');
      expect(limiter.counts).toEqual({ handshakes: 0, sessions: 1 });
      limiter.endSession('alice');
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('ok');
    });

    it("prefers 'too_many_sessions' over 'too_many_handshakes' when both caps are reached", () => {
      const limiter = limiterWith({ maxHandshakesPerAddress: 1, maxHandshakes: 1, maxSessions: 1 });
      expect(limiter.tryStartHandshake('a')).toBe('ok');
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartHandshake('a')).toBe('too_many_sessions');
    });

    it('counts handshakes and sessions separately (a login moves a connection from one to the other)', () => {
      const limiter = limiterWith({ maxHandshakesPerAddress: 1, maxHandshakes: 1, maxSessions: 5 });
      for (let i = 0; i < 5; i++) {
        expect(limiter.tryStartHandshake('10.0.0.1')).toBe('ok');
        limiter.endHandshake('10.0.0.1');
        expect(limiter.tryStartSession('alice')).toBe('ok');
      }
      expect(limiter.counts).toEqual({ handshakes: 0, sessions: 5 });
      expect(limiter.tryStartHandshake('10.0.0.1')).toBe('too_many_sessions');
      for (let i = 0; i < 5; i++) limiter.endSession('alice');
      expect(limiter.counts).toEqual({ handshakes: 0, sessions: 0 });
    });
  });

  describe('per user and per /64', () => {
    it("caps one user's sessions without touching the others", () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 10,
        maxSessions: 10,
        maxSessionsPerUser: 2,
      });
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartSession('alice')).toBe('user_limit');
      expect(limiter.tryStartSession('bob')).toBe('ok');
      expect(limiter.counts.sessions).toBe(3);
      limiter.endSession('alice');
      expect(limiter.tryStartSession('alice')).toBe('ok');
    });

    it('counts IPv6 handshakes per /64, so rotating addresses inside it does not escape the cap', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 10,
        maxSessions: 10,
      });
      expect(limiter.tryStartHandshake('2001:db8:1:2::1')).toBe('ok');
      expect(limiter.tryStartHandshake('2001:db8:1:2::ffff')).toBe('ok');
      expect(limiter.tryStartHandshake('2001:db8:1:2:abcd::7')).toBe('too_many_handshakes');
      expect(limiter.tryStartHandshake('2001:db8:1:3::1')).toBe('ok');
      limiter.endHandshake('2001:db8:1:2::1');
      expect(limiter.tryStartHandshake('2001:db8:1:2:abcd::7')).toBe('ok');
    });
  });

  describe('IPv6 /56 and /48', () => {
    /** `n` distinct /64s inside 2001:db8:1:200::/56. */
    const in56 = (n: number) => `2001:db8:1:2${n.toString(16).padStart(2, '0')}::1`;
    /** `n` distinct /56s inside 2001:db8:1::/48, one /64 each. */
    const in48 = (n: number) => `2001:db8:1:${(n << 8).toString(16)}::1`;

    it('caps a /56 across its /64s, without touching the rest of its /48', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakesPer56: 3,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect([0, 1, 2, 3].map((n) => limiter.tryStartHandshake(in56(n)))).toEqual([
        'ok',
        'ok',
        'ok',
        'too_many_handshakes',
      ]);
      expect(limiter.tryStartHandshake('2001:db8:1:300::1')).toBe('ok'); // next /56, same /48
      limiter.endHandshake(in56(1));
      expect(limiter.tryStartHandshake(in56(3))).toBe('ok');
      expect(limiter.tryStartHandshake(in56(4))).toBe('too_many_handshakes');
    });

    it('caps a /48 across its /56s, without touching other /48s', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakesPer48: 3,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect([0, 1, 2, 3].map((n) => limiter.tryStartHandshake(in48(n)))).toEqual([
        'ok',
        'ok',
        'ok',
        'too_many_handshakes',
      ]);
      expect(limiter.tryStartHandshake('2001:db8:2::1')).toBe('ok');
      limiter.endHandshake(in48(0));
      expect(limiter.tryStartHandshake(in48(3))).toBe('ok');
    });

    it('still caps one /64 when its /56 and /48 have room', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakesPer56: 10,
        maxHandshakesPer48: 10,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect(limiter.tryStartHandshake('2001:db8:1:2::1')).toBe('ok');
      expect(limiter.tryStartHandshake('2001:db8:1:2::2')).toBe('ok');
      expect(limiter.tryStartHandshake('2001:db8:1:2:ffff::3')).toBe('too_many_handshakes');
      expect(limiter.tryStartHandshake('2001:db8:1:3::1')).toBe('ok');
    });

    it('frees the /64, /56 and /48 counts together when a handshake ends', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 1,
        maxHandshakesPer56: 1,
        maxHandshakesPer48: 1,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect(limiter.tryStartHandshake('2001:db8:1:2::1')).toBe('ok');
      expect(limiter.tracked.prefixes).toBe(3);
      // Each level is full: another /64 of the /56, another /56 of the /48.
      expect(limiter.tryStartHandshake('2001:db8:1:3::1')).toBe('too_many_handshakes');
      expect(limiter.tryStartHandshake('2001:db8:1:100::1')).toBe('too_many_handshakes');
      limiter.endHandshake('2001:db8:1:2::1');
      expect(limiter.tracked.prefixes).toBe(0);
      expect(limiter.tryStartHandshake('2001:db8:1:100::1')).toBe('ok');
    });

    it('does not group IPv4 addresses, mapped or not, into prefixes', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 1,
        maxHandshakesPer56: 1,
        maxHandshakesPer48: 1,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      // All of ::ffff:0:0/96 is one /56 when read as IPv6: it must not be.
      for (const address of ['10.0.0.1', '10.0.0.2', '::ffff:10.0.0.3', '::ffff:10.0.0.4']) {
        expect(limiter.tryStartHandshake(address)).toBe('ok');
      }
      expect(limiter.tracked.prefixes).toBe(4);
    });

    it('counts an IPv4-mapped address as the IPv4 address', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 2,
        maxHandshakes: 100,
        maxSessions: 100,
      });
      expect(limiter.tryStartHandshake('::ffff:192.0.2.7')).toBe('ok');
      expect(limiter.tryStartHandshake('192.0.2.7')).toBe('ok');
      expect(limiter.tryStartHandshake('::FFFF:192.0.2.7')).toBe('too_many_handshakes');
      limiter.endHandshake('192.0.2.7');
      expect(limiter.tryStartHandshake('::ffff:192.0.2.7')).toBe('ok');
    });

    it('keeps no entry for a prefix once its handshakes have ended, whatever the order', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 4,
        maxHandshakes: 100_000,
        maxSessions: 1,
      });
      const addresses = Array.from(
        { length: 3000 },
        (_, i) => `2001:db8:${i % 7}:${(i % 300).toString(16)}::${i.toString(16)}`,
      );
      for (const address of addresses) expect(limiter.tryStartHandshake(address)).toBe('ok');
      expect(limiter.counts.handshakes).toBe(3000);
      for (const address of [...addresses].reverse()) limiter.endHandshake(address);
      expect(limiter.counts.handshakes).toBe(0);
      expect(limiter.tracked.prefixes).toBe(0);
    });
  });

  describe('releases', () => {
    it('ignores an endHandshake that matches no start, so it cannot loosen a cap', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 1,
        maxHandshakes: 1,
        maxSessions: 10,
      });
      limiter.endHandshake('192.0.2.1');
      expect(limiter.counts.handshakes).toBe(0);
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('ok');
      limiter.endHandshake('192.0.2.1');
      limiter.endHandshake('192.0.2.1');
      expect(limiter.counts.handshakes).toBe(0);
      expect(limiter.tryStartHandshake('192.0.2.2')).toBe('ok');
      expect(limiter.tryStartHandshake('192.0.2.3')).toBe('too_many_handshakes');
    });

    it('checks its arguments', () => {
      const limiter = limiterWith({ maxHandshakesPerAddress: 1, maxHandshakes: 1, maxSessions: 1 });
      expect(() => limiter.tryStartHandshake(undefined as unknown as string)).toThrow(TypeError);
      expect(() => limiter.endHandshake(42 as unknown as string)).toThrow(TypeError);
    });
  });

  describe('accept rate', () => {
    /** Opens and closes `n` connections from `address`, returning the verdicts. */
    function churn(limiter: ConnectionLimiter, address: string, n: number): string[] {
      return Array.from({ length: n }, () => {
        const verdict = limiter.tryStartHandshake(address);
        if (verdict === 'ok') limiter.endHandshake(address);
        return verdict;
      });
    }

    it('lets an address open its burst at once, then refuses it with rate_limited', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 100,
        maxSessions: 100,
        acceptRatePerAddress: 1,
        acceptBurstPerAddress: 3,
      });
      expect(churn(limiter, '192.0.2.1', 4)).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
      expect(churn(limiter, '192.0.2.2', 1)).toEqual(['ok']);
    });

    it('refills at the configured rate, up to the burst, on the injected clock', () => {
      const clock = new FakeClock();
      const limiter = limiterWith(
        {
          maxHandshakesPerAddress: 10,
          maxHandshakes: 100,
          maxSessions: 100,
          acceptRatePerAddress: 2,
          acceptBurstPerAddress: 3,
        },
        clock,
      );
      churn(limiter, '192.0.2.1', 3);
      clock.advance(499);
      expect(churn(limiter, '192.0.2.1', 1)).toEqual(['rate_limited']);
      clock.advance(1);
      expect(churn(limiter, '192.0.2.1', 2)).toEqual(['ok', 'rate_limited']);
      clock.advance(60_000);
      expect(churn(limiter, '192.0.2.1', 4)).toEqual(['ok', 'ok', 'ok', 'rate_limited']);
    });

    it('shares one bucket per /64, and per IPv4 address however it is written', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 10,
        maxHandshakes: 100,
        maxSessions: 100,
        acceptRatePerAddress: 1,
        acceptBurstPerAddress: 2,
      });
      expect(churn(limiter, '2001:db8:1:2::1', 1)).toEqual(['ok']);
      expect(churn(limiter, '2001:db8:1:2:ffff::9', 2)).toEqual(['ok', 'rate_limited']);
      expect(churn(limiter, '2001:db8:1:3::1', 1)).toEqual(['ok']); // same /56, other /64
      expect(churn(limiter, '::ffff:192.0.2.1', 1)).toEqual(['ok']);
      expect(churn(limiter, '192.0.2.1', 2)).toEqual(['ok', 'rate_limited']);
    });

    it('takes neither a slot for a rate_limited connection nor a token for a capped one', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 1,
        maxHandshakes: 100,
        maxSessions: 100,
        acceptRatePerAddress: 1,
        acceptBurstPerAddress: 2,
      });
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('ok');
      for (let i = 0; i < 5; i++) {
        expect(limiter.tryStartHandshake('192.0.2.1')).toBe('too_many_handshakes');
      }
      limiter.endHandshake('192.0.2.1');
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('ok'); // the second token
      limiter.endHandshake('192.0.2.1');
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('rate_limited');
      expect(limiter.counts.handshakes).toBe(0);
      expect(limiter.tracked.prefixes).toBe(0);
    });

    it('answers a full cap before an empty bucket, and full sessions before both', () => {
      const limiter = limiterWith({
        maxHandshakesPerAddress: 1,
        maxHandshakes: 100,
        maxSessions: 1,
        acceptRatePerAddress: 1,
        acceptBurstPerAddress: 1,
      });
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('ok');
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('too_many_handshakes');
      limiter.endHandshake('192.0.2.1');
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('rate_limited');
      expect(limiter.tryStartSession('alice')).toBe('ok');
      expect(limiter.tryStartHandshake('192.0.2.1')).toBe('too_many_sessions');
    });

    it('forgets refilled buckets, so a flood of distinct /64s does not grow the map', () => {
      const clock = new FakeClock();
      const limiter = limiterWith(
        {
          maxHandshakesPerAddress: 16,
          maxHandshakes: 4096,
          maxSessions: 100,
          acceptRatePerAddress: 50,
          acceptBurstPerAddress: 200,
        },
        clock,
      );
      let largest = 0;
      let refused = 0;
      for (let i = 0; i < 50_000; i++) {
        clock.advance(1);
        const address = `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
        if (churn(limiter, address, 1)[0] !== 'ok') refused++;
        largest = Math.max(largest, limiter.tracked.rateBuckets);
      }
      expect(refused).toBe(0);
      expect(largest).toBeLessThanOrEqual(1024);
      // Once every bucket has had time to refill (200 tokens at 50/s), one call clears them.
      clock.advance(4000);
      churn(limiter, '192.0.2.1', 1);
      expect(limiter.tracked).toEqual({ prefixes: 0, rateBuckets: 1, users: 0 });
    });
  });
});
