import { incoming } from '../test/chat-fakes';
import { messageJson } from './message-json';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('messageJson', () => {
  it('prints a verified message with its sender fingerprint', () => {
    const message = {
      ...incoming({ from: 'bob', to: 'alice', body: 'hi\n', msgId: 'm1', serverTs: 5 }),
      senderFingerprint: A,
      pinnedFingerprint: A,
    };
    expect(JSON.parse(messageJson(message))).toEqual({
      msg_id: 'm1',
      from: 'bob',
      to: 'alice',
      body: 'hi\n',
      ts: 4,
      server_ts: 5,
      verification: 'verified',
      sender_fingerprint: A,
    });
    expect(messageJson(message)).not.toContain('\n');
  });

  it('keeps a flagged message, with the pinned fingerprint when it differs', () => {
    const message = {
      ...incoming({ from: 'bob', to: 'alice' }, 'key_changed'),
      senderFingerprint: B,
      pinnedFingerprint: A,
    };
    expect(JSON.parse(messageJson(message))).toMatchObject({
      verification: 'key_changed',
      sender_fingerprint: B,
      pinned_fingerprint: A,
    });
  });

  it('writes invisible and control characters as \\u escapes: the same strings, nothing hidden', () => {
    const body = 'pay \u202E0001\u202C \u200B\u009b\u2028\u{E0041}';
    const message = incoming({ from: 'bo\u200Bb', to: 'alice', body });
    const json = messageJson(message);
    expect(json).not.toMatch(/[\u202E\u202C\u200B\u009b\u2028]|\u{E0041}/u);
    expect(json).toContain('"body":"pay \\u202e0001\\u202c \\u200b\\u009b\\u2028\\udb40\\udc41"');
    expect(JSON.parse(json)).toMatchObject({ from: 'bo\u200Bb', body });
  });

  it('prints null when no key could be obtained for the sender', () => {
    const json = JSON.parse(
      messageJson(incoming({ from: 'bob', to: '#ops' }, 'unknown_sender_key')),
    ) as Record<string, unknown>;
    expect(json.sender_fingerprint).toBeNull();
    expect(json).not.toHaveProperty('pinned_fingerprint');
  });
});
