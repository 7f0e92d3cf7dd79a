import { describe, expect, it } from '@jest/globals';
import { PeerError } from '@securechat/protocol';

import {
  attemptAfterSession,
  reconnectDelay,
  retryAfterOf,
  safeFileName,
  STABLE_SESSION_MS,
} from './reconnect-policy';

describe('reconnect policy', () => {
  it('grows the backoff per attempt and honours a longer retry_after', () => {
    expect([0, 1, 2, 10].map((attempt) => reconnectDelay(attempt, undefined))).toEqual([
      1, 2, 4, 30,
    ]);
    const limited = new PeerError('rate_limited', 'slow down', 45);
    expect(reconnectDelay(0, limited)).toBe(45);
    expect(reconnectDelay(0, new Error('wrapped', { cause: limited }))).toBe(45);
    expect(reconnectDelay(5, new PeerError('rate_limited', 'x', 3))).toBe(30);
    expect(retryAfterOf(new Error('plain'))).toBeUndefined();
  });

  it('keeps the attempt count across sessions that drop at once', () => {
    expect(attemptAfterSession(3, 100)).toBe(3);
    expect(attemptAfterSession(3, STABLE_SESSION_MS)).toBe(0);
  });

  it('sanitises download names to [A-Za-z0-9_-]', () => {
    expect(safeFileName('alice-abc_1')).toBe('alice-abc_1');
    expect(safeFileName('../a/b\u202e.exe')).toBe('_a_b_exe');
    expect(safeFileName('')).toBe('transcript');
  });
});
