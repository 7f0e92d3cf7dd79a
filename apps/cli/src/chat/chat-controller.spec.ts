import { ClientRequestError, MemoryPeerKeyStore } from '@securechat/client';

import { FakeChatClient, deliver, incoming } from '../../test/chat-fakes';
import { ChatController } from './chat-controller';
import { CHAT_HELP } from './chat-input';
import { type ChatLine, ChatModel, STATUS_KEY } from './chat-model';
import { formatLine } from './chat-screen';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

interface Setup {
  readonly client: FakeChatClient;
  readonly model: ChatModel;
  readonly controller: ChatController;
  readonly quit: jest.Mock;
  /** The texts of a conversation's lines. */
  texts(key: string): string[];
  lines(key: string): ChatLine[];
}

function setup(pins: Record<string, string> = {}): Setup {
  const client = new FakeChatClient();
  const model = new ChatModel('alice');
  const quit = jest.fn();
  const controller = new ChatController({
    client: client.asClient(),
    model,
    peerKeys: new MemoryPeerKeyStore(pins),
    quit,
    now: () => 1_000,
  });
  const lines = (key: string): ChatLine[] => model.conversation(key)?.lines ?? [];
  return {
    client,
    model,
    controller,
    quit,
    lines,
    texts: (key) => lines(key).map((l) => l.text),
  };
}

