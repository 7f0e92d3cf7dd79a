/** The gateway's end of session control: which sessions an operator's command closes, and how. */
import { Logger } from '@nestjs/common';
import { type SessionCommand, SessionCommandPort, type StoredMessage } from '@securechat/core';

import {
  MAX_REMEMBERED_USER_CLOSES,
  REMEMBER_USER_CLOSE_MS,
  SessionCloser,
} from './session-closer';
import { type DeliveryTarget, SessionRegistry } from './session-registry';

type Target = DeliveryTarget & { shutdown: jest.Mock<void, ['shutting_down', string]> };

function target(username: string, sessionId: string): Target {
  return {
    username,
    sessionId,
    deliver: jest.fn<void, [StoredMessage]>(),
    shutdown: jest.fn<void, ['shutting_down', string]>(),
  };
}

/** A command port that hands published commands to its listeners synchronously. */
class FakeCommands extends SessionCommandPort {
  readonly listeners = new Set<(command: SessionCommand) => void>();

  publish(command: SessionCommand): Promise<void> {
    for (const listener of this.listeners) listener(command);
    return Promise.resolve();
  }

  subscribe(listener: (command: SessionCommand) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

describe('SessionCloser', () => {
  let registry: SessionRegistry;
  let commands: FakeCommands;
  let closer: SessionCloser;
  let alice1: Target;
  let alice2: Target;
  let bob: Target;
  let now: number;

  beforeEach(() => {
    now = 1_000_000;
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    registry = new SessionRegistry();
    commands = new FakeCommands();
    closer = new SessionCloser(registry, commands, { now: () => now });
    [alice1, alice2, bob] = [
      target('alice', 's-a1'),
      target('alice', 's-a2'),
      target('bob', 's-b'),
    ];
    for (const t of [alice1, alice2, bob]) registry.add(t);
  });

  afterEach(() => jest.restoreAllMocks());

  it('closes one session by id with shutting_down and the operator’s reason', () => {
    const reason = 'closed by an operator';
    expect(closer.handle({ kind: 'close-session', sessionId: 's-a2', reason })).toBe(1);
    expect(alice2.shutdown).toHaveBeenCalledWith('shutting_down', reason);
    expect(alice1.shutdown).not.toHaveBeenCalled();
    expect(bob.shutdown).not.toHaveBeenCalled();
  });

  it('closes every session of a user, and only theirs; a blank reason gets a default', () => {
    expect(closer.handle({ kind: 'close-user', username: 'alice', reason: '  ' })).toBe(2);
    expect(alice1.shutdown).toHaveBeenCalledWith('shutting_down', 'session closed by the operator');
    expect(alice2.shutdown).toHaveBeenCalledTimes(1);
    expect(bob.shutdown).not.toHaveBeenCalled();
  });

  describe('a login that races an order to close its user', () => {
    it('closes a session whose login began before the order and registered after it', () => {
      const loginStartedAt = now;
      now += 300; // the order arrives while auth is still deciding
      expect(closer.handle({ kind: 'close-user', username: 'carol', reason: 'disabled' })).toBe(0);
      now += 200;
      const carol = target('carol', 's-c');
      registry.add(carol);
      expect(closer.checkNewSession(carol, loginStartedAt)).toBe(true);
      expect(carol.shutdown).toHaveBeenCalledWith('shutting_down', 'disabled');
    });

    it('lets a login that began after the order through (a kick is not a ban)', () => {
      closer.handle({ kind: 'close-user', username: 'carol', reason: 'kicked' });
      now += 1000;
      const carol = target('carol', 's-c');
      expect(closer.checkNewSession(carol, now - 10)).toBe(false);
      expect(carol.shutdown).not.toHaveBeenCalled();
    });

    it('forgets orders after a minute, and ignores other users and close-session orders', () => {
      closer.handle({ kind: 'close-user', username: 'carol', reason: 'x' });
      closer.handle({ kind: 'close-session', sessionId: 's-d', reason: 'x' });
      const dave = target('dave', 's-d');
      expect(closer.checkNewSession(dave, now - 100)).toBe(false);
      now += REMEMBER_USER_CLOSE_MS;
      closer.handle({ kind: 'close-user', username: 'erin', reason: 'x' }); // prunes
      expect(closer.checkNewSession(target('carol', 's-c'), 0)).toBe(false);
    });

    it('remembers a bounded number of orders', () => {
      for (let i = 0; i <= MAX_REMEMBERED_USER_CLOSES; i++) {
        closer.handle({ kind: 'close-user', username: `u${i}`, reason: 'x' });
      }
      expect(closer.checkNewSession(target('u0', 's0'), 0)).toBe(false);
      expect(closer.checkNewSession(target('u1', 's1'), 0)).toBe(true);
    });
  });

  it('ignores commands for sessions another gateway holds', () => {
    expect(closer.handle({ kind: 'close-session', sessionId: 's-elsewhere', reason: 'x' })).toBe(0);
    expect(closer.handle({ kind: 'close-user', username: 'carol', reason: 'x' })).toBe(0);
    for (const t of [alice1, alice2, bob]) expect(t.shutdown).not.toHaveBeenCalled();
  });

  it('bounds the reason passed on to the client', () => {
    closer.handle({ kind: 'close-session', sessionId: 's-b', reason: `  ${'r'.repeat(1000)}  ` });
    const message = bob.shutdown.mock.calls[0]![1];
    expect(message).toBe('r'.repeat(200));
  });

  it('keeps closing the others when one session fails to close', () => {
    alice1.shutdown.mockImplementation(() => {
      throw new Error('socket gone');
    });
    expect(closer.handle({ kind: 'close-user', username: 'alice', reason: 'r' })).toBe(2);
    expect(alice2.shutdown).toHaveBeenCalledTimes(1);
  });

  it('acts on commands from the channel between module init and destroy only', async () => {
    // A session that removes itself on shutdown, as ClientConnection does.
    alice1.shutdown.mockImplementation(() => registry.remove(alice1));
    closer.onModuleInit();
    closer.onModuleInit(); // idempotent: one subscription
    expect(commands.listeners.size).toBe(1);
    await commands.publish({ kind: 'close-user', username: 'alice', reason: 'r' });
    expect(alice1.shutdown).toHaveBeenCalledTimes(1);
    expect(registry.session('s-a1')).toBeUndefined();

    closer.onModuleDestroy();
    expect(commands.listeners.size).toBe(0);
    await commands.publish({ kind: 'close-session', sessionId: 's-b', reason: 'r' });
    expect(bob.shutdown).not.toHaveBeenCalled();
  });
});
