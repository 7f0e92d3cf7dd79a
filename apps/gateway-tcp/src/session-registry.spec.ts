/** The per-user index of live sessions that fan-out walks. */
import { type StoredMessage } from '@securechat/core';

import { type DeliveryTarget, SessionRegistry } from './session-registry';

let nextSession = 0;

function target(
  username: string,
  sessionId = `s-${++nextSession}`,
): DeliveryTarget & { deliver: jest.Mock } {
  return {
    username,
    sessionId,
    deliver: jest.fn<void, [StoredMessage]>(),
    shutdown: jest.fn<void, ['shutting_down', string]>(),
  };
}

describe('SessionRegistry', () => {
  it('is empty at first', () => {
    const registry = new SessionRegistry();
    expect(registry.size).toBe(0);
    expect(registry.all()).toEqual([]);
    expect([...registry.sessionsOf('alice')]).toEqual([]);
  });

  it('finds every live session of a user, and only theirs', () => {
    const registry = new SessionRegistry();
    const alice1 = target('alice');
    const alice2 = target('alice');
    const bob = target('bob');
    registry.add(alice1);
    registry.add(bob);
    registry.add(alice2);
    expect([...registry.sessionsOf('alice')]).toEqual([alice1, alice2]);
    expect([...registry.sessionsOf('bob')]).toEqual([bob]);
    expect([...registry.sessionsOf('carol')]).toEqual([]);
    expect(registry.size).toBe(3);
    expect(registry.all()).toHaveLength(3);
    expect(new Set(registry.all())).toEqual(new Set([alice1, alice2, bob]));
  });

  it('names each user with a live session once, and forgets a user whose last session left', () => {
    const registry = new SessionRegistry();
    expect(registry.usernames()).toEqual([]);
    const alice1 = target('alice');
    const alice2 = target('alice');
    const bob = target('bob');
    for (const t of [alice1, bob, alice2]) registry.add(t);
    expect(registry.usernames()).toEqual(['alice', 'bob']);
    registry.remove(alice1);
    expect(registry.usernames()).toEqual(['alice', 'bob']);
    registry.remove(alice2);
    expect(registry.usernames()).toEqual(['bob']);
  });

  it('matches usernames exactly', () => {
    const registry = new SessionRegistry();
    registry.add(target('Alice'));
    expect(registry.sessionsOf('alice').length).toBe(0);
    expect(registry.sessionsOf('Alice').length).toBe(1);
  });

  it('counts a session added twice once', () => {
    const registry = new SessionRegistry();
    const alice = target('alice');
    registry.add(alice);
    registry.add(alice);
    expect(registry.size).toBe(1);
    expect(registry.all()).toEqual([alice]);
  });

  it('removes one session and leaves the user’s others', () => {
    const registry = new SessionRegistry();
    const alice1 = target('alice');
    const alice2 = target('alice');
    registry.add(alice1);
    registry.add(alice2);
    registry.remove(alice1);
    expect([...registry.sessionsOf('alice')]).toEqual([alice2]);
    expect(registry.size).toBe(1);
    registry.remove(alice2);
    expect(registry.sessionsOf('alice').length).toBe(0);
    expect(registry.size).toBe(0);
    expect(registry.all()).toEqual([]);
  });

  it('ignores the removal of a session it does not hold, or of one removed already', () => {
    const registry = new SessionRegistry();
    const alice = target('alice');
    const stranger = target('alice');
    registry.add(alice);
    registry.remove(stranger);
    registry.remove(target('nobody'));
    expect(registry.all()).toEqual([alice]);
    registry.remove(alice);
    registry.remove(alice);
    expect(registry.size).toBe(0);
  });

  it('lets a user come back after all their sessions ended', () => {
    const registry = new SessionRegistry();
    const first = target('alice');
    registry.add(first);
    registry.remove(first);
    const second = target('alice');
    registry.add(second);
    expect([...registry.sessionsOf('alice')]).toEqual([second]);
  });

  it('survives a session removing itself while fan-out walks the user’s sessions', () => {
    const registry = new SessionRegistry();
    const message = { msgId: 'm1' } as unknown as StoredMessage;
    const slow = target('alice');
    slow.deliver.mockImplementation(() => registry.remove(slow)); // e.g. dropped as too slow
    const fast = target('alice');
    registry.add(slow);
    registry.add(fast);
    for (const session of registry.sessionsOf('alice')) session.deliver(message);
    expect(slow.deliver).toHaveBeenCalledWith(message);
    expect(fast.deliver).toHaveBeenCalledWith(message);
    expect([...registry.sessionsOf('alice')]).toEqual([fast]);
  });

  it('keeps size in step with many adds and removes', () => {
    const registry = new SessionRegistry();
    const targets = Array.from({ length: 100 }, (_, i) => target(`user${i % 7}`));
    for (const t of targets) registry.add(t);
    expect(registry.size).toBe(100);
    for (const t of targets.filter((_, i) => i % 2 === 0)) registry.remove(t);
    expect(registry.size).toBe(50);
    expect(registry.all()).toHaveLength(50);
    for (let u = 0; u < 7; u++) {
      expect(registry.sessionsOf(`user${u}`).length).toBe(
        targets.filter((t, i) => i % 2 === 1 && t.username === `user${u}`).length,
      );
    }
    for (const t of targets) registry.remove(t);
    expect(registry.size).toBe(0);
  });

  it('finds a live session by its id until it is removed', () => {
    const registry = new SessionRegistry();
    const alice = target('alice', 's-a');
    const bob = target('bob', 's-b');
    registry.add(alice);
    registry.add(bob);
    expect(registry.session('s-a')).toBe(alice);
    expect(registry.session('s-b')).toBe(bob);
    expect(registry.session('s-x')).toBeUndefined();
    registry.remove(alice);
    expect(registry.session('s-a')).toBeUndefined();
    expect(registry.session('s-b')).toBe(bob);
  });

  it('keeps the id of a registered session when a stranger with the same id is removed', () => {
    const registry = new SessionRegistry();
    const alice = target('alice', 's-same');
    registry.add(alice);
    registry.remove(target('alice', 's-same'));
    expect(registry.session('s-same')).toBe(alice);
  });
});
