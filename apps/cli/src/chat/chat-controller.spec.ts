import { generateKeyPairSync } from 'node:crypto';

import {
  ClientRequestError,
  type JoinedRoomsStore,
  MemoryJoinedRoomsStore,
  MemoryPeerKeyStore,
  type PeerKeyStore,
} from '@securechat/client';
import { exportSpki, fingerprint } from '@securechat/protocol';

import { FakeChatClient, deliver, incoming, keyAnswer } from '../../test/chat-fakes';
import { ChatController, RECENT_HISTORY, countOf } from './chat-controller';
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

interface SetupOptions {
  readonly pins?: Record<string, string>;
  readonly peerKeys?: PeerKeyStore;
  readonly joinedRooms?: JoinedRoomsStore;
  readonly now?: () => number;
}

/** Lets what runs in the background (a conversation's history) come in. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise the test settles by hand: a request the server has not answered yet. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup(options: SetupOptions = {}): Setup {
  const client = new FakeChatClient();
  const model = new ChatModel('alice');
  const quit = jest.fn();
  const controller = new ChatController({
    client: client.asClient(),
    model,
    peerKeys: options.peerKeys ?? new MemoryPeerKeyStore(options.pins ?? {}),
    ...(options.joinedRooms === undefined ? {} : { joinedRooms: options.joinedRooms }),
    quit,
    now: options.now ?? (() => 1_000),
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
    client.leave.mockRejectedValue(new ClientRequestError('rate_limited', 'slow down', 'leave'));
    await controller.submit('/leave');
    expect(model.current).toBe('#ops');
    expect(texts('#ops')).toEqual(['leave #ops: rate_limited: slow down']);
  });

  it('opens a conversation with its recent history, verified, in server-time order', async () => {
    const { controller, client, model, lines } = setup();
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

    await controller.submit('/msg bob');
    await settled();
    expect(client.history).toHaveBeenCalledWith('bob', { limit: RECENT_HISTORY });
    expect(client.verifyDeliver.mock.calls.map(([d]) => d)).toEqual([older, forged, mine]);
    expect(lines('bob').map((l) => [l.text, l.state])).toEqual([
      ['old and good', { kind: 'incoming', verification: 'verified' }],
      ['old and forged', { kind: 'incoming', verification: 'bad_signature' }],
      ['my reply', { kind: 'own', sent: 'stored' }],
      ['live', { kind: 'incoming', verification: 'verified' }],
    ]);
    expect(model.conversation('bob')?.unread).toBe(0);

    // Once per conversation: coming back to it asks nothing more.
    await controller.submit('/msg #ops');
    await controller.submit('/msg bob');
    expect(client.history.mock.calls.filter(([withWhom]) => withWhom === 'bob')).toHaveLength(1);
  });

  it('loads the history of a conversation selected without a command (Tab) once', async () => {
    const { client, model, lines } = setup();
    model.addIncoming(incoming({ from: 'carol', to: '#ops', serverTs: 900, body: 'live' }));
    const earlier = deliver({ from: 'carol', to: '#ops', serverTs: 800, body: 'earlier' });
    client.history.mockResolvedValue({ type: 'history', with: '#ops', messages: [earlier] });

    model.cycle(1);
    expect(model.current).toBe('#ops');
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.history).toHaveBeenCalledWith('#ops', { limit: RECENT_HISTORY });
    expect(lines('#ops').map((l) => l.text)).toEqual(['earlier', 'live']);

    model.cycle(1);
    model.cycle(1);
    expect(model.current).toBe('#ops');
    expect(client.history).toHaveBeenCalledTimes(1);
  });

  it('/msg selects the conversation at once: the next line goes there, history or not', async () => {
    const { controller, client, model, texts } = setup();
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 2_000, id: 'c-1' });
    model.select('bob');
    // The server (or the network) is slow to answer the history of carol.
    const history = deferred<Awaited<ReturnType<typeof client.history>>>();
    client.history.mockReturnValueOnce(history.promise);

    const opening = controller.submit('/msg carol');
    expect(model.current).toBe('carol');
    await controller.submit('secret');
    expect(client.send).toHaveBeenCalledTimes(1);
    expect(client.send).toHaveBeenCalledWith('carol', 'secret');
    await opening; // never waits for the history

    const earlier = deliver({ from: 'carol', to: 'alice', serverTs: 100, body: 'earlier' });
    history.resolve({ type: 'history', with: 'carol', messages: [earlier] });
    await settled();
    expect(texts('carol')).toEqual(['earlier', 'secret']);
    expect(texts('bob')).toEqual([]);
  });

  it('/msg NAME text queues the message at once, without waiting for the history', async () => {
    const { controller, client, model } = setup();
    client.history.mockReturnValueOnce(new Promise(() => undefined)); // never answered
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 2_000, id: 'c-1' });
    const sending = controller.submit('/msg bob hi');
    await settled();
    expect(model.current).toBe('bob');
    expect(client.send).toHaveBeenCalledWith('bob', 'hi');
    await sending;
  });

  it('/msg to a user that does not exist says so, leaves no entry and goes back', async () => {
    const { controller, client, model, lines } = setup();
    model.select('bob');
    client.history.mockRejectedValue(
      new ClientRequestError('not_found', 'no such user', 'history'),
    );
    await controller.submit('/msg nosuchuser');
    await settled();
    expect(model.conversation('nosuchuser')).toBeUndefined();
    expect(model.conversations.map((c) => c.key)).toEqual([STATUS_KEY, 'bob']);
    expect(model.current).toBe('bob');
    expect(client.send).not.toHaveBeenCalled();
    expect(lines('bob').at(-1)).toMatchObject({
      text: 'no such user: nosuchuser',
      state: { kind: 'error' },
    });
  });

  it("keeps a nonexistent user's conversation when something was sent to it, refusal shown", async () => {
    const { controller, client, model, texts, lines } = setup();
    model.select('bob');
    client.history.mockRejectedValue(
      new ClientRequestError('not_found', 'no such user', 'history'),
    );
    client.send.mockRejectedValue(new ClientRequestError('not_found', 'no such user', 'send'));
    await controller.submit('/msg nosuchuser are you there?');
    await settled();
    expect(client.send).toHaveBeenCalledWith('nosuchuser', 'are you there?');
    expect(model.current).toBe('nosuchuser');
    expect(lines('nosuchuser')[0]?.state).toEqual({
      kind: 'own',
      sent: 'failed',
      detail: 'not_found: no such user',
    });
    expect(texts('nosuchuser')).toEqual(['are you there?', 'no such user: nosuchuser']);
    expect(texts('bob')).toEqual([]);
  });

  it('does not take the user back from where they went before the refusal came', async () => {
    const { controller, client, model, texts } = setup();
    model.select('bob');
    const history = deferred<Awaited<ReturnType<typeof client.history>>>();
    client.history.mockReturnValueOnce(history.promise);
    void controller.submit('/msg nosuchuser');
    await controller.submit('/msg carol');
    history.reject(new ClientRequestError('not_found', 'no such user', 'history'));
    await settled();
    expect(model.conversation('nosuchuser')).toBeUndefined();
    expect(model.current).toBe('carol');
    expect(texts('carol')).toEqual(['no such user: nosuchuser']);
  });

  it('/msg to a room one is not in points to /join and leaves no entry behind', async () => {
    const { controller, client, model, texts } = setup();
    client.history.mockRejectedValue(
      new ClientRequestError('forbidden', 'not a member', 'history'),
    );
    const opening = controller.submit('/msg #secret');
    expect(model.current).toBe('#secret'); // until the server's answer
    await opening;
    await settled();
    expect(model.conversation('#secret')).toBeUndefined();
    expect(model.current).toBe(STATUS_KEY);
    expect(client.send).not.toHaveBeenCalled();
    expect(texts(STATUS_KEY)).toEqual(['you are not in #secret: /join #secret first']);
  });

  it('opens a conversation whose history failed otherwise, and still sends', async () => {
    const { controller, client, model, texts } = setup();
    client.history.mockRejectedValue(new Error('history: no answer within 30000 ms'));
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 2_000, id: 'c-1' });
    await controller.submit('/msg bob hi');
    await settled();
    expect(model.current).toBe('bob');
    expect(client.send).toHaveBeenCalledWith('bob', 'hi');
    expect(texts('bob')).toEqual(['hi', 'history: history: no answer within 30000 ms']);
    expect(client.history).toHaveBeenCalledTimes(1);
  });

  it('/history pages back from the oldest message shown, counting what it added', async () => {
    const { controller, client, model, lines } = setup();
    await controller.submit('/msg bob');
    const shown = deliver({ from: 'bob', to: 'alice', serverTs: 500, body: 'shown' });
    model.addIncoming({ deliver: shown, verification: 'verified' });
    const older = deliver({ from: 'bob', to: 'alice', serverTs: 100, body: 'older' });
    client.history.mockResolvedValue({ type: 'history', with: 'bob', messages: [older] });

    await controller.submit('/history 20');
    expect(client.history).toHaveBeenLastCalledWith('bob', { limit: 20, before: shown.msg_id });
    expect(lines('bob').map((l) => l.text)).toEqual(['older', 'shown', 'loaded 1 earlier message']);

    client.history.mockResolvedValue({ type: 'history', with: 'bob', messages: [] });
    await controller.submit('/history');
    expect(client.history).toHaveBeenLastCalledWith('bob', { limit: 50, before: older.msg_id });
    expect(lines('bob').at(-1)?.text).toBe('no earlier messages');
  });

  it('counts in words that read right', () => {
    expect(countOf(0, 'earlier message')).toBe('0 earlier messages');
    expect(countOf(1, 'earlier message')).toBe('1 earlier message');
    expect(countOf(2, 'earlier message')).toBe('2 earlier messages');
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
    expect(client.history).toHaveBeenLastCalledWith('#ops', { limit: 50 });
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
      const { controller, client, texts } = setup({ pins: { carol: A } });
      client.getKey.mockResolvedValue(answer(A));
      await controller.submit('/whois carol');
      expect(client.getKey).toHaveBeenCalledWith('carol');
      expect(texts(STATUS_KEY)).toEqual([
        `carol: the server gives key ${A}`,
        'carol: matches the pinned key',
      ]);
    });

    it('warns when the server key differs from the pinned one', async () => {
      const { controller, client, texts } = setup({ pins: { carol: A } });
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

  describe('/trust', () => {
    const oldKey = generateKeyPairSync('ed25519').publicKey;
    const newKey = generateKeyPairSync('ed25519').publicKey;
    const otherKey = generateKeyPairSync('ed25519').publicKey;
    const OLD = fingerprint(exportSpki(oldKey));
    const NEW = fingerprint(exportSpki(newKey));

    it('shows the old and the new key, and pins the new one when asked again', async () => {
      const peerKeys = new MemoryPeerKeyStore({ carol: OLD });
      const { controller, client, texts } = setup({ peerKeys });
      client.getKey.mockResolvedValue(keyAnswer('carol', newKey));

      await controller.submit('/trust carol');
      expect(client.getKey).toHaveBeenCalledWith('carol');
      expect(texts(STATUS_KEY)).toEqual([
        `carol: pinned key ${OLD}`,
        `carol: the server now gives ${NEW}`,
        'check it with carol out of band, then /trust carol again to pin it',
      ]);
      expect(await peerKeys.get('carol')).toBe(OLD);

      await controller.submit('/trust carol');
      expect(await peerKeys.get('carol')).toBe(NEW);
      expect(texts(STATUS_KEY).at(-1)).toBe(`carol: pinned ${NEW}, replacing ${OLD}`);

      await controller.submit('/trust carol');
      expect(texts(STATUS_KEY).at(-1)).toBe(`carol: already pinned to ${NEW}`);
    });

    it('does not pin a key that changed again between the two /trust', async () => {
      const peerKeys = new MemoryPeerKeyStore({ carol: OLD });
      const { controller, client, texts } = setup({ peerKeys });
      client.getKey.mockResolvedValueOnce(keyAnswer('carol', newKey));
      await controller.submit('/trust carol');
      client.getKey.mockResolvedValueOnce(keyAnswer('carol', otherKey));
      await controller.submit('/trust carol');
      expect(await peerKeys.get('carol')).toBe(OLD);
      expect(texts(STATUS_KEY).at(-2)).toBe(
        `carol: the server now gives ${fingerprint(exportSpki(otherKey))}`,
      );
    });

    it('with a fingerprint, pins that key at once, and refuses any other', async () => {
      const peerKeys = new MemoryPeerKeyStore({ carol: OLD });
      const { controller, client, model, texts } = setup({ peerKeys });
      model.select('carol');
      client.getKey.mockResolvedValue(keyAnswer('carol', newKey));

      await controller.submit(`/trust carol ${OLD}`);
      expect(await peerKeys.get('carol')).toBe(OLD);
      expect(texts('carol').at(-1)).toBe(
        `carol: the server gives ${NEW}, not ${OLD}; nothing changed (pinned key ${OLD})`,
      );

      await controller.submit(`/trust carol ${NEW}`);
      expect(await peerKeys.get('carol')).toBe(NEW);
      expect(texts('carol').at(-1)).toBe(`carol: pinned ${NEW}, replacing ${OLD}`);
    });

    it('shows a failed lookup', async () => {
      const { controller, client, texts } = setup();
      client.getKey.mockRejectedValue(
        new ClientRequestError('not_found', 'no such user', 'get_key'),
      );
      await controller.submit('/trust carol');
      expect(texts(STATUS_KEY)).toEqual(['trust carol: not_found: no such user']);
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
    client.emit('state', 'connecting', {});
    expect(model.status).toBe('connecting');
    client.emit('state', 'connected', { sessionId: 's-1' });
    expect(model.status).toBe('connected');
    expect(texts(STATUS_KEY)).toEqual(['connected (session s-1)']);

    client.emit('state', 'closed', { error: new Error('gave up') });
    expect(model.status).toBe('closed');
    expect(lines(STATUS_KEY).at(-1)).toMatchObject({
      text: 'disconnected: gave up',
      state: { kind: 'error' },
    });
  });

  describe('while reconnecting', () => {
    beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
    afterEach(() => jest.useRealTimers());

    it('reads "offline, retrying in N s", counting down, then "reconnecting…", and stays open', () => {
      const { client, model, quit, texts, controller } = setup({ now: () => Date.now() });
      // The client's events through an outage (see secure-chat-client.reconnect.spec.ts):
      // `reconnecting` for each wait, `connecting` with the same attempt when it dials.
      client.emit('state', 'connected', { sessionId: 's-1' });
      client.emit('state', 'reconnecting', {
        attempt: 1,
        delayMs: 2_500,
        maxAttempts: Infinity,
        error: new Error('read ECONNRESET'),
      });
      expect(model.status).toBe('offline, retrying in 3 s');
      jest.advanceTimersByTime(1_000);
      expect(model.status).toBe('offline, retrying in 2 s');
      jest.advanceTimersByTime(1_000);
      expect(model.status).toBe('offline, retrying in 1 s');

      // The wait is over: the attempt dials, and the handshake takes what it takes.
      jest.advanceTimersByTime(500);
      client.emit('state', 'connecting', { attempt: 1 });
      expect(model.status).toBe('offline, reconnecting…');
      jest.advanceTimersByTime(5_000);
      expect(model.status).toBe('offline, reconnecting…');

      // It failed: the next wait.
      client.emit('state', 'reconnecting', {
        attempt: 2,
        delayMs: 30_000,
        maxAttempts: Infinity,
        error: new Error('connect ECONNREFUSED'),
      });
      expect(model.status).toBe('offline, retrying in 30 s');
      jest.advanceTimersByTime(10_000);
      expect(model.status).toBe('offline, retrying in 20 s');

      // One line for the outage, however many attempts it takes.
      expect(texts(STATUS_KEY)).toEqual([
        'connected (session s-1)',
        'connection lost (read ECONNRESET); retrying',
      ]);
      expect(quit).not.toHaveBeenCalled();

      jest.advanceTimersByTime(20_000);
      client.emit('state', 'connecting', { attempt: 2 });
      expect(model.status).toBe('offline, reconnecting…');
      client.emit('state', 'connected', { sessionId: 's-2' });
      expect(model.status).toBe('connected');
      expect(jest.getTimerCount()).toBe(0);

      client.emit('state', 'reconnecting', { attempt: 1, delayMs: 1_000, maxAttempts: Infinity });
      expect(texts(STATUS_KEY).at(-1)).toBe('connection lost; retrying');
      controller.dispose();
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('joined rooms', () => {
    const SERVER = `sha256:${'5'.repeat(64)}`;
    const OTHER = `sha256:${'6'.repeat(64)}`;

    it('lists the rooms remembered for this user on this server at start', async () => {
      const store = new MemoryJoinedRoomsStore();
      await store.add(SERVER, 'alice', '#ops');
      await store.add(SERVER, 'alice', '#dev');
      await store.add(OTHER, 'alice', '#elsewhere');
      await store.add(SERVER, 'bob', '#bobs');
      const { controller, client, model, texts } = setup({ joinedRooms: store });
      await controller.restoreRooms(SERVER);
      expect(model.conversations.map((c) => c.key)).toEqual([STATUS_KEY, '#ops', '#dev']);
      expect(model.current).toBe(STATUS_KEY);
      expect(texts(STATUS_KEY)).toEqual(['your rooms: #ops, #dev']);
      // Their history waits until they are looked at.
      expect(client.history).not.toHaveBeenCalled();
    });

    it('remembers a /join and forgets a /leave', async () => {
      const store = new MemoryJoinedRoomsStore();
      const { controller, client } = setup({ joinedRooms: store });
      await controller.restoreRooms(SERVER);
      client.join.mockImplementation((room) =>
        Promise.resolve({ type: 'joined', room, members: ['alice'] }),
      );
      client.leave.mockImplementation((room) => Promise.resolve({ type: 'left', room }));
      await controller.submit('/join #ops');
      await controller.submit('/join #dev');
      expect(await store.list(SERVER, 'alice')).toEqual(['#ops', '#dev']);
      await controller.submit('/leave #ops');
      expect(await store.list(SERVER, 'alice')).toEqual(['#dev']);
      expect(await store.list(OTHER, 'alice')).toEqual([]);
    });

    it('forgets a room one is no longer in: /leave answered not_found, or history forbidden', async () => {
      const store = new MemoryJoinedRoomsStore();
      await store.add(SERVER, 'alice', '#gone');
      await store.add(SERVER, 'alice', '#left');
      const { controller, client, model, texts } = setup({ joinedRooms: store });
      await controller.restoreRooms(SERVER);

      client.leave.mockRejectedValue(new ClientRequestError('not_found', 'not a member', 'leave'));
      await controller.submit('/leave #left');
      expect(model.conversation('#left')).toBeUndefined();
      expect(texts(STATUS_KEY).at(-1)).toBe('left #left (you were no longer a member)');

      client.history.mockRejectedValue(
        new ClientRequestError('forbidden', 'not a member', 'history'),
      );
      await controller.submit('/msg #gone');
      await settled();
      expect(texts('#gone')).toEqual(['history: forbidden: not a member']);
      expect(await store.list(SERVER, 'alice')).toEqual([]);
    });

    it('shows a store that fails, and the chat goes on', async () => {
      const failing: JoinedRoomsStore = {
        list: () => Promise.reject(new Error('EACCES: permission denied')),
        add: () => Promise.reject(new Error('ENOSPC: no space left on device')),
        remove: () => Promise.resolve(),
      };
      const { controller, client, model, texts } = setup({ joinedRooms: failing });
      await controller.restoreRooms(SERVER);
      client.join.mockResolvedValue({ type: 'joined', room: '#ops', members: ['alice'] });
      await controller.submit('/join #ops');
      expect(model.current).toBe('#ops');
      expect(texts(STATUS_KEY)).toEqual([
        'joined rooms: EACCES: permission denied',
        'could not remember the rooms you are in: ENOSPC: no space left on device',
      ]);
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
