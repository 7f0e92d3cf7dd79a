import { describe, expect, it } from '@jest/globals';
import { encodeFrame, type ServerMessage } from '@securechat/protocol';

import { AnswerMatcher, answerError, type RequestMessage, singleFrame } from './answer-matcher';

const KEY = Buffer.alloc(32, 1).toString('base64');

function key(user: string): ServerMessage {
  return { type: 'key', user, public_key: KEY, fingerprint: `sha256:${user}` };
}

function setup() {
  const written: RequestMessage[] = [];
  const matcher = new AnswerMatcher((message) => written.push(message));
  return { written, matcher };
}

describe('AnswerMatcher', () => {
  it('has one id-less request outstanding at a time', async () => {
    const { written, matcher } = setup();
    const bob = matcher.request({ type: 'get_key', user: 'bob' });
    const carol = matcher.request({ type: 'get_key', user: 'carol' });
    expect(written).toEqual([{ type: 'get_key', user: 'bob' }]);
    expect(matcher.onMessage(key('bob'))).toBe(true);
    expect(written).toHaveLength(2);
    expect(matcher.onMessage(key('carol'))).toBe(true);
    await expect(bob).resolves.toMatchObject({ user: 'bob' });
    await expect(carol).resolves.toMatchObject({ user: 'carol' });
    expect(matcher.idle).toBe(true);
  });

  it('never takes an answer about another user, room or conversation for the answer', async () => {
    const { matcher } = setup();
    const carol = matcher.request({ type: 'get_key', user: 'carol' });
    expect(matcher.onMessage(key('bob'))).toBe(false);
    expect(matcher.onMessage({ type: 'history', with: 'bob', messages: [] })).toBe(false);
    expect(matcher.onMessage(key('carol'))).toBe(true);
    await expect(carol).resolves.toMatchObject({ user: 'carol' });

    const history = matcher.request({ type: 'history', with: 'alice' });
    expect(matcher.onMessage({ type: 'history', with: 'bob', messages: [] })).toBe(false);
    expect(matcher.onMessage({ type: 'history', with: 'alice', messages: [] })).toBe(true);
    await expect(history).resolves.toMatchObject({ with: 'alice' });

    const joined = matcher.request({ type: 'join', room: '#lobby' });
    expect(matcher.onMessage({ type: 'joined', room: '#other', members: [] })).toBe(false);
    expect(matcher.onMessage({ type: 'joined', room: '#lobby', members: [] })).toBe(true);
    await expect(joined).resolves.toMatchObject({ room: '#lobby' });
  });

  it('an id-less error (a failed delivered) shifts no later answer', async () => {
    const { matcher } = setup();
    // Nothing outstanding: the error is dropped.
    expect(
      matcher.onMessage({ type: 'error', code: 'bad_request', message: 'delivered failed' }),
    ).toBe(false);
    const bob = matcher.request({ type: 'get_key', user: 'bob' });
    const carol = matcher.request({ type: 'get_key', user: 'carol' });
    // The error fails bob's request (the one outstanding); bob's late answer is not carol's.
    matcher.onMessage({ type: 'error', code: 'bad_request', message: 'delivered failed' });
    await expect(bob).resolves.toMatchObject({ type: 'error' });
    expect(matcher.onMessage(key('bob'))).toBe(false);
    expect(matcher.onMessage(key('carol'))).toBe(true);
    await expect(carol).resolves.toMatchObject({ user: 'carol' });
  });

  it('matches acks and errors with an id to their send, and drops unknown ids', async () => {
    const { matcher } = setup();
    const ack = matcher.expectAck('m1');
    const refused = matcher.expectAck('m2');
    const pending = matcher.request({ type: 'ping' });
    expect(matcher.onMessage({ type: 'error', id: 'zz', code: 'bad_request', message: 'x' })).toBe(
      false,
    );
    expect(matcher.onMessage({ type: 'ack', id: 'm1', msg_id: 's1', server_ts: 1 })).toBe(true);
    expect(matcher.onMessage({ type: 'error', id: 'm2', code: 'bad_request', message: 'x' })).toBe(
      true,
    );
    await expect(ack).resolves.toMatchObject({ msg_id: 's1' });
    await expect(refused).resolves.toMatchObject({ type: 'error' });
    expect(matcher.onMessage({ type: 'pong' })).toBe(true);
    await expect(pending).resolves.toEqual({ type: 'pong' });
  });

  it('fails everything waiting when the connection is lost', async () => {
    const { matcher } = setup();
    const a = matcher.request({ type: 'get_key', user: 'bob' });
    const b = matcher.request({ type: 'get_key', user: 'carol' });
    const c = matcher.expectAck('m1');
    matcher.failAll(new Error('lost'));
    await expect(Promise.allSettled([a, b, c])).resolves.toEqual([
      { status: 'rejected', reason: new Error('lost') },
      { status: 'rejected', reason: new Error('lost') },
      { status: 'rejected', reason: new Error('lost') },
    ]);
  });

  it('answerError keeps retry_after', () => {
    const error = answerError({
      type: 'error',
      code: 'rate_limited',
      message: 'slow down',
      retry_after: 7,
    });
    expect(error).toMatchObject({ code: 'rate_limited', retryAfter: 7 });
  });
});

describe('singleFrame', () => {
  const frame = encodeFrame(Buffer.from('{"type":"pong"}'));

  it('takes a message holding exactly one frame', () => {
    const raw = singleFrame(new Uint8Array(frame), 65536);
    expect(raw.bytes).toEqual(frame);
    expect(raw.body.toString()).toBe('{"type":"pong"}');
  });

  it('refuses a partial frame, two frames, or a short message as bad_frame', () => {
    for (const bad of [
      frame.subarray(0, frame.length - 1),
      Buffer.concat([frame, frame]),
      frame.subarray(0, 3),
    ]) {
      expect(() => singleFrame(new Uint8Array(bad), 65536)).toThrow(
        expect.objectContaining({ code: 'bad_frame' }),
      );
    }
    expect(() => singleFrame(new Uint8Array(frame), 4)).toThrow(
      expect.objectContaining({ code: 'frame_too_large' }),
    );
  });
});
