import { incoming } from '../../test/chat-fakes';
import {
  type ChatEvent,
  ChatModel,
  MAX_CONVERSATIONS,
  MAX_LINES,
  STATUS_KEY,
  verificationMark,
} from './chat-model';

describe('ChatModel', () => {
  it('starts on the status conversation, connecting', () => {
    const model = new ChatModel('alice');
    expect(model.current).toBe(STATUS_KEY);
    expect(model.status).toBe('connecting');
    expect(model.conversations.map((c) => c.key)).toEqual([STATUS_KEY]);
  });

  it('files a delivery under the room, or the other person', () => {
    const model = new ChatModel('alice');
    expect(model.conversationOf('bob', '#ops')).toBe('#ops');
    expect(model.conversationOf('bob', 'alice')).toBe('bob');
    expect(model.conversationOf('alice', 'bob')).toBe('bob');
  });

  it('counts unread messages outside the current conversation and clears them on select', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice' }));
    model.addIncoming(incoming({ from: 'bob', to: 'alice' }));
    model.addIncoming(incoming({ from: 'carol', to: '#ops' }));
    expect(model.conversation('bob')?.unread).toBe(2);
    expect(model.conversation('#ops')?.unread).toBe(1);

    model.select('bob');
    expect(model.conversation('bob')?.unread).toBe(0);
    model.addIncoming(incoming({ from: 'bob', to: 'alice' }));
    expect(model.conversation('bob')?.unread).toBe(0);
    expect(model.conversation('#ops')?.unread).toBe(1);
  });

  it('keeps server-time order when history arrives after live messages', () => {
    const model = new ChatModel('alice');
    for (const ts of [300, 100, 200, 250, 50]) {
      model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: ts }));
    }
    expect(model.conversation('bob')?.lines.map((l) => l.ts)).toEqual([50, 100, 200, 250, 300]);
  });

  it('shows a msg_id only once', () => {
    const model = new ChatModel('alice');
    const events: ChatEvent[] = [];
    model.onEvent((e) => events.push(e));
    model.addIncoming(incoming({ from: 'bob', to: 'alice', msgId: 'same', body: 'first' }));
    model.addIncoming(incoming({ from: 'bob', to: 'alice', msgId: 'same', body: 'again' }));
    expect(model.conversation('bob')?.lines.map((l) => l.text)).toEqual(['first']);
    expect(model.conversation('bob')?.unread).toBe(1);
    expect(events).toHaveLength(1);
  });

  it('tells whether a delivery was added, and which message is the oldest shown', () => {
    const model = new ChatModel('alice');
    expect(model.oldestMsgId('bob')).toBeUndefined();
    model.info('a note has no msg_id', 'bob', 1);
    const late = incoming({ from: 'bob', to: 'alice', serverTs: 300, msgId: 'late' });
    expect(model.addIncoming(late)).toBe(true);
    expect(model.addIncoming(late)).toBe(false);
    model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: 200, msgId: 'early' }));
    expect(model.oldestMsgId('bob')).toBe('early');
    expect(model.conversation('bob')?.historyRequested).toBe(false);
  });

  it('does not show an acked own message again when it comes back in history', () => {
    const model = new ChatModel('alice');
    const line = model.addOwn('bob', 'hi', 1000);
    model.settleOwn('bob', line, { msgId: 'm-own' });
    model.addIncoming(incoming({ from: 'alice', to: 'bob', msgId: 'm-own', body: 'hi' }));
    expect(model.conversation('bob')?.lines).toHaveLength(1);
  });

  it('shows own messages from history as stored, others with their verification', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'alice', to: 'bob', serverTs: 1 }));
    model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: 2 }, 'key_changed'));
    const [own, theirs] = model.conversation('bob')?.lines ?? [];
    expect(own?.state).toEqual({ kind: 'own', sent: 'stored' });
    expect(theirs?.state).toEqual({ kind: 'incoming', verification: 'key_changed' });
  });

  it('sanitizes bodies and notes for the terminal', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice', body: 'a\u001b[2Jb\nc' }));
    model.info('x\u0007y');
    expect(model.conversation('bob')?.lines[0]?.text).toBe('a<U+001B>[2Jb c');
    expect(model.conversation(STATUS_KEY)?.lines[0]?.text).toBe('x<U+0007>y');
  });

  it('shows senders as names and bodies, notes and send failures with hidden characters visible', () => {
    const model = new ChatModel('alice');
    model.addIncoming(
      incoming({ from: 'b\u200Dob', to: 'alice', body: 'pay \u202E0001\u202C now \u{E0041}' }),
    );
    const [line] = model.conversation('b\u200Dob')?.lines ?? [];
    expect(line?.from).toBe('b<U+200D>ob');
    expect(line?.text).toBe('pay <U+202E>0001<U+202C> now <U+E0041>');
    const own = model.addOwn('bob', 'hi', 1);
    model.settleOwn('bob', own, { error: 'not_found: no user \u2067eve\u2069\nforged' });
    expect(own.state).toEqual({
      kind: 'own',
      sent: 'failed',
      detail: 'not_found: no user <U+2067>eve<U+2069> forged',
    });
  });

  it('moves an own message from sending to stored or failed', () => {
    const model = new ChatModel('alice');
    const events: ChatEvent[] = [];
    model.onEvent((e) => events.push(e));
    const ok = model.addOwn('bob', 'one', 1);
    const bad = model.addOwn('bob', 'two', 2);
    expect(ok.state).toEqual({ kind: 'own', sent: 'sending' });
    model.settleOwn('bob', ok, { msgId: 'm1' });
    model.settleOwn('bob', bad, { error: 'not_found: no such user' });
    expect(ok).toMatchObject({ msgId: 'm1', state: { kind: 'own', sent: 'stored' } });
    expect(bad.state).toEqual({ kind: 'own', sent: 'failed', detail: 'not_found: no such user' });
    expect(events.map((e) => e.type)).toEqual(['line', 'line', 'updated', 'updated']);
  });

  it('keeps at most MAX_LINES lines per conversation, dropping the oldest', () => {
    const model = new ChatModel('alice');
    for (let i = 0; i < MAX_LINES + 5; i += 1) model.info(`note ${i}`, 'bob', i);
    const lines = model.conversation('bob')?.lines ?? [];
    expect(lines).toHaveLength(MAX_LINES);
    expect(lines[0]?.text).toBe('note 5');

    for (let i = 0; i < 10; i += 1) {
      model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: 10_000 + i }));
    }
    expect(model.conversation('bob')?.lines).toHaveLength(MAX_LINES);
  });

  it('keeps at most MAX_CONVERSATIONS conversations, never the status or current one', () => {
    const model = new ChatModel('alice');
    model.select('user_0');
    for (let i = 1; i < MAX_CONVERSATIONS + 20; i += 1) {
      model.addIncoming(incoming({ from: `user_${i}`, to: 'alice' }));
    }
    const keys = model.conversations.map((c) => c.key);
    expect(keys).toHaveLength(MAX_CONVERSATIONS);
    expect(keys).toContain(STATUS_KEY);
    expect(keys).toContain('user_0');
    expect(keys).toContain(`user_${MAX_CONVERSATIONS + 19}`);
    expect(keys).not.toContain('user_1');
  });

  it('cycles through conversations in list order, wrapping around', () => {
    const model = new ChatModel('alice');
    model.open('bob');
    model.open('#ops');
    model.cycle(1);
    expect(model.current).toBe('bob');
    model.cycle(1);
    expect(model.current).toBe('#ops');
    model.cycle(1);
    expect(model.current).toBe(STATUS_KEY);
    model.cycle(-1);
    expect(model.current).toBe('#ops');
  });

  it('closes a conversation, going back to status if it was the current one', () => {
    const model = new ChatModel('alice');
    model.select('#ops');
    model.open('bob');
    model.close('#ops');
    expect(model.current).toBe(STATUS_KEY);
    expect(model.conversation('#ops')).toBeUndefined();
    model.close(STATUS_KEY);
    expect(model.conversation(STATUS_KEY)).toBeDefined();
  });

  it('resets the scroll on select, and reports status changes', () => {
    const model = new ChatModel('alice');
    const events: ChatEvent[] = [];
    const unsubscribe = model.onEvent((e) => events.push(e));
    model.scroll = 7;
    model.select('bob');
    expect(model.scroll).toBe(0);
    model.status = 'connected';
    unsubscribe();
    model.status = 'closed';
    expect(events).toEqual([{ type: 'view' }, { type: 'status', status: 'connected' }]);
  });

  it('marks every verification and send state', () => {
    const marks = (['verified', 'bad_signature', 'key_changed', 'unknown_sender_key'] as const).map(
      (verification) => verificationMark({ kind: 'incoming', verification }),
    );
    expect(marks).toEqual(['✓', '⚠ BAD SIGNATURE', '⚠ KEY CHANGED', '⚠ UNVERIFIED']);
    expect(verificationMark({ kind: 'own', sent: 'sending' })).toBe('…');
    expect(verificationMark({ kind: 'own', sent: 'stored' })).toBe('✓');
    expect(verificationMark({ kind: 'own', sent: 'failed', detail: 'too_large: x' })).toBe(
      '✗ too_large: x',
    );
  });
});