describe('ChatController', () => {
  it('refuses to say anything before a conversation is open', async () => {
    const { controller, client, lines } = setup();
    await controller.submit('hello?');
    expect(client.send).not.toHaveBeenCalled();
    expect(lines(STATUS_KEY)).toEqual([
      expect.objectContaining({
        state: { kind: 'error' },
        text: 'no conversation open: /msg NAME or /join #room first',
      }),
    ]);
  });

  it('/msg with text opens the conversation, sends, and marks the line stored on ack', async () => {
    const { controller, client, model, lines } = setup();
    client.send.mockResolvedValue({ msgId: 'm-9', serverTs: 2_000, id: 'c-1' });
    await controller.submit('/msg bob hello bob');
    expect(model.current).toBe('bob');
    expect(client.send).toHaveBeenCalledWith('bob', 'hello bob');
    expect(lines('bob')).toEqual([
      expect.objectContaining({
        from: 'alice',
        text: 'hello bob',
        ts: 1_000,
        msgId: 'm-9',
        state: { kind: 'own', sent: 'stored' },
      }),
    ]);
  });

  it('marks a refused message failed, with the error code', async () => {
    const { controller, client, lines } = setup();
    client.send.mockRejectedValue(new ClientRequestError('not_found', 'no such user', 'send'));
    await controller.submit('/msg nobody hi');
    const [line] = lines('nobody');
    expect(line?.state).toEqual({ kind: 'own', sent: 'failed', detail: 'not_found: no such user' });
    expect(line && formatLine(line)).toContain('✗ not_found: no such user: hi');
  });

  it('/msg without text only opens the conversation; plain text then goes there', async () => {
    const { controller, client, model } = setup();
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 2_000, id: 'c-1' });
    await controller.submit('/msg #ops');
    expect(model.current).toBe('#ops');
    expect(client.send).not.toHaveBeenCalled();
    await controller.submit('//etc/passwd is world-readable');
    expect(client.send).toHaveBeenCalledWith('#ops', '/etc/passwd is world-readable');
  });

  it('/join joins, selects the room and lists its members', async () => {
    const { controller, client, model, texts } = setup();
    client.join.mockResolvedValue({ type: 'joined', room: '#ops', members: ['alice', 'bob'] });
    await controller.submit('/join #ops');
    expect(client.join).toHaveBeenCalledWith('#ops');
    expect(model.current).toBe('#ops');
    expect(texts('#ops')).toEqual(['joined #ops; members: alice, bob']);
  });

  it('shows a refused /join in the current conversation', async () => {
    const { controller, client, model, lines } = setup();
    model.select('bob');
    client.join.mockRejectedValue(new ClientRequestError('forbidden', 'room is full', 'join'));
    await controller.submit('/join #full');
    expect(model.current).toBe('bob');
    expect(lines('bob').at(-1)).toMatchObject({
      text: 'join #full: forbidden: room is full',
      state: { kind: 'error' },
    });
  });

  it('/leave leaves the current room and closes it', async () => {
    const { controller, client, model, texts } = setup();
    model.select('#ops');
    client.leave.mockResolvedValue({ type: 'left', room: '#ops' });
    await controller.submit('/leave');
    expect(client.leave).toHaveBeenCalledWith('#ops');
    expect(model.conversation('#ops')).toBeUndefined();
    expect(model.current).toBe(STATUS_KEY);
    expect(texts(STATUS_KEY)).toContain('left #ops');
  });

  it('/leave #room leaves the named room from anywhere', async () => {
    const { controller, client, model } = setup();
    model.open('#dev');
    model.select('bob');
    client.leave.mockResolvedValue({ type: 'left', room: '#dev' });
    await controller.submit('/leave #dev');
    expect(client.leave).toHaveBeenCalledWith('#dev');
    expect(model.current).toBe('bob');
    expect(model.conversation('#dev')).toBeUndefined();
  });

  it('/leave outside a room is an error, and nothing is sent', async () => {
    const { controller, client, model, texts } = setup();
    model.select('bob');
    await controller.submit('/leave');
    expect(client.leave).not.toHaveBeenCalled();
    expect(texts('bob')).toEqual(['not in a room: /leave #room']);
  });

  it('shows a refused /leave', async () => {
    const { controller, client, model, texts } = setup();
    model.select('#ops');
    client.leave.mockRejectedValue(new ClientRequestError('not_found', 'not a member', 'leave'));
    await controller.submit('/leave');
    expect(model.current).toBe('#ops');
    expect(texts('#ops')).toEqual(['leave #ops: not_found: not a member']);
  });

  it('/history verifies each delivery and inserts it in server-time order', async () => {
    const { controller, client, model, lines } = setup();
    model.select('bob');
    model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: 500, body: 'live' }));
    const older = deliver({ from: 'bob', to: 'alice', serverTs: 100, body: 'old and good' });
    const forged = deliver({ from: 'bob', to: 'alice', serverTs: 200, body: 'old and forged' });
    const mine = deliver({ from: 'alice', to: 'bob', serverTs: 300, body: 'my reply' });
    client.history.mockResolvedValue({
      type: 'history',
      with: 'bob',
      messages: [older, forged, mine],
    });
    client.verifyDeliver.mockImplementation((d) =>
      Promise.resolve({ verification: d === forged ? 'bad_signature' : 'verified' }),
    );

    await controller.submit('/history 20');
    expect(client.history).toHaveBeenCalledWith('bob', { limit: 20 });
    expect(client.verifyDeliver.mock.calls.map(([d]) => d)).toEqual([older, forged, mine]);
    const shown = lines('bob').filter((l) => l.state.kind !== 'info');
    expect(shown.map((l) => [l.text, l.state])).toEqual([
      ['old and good', { kind: 'incoming', verification: 'verified' }],
      ['old and forged', { kind: 'incoming', verification: 'bad_signature' }],
      ['my reply', { kind: 'own', sent: 'stored' }],
      ['live', { kind: 'incoming', verification: 'verified' }],
    ]);
    expect(lines('bob').at(-1)?.text).toBe('loaded 3 earlier messages');
  });

  it('/history needs an open conversation, and shows a failure', async () => {
    const { controller, client, model, texts } = setup();
    await controller.submit('/history');
    expect(client.history).not.toHaveBeenCalled();
    expect(texts(STATUS_KEY)).toEqual(['open a conversation first (/msg NAME or /join #room)']);

    model.select('#ops');
    client.history.mockRejectedValue(
      new ClientRequestError('forbidden', 'not a member', 'history'),
    );
    await controller.submit('/history');
    expect(client.history).toHaveBeenCalledWith('#ops', { limit: 50 });
    expect(texts('#ops')).toEqual(['history: forbidden: not a member']);
  });

  describe('/whois', () => {
    const answer = (fingerprint: string) => ({
      type: 'key' as const,
      user: 'carol',
      public_key: 'AAAA',
      fingerprint,
    });

    it('says when the server key matches the pinned one', async () => {
      const { controller, client, texts } = setup({ carol: A });
      client.getKey.mockResolvedValue(answer(A));
      await controller.submit('/whois carol');
      expect(client.getKey).toHaveBeenCalledWith('carol');
      expect(texts(STATUS_KEY)).toEqual([
        `carol: the server gives key ${A}`,
        'carol: matches the pinned key',
      ]);
    });

    it('warns when the server key differs from the pinned one', async () => {
      const { controller, client, texts } = setup({ carol: A });
      client.getKey.mockResolvedValue(answer(B));
      await controller.submit('/whois carol');
      expect(texts(STATUS_KEY)[1]).toBe(
        `carol: ⚠ DIFFERS from the pinned key ${A} — verify out of band`,
      );
    });

    it('says when nothing is pinned yet', async () => {
      const { controller, client, texts } = setup();
      client.getKey.mockResolvedValue(answer(A));
      await controller.submit('/whois carol');
      expect(texts(STATUS_KEY)[1]).toBe('carol: no key pinned yet (pinned at their first message)');
    });

    it('shows a failed lookup', async () => {
      const { controller, client, texts } = setup();
      client.getKey.mockRejectedValue(
        new ClientRequestError('not_found', 'no such user', 'get_key'),
      );
      await controller.submit('/whois carol');
      expect(texts(STATUS_KEY)).toEqual(['whois carol: not_found: no such user']);
    });
  });

  it('/help lists the commands in the current conversation, /quit quits', async () => {
    const { controller, model, quit, texts } = setup();
    model.select('bob');
    await controller.submit('/help');
    expect(texts('bob')).toEqual(CHAT_HELP);
    expect(quit).not.toHaveBeenCalled();
    await controller.submit('/quit');
    expect(quit).toHaveBeenCalledTimes(1);
  });

  it('shows an invalid command as an error in the current conversation', async () => {
    const { controller, model, lines } = setup();
    model.select('bob');
    await controller.submit('/frobnicate');
    expect(lines('bob')).toEqual([
      expect.objectContaining({
        state: { kind: 'error' },
        text: expect.stringMatching(/unknown command/) as string,
      }),
    ]);
  });

  it('puts incoming messages into the model', () => {
    const { client, lines } = setup();
    client.emit('message', incoming({ from: 'bob', to: 'alice', body: 'psst' }, 'key_changed'));
    expect(lines('bob')).toEqual([
      expect.objectContaining({
        text: 'psst',
        state: { kind: 'incoming', verification: 'key_changed' },
      }),
    ]);
  });

  it('follows the connection state in model.status', () => {
    const { client, model, texts, lines } = setup();
    client.emit('state', 'connected', { sessionId: 's-1' });
    expect(model.status).toBe('connected');
    expect(texts(STATUS_KEY)).toEqual(['connected (session s-1)']);

    client.emit('state', 'reconnecting', {
      attempt: 2,
      delayMs: 1_500,
      error: new Error('read ECONNRESET'),
    });
    expect(model.status).toBe('reconnecting (attempt 2)…');
    expect(texts(STATUS_KEY).at(-1)).toBe(
      'connection lost (read ECONNRESET); reconnecting in 1.5 s',
    );

    client.emit('state', 'connecting', {});
    expect(model.status).toBe('connecting');

    client.emit('state', 'closed', { error: new Error('gave up') });
    expect(model.status).toBe('closed');
    expect(lines(STATUS_KEY).at(-1)).toMatchObject({
      text: 'disconnected: gave up',
      state: { kind: 'error' },
    });
  });

  it('shows client errors in the status conversation', () => {
    const { client, lines } = setup();
    client.emit('error', new Error('transcript write failed'));
    expect(lines(STATUS_KEY)).toEqual([
      expect.objectContaining({ text: 'transcript write failed', state: { kind: 'error' } }),
    ]);
  });
});
