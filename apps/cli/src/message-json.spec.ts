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

  it('prints null when no key could be obtained for the sender', () => {
    const json = JSON.parse(
      messageJson(incoming({ from: 'bob', to: '#ops' }, 'unknown_sender_key')),
    ) as Record<string, unknown>;
    expect(json.sender_fingerprint).toBeNull();
    expect(json).not.toHaveProperty('pinned_fingerprint');
  });
});
