/** Handshake caps per address and in total, and the session cap, against a fake config. */
import { type SecureChatConfig } from '@securechat/core';

import { ConnectionLimiter } from './connection-limiter';

function limiterWith(limits: {
  maxHandshakesPerAddress: number;
  maxHandshakes: number;
  maxSessions: number;
  maxSessionsPerUser?: number;
}): ConnectionLimiter {
  return new ConnectionLimiter({
    limits: { maxSessionsPerUser: 1000, ...limits },
  } as unknown as SecureChatConfig);
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
});
