import { generateKeyPairSync } from 'node:crypto';

import { type ErrorMessage, type SendMessage, verifyMessage } from '@securechat/protocol';

import { FakeTimers } from '../test/fake-timers';
import {
  ClientClosedError,
  ClientRequestError,
  PendingLimitError,
  RequestTimeoutError,
} from './client-errors';
import {
  type OutboxMessage,
  type OutboxWire,
  RequestTracker,
  type RequestTrackerOptions,
  signedSend,
} from './request-tracker';

function sendMessage(id: string, body = id): SendMessage {
  return { type: 'send', id, to: 'bob', body, ts: 1, sig: 'c2ln' };
}

/** A connection that records what was sealed and can refuse more, like a full socket. */
class Wire implements OutboxWire {
  writable = true;
  readonly sent: OutboxMessage[] = [];
  /** Messages whose sealing throws. */
  readonly refuse = new Set<string>();

  seal(message: OutboxMessage): Buffer {
    const name = label(message);
    if (this.refuse.has(name)) throw new Error(`cannot seal ${name}`);
    return Buffer.from(JSON.stringify(message));
  }

  write(bytes: Buffer): void {
    this.sent.push(JSON.parse(bytes.toString('utf8')) as OutboxMessage);
  }

  /** What went out, in order, by a short label, then forgets it. */
  take(): string[] {
    return this.sent.splice(0).map(label);
  }
}

function label(message: OutboxMessage): string {
  switch (message.type) {
    case 'send':
      return `send:${message.id}`;
    case 'delivered':
      return `delivered:${message.msg_id}`;
    default:
      return message.type;
  }
}

/** A tracker whose wakes flush into `wire` while `connected`, as the client's pump does. */
function setup(overrides: Partial<RequestTrackerOptions> = {}) {
  const timers = new FakeTimers();
  const wire = new Wire();
  const desyncs: Error[] = [];
  const errors: Error[] = [];
  const state = { connected: true };
  const tracker: RequestTracker = new RequestTracker({
    requestTimeoutMs: 1_000,
    timers,
    onWake: () => {
      if (state.connected) tracker.flush(wire);
    },
    onDesync: (error) => desyncs.push(error),
    onError: (error) => errors.push(error),
    ...overrides,
  });
  return { tracker, timers, wire, desyncs, errors, state };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

function outcome<T>(promise: Promise<T>): { value?: T; error?: unknown } {
  const result: { value?: T; error?: unknown } = {};
  promise.then(
    (value) => (result.value = value),
    (error: unknown) => (result.error = error),
  );
  return result;
}

describe('RequestTracker', () => {
  it('matches acks to sends by id, in whatever order they come', async () => {
    const { tracker, wire } = setup();
    const a = tracker.send(() => sendMessage('a'));
    const b = tracker.send(() => sendMessage('b'));
    expect(wire.take()).toEqual(['send:a', 'send:b']);
    expect(tracker.onAck({ type: 'ack', id: 'b', msg_id: 'm2', server_ts: 2 })).toBe(true);
    expect(tracker.onAck({ type: 'ack', id: 'a', msg_id: 'm1', server_ts: 1 })).toBe(true);
    await expect(a).resolves.toEqual({ msgId: 'm1', serverTs: 1, id: 'a' });
    await expect(b).resolves.toEqual({ msgId: 'm2', serverTs: 2, id: 'b' });
    // A repeated ack (after a resend) answers nobody.
    expect(tracker.onAck({ type: 'ack', id: 'a', msg_id: 'm1', server_ts: 1 })).toBe(false);
    expect(tracker.pendingSends).toBe(0);
  });

  it('keeps one id-less request in flight and matches answers by type (§10.1)', async () => {
    const { tracker, wire } = setup();
    const join = tracker.request({ type: 'join', room: '#a' }, 'joined');
    const ping = tracker.request({ type: 'ping' }, 'pong');
    expect(wire.take()).toEqual(['join']); // the ping waits for the join's answer
    expect(tracker.onAnswer({ type: 'pong' })).toBe(false); // not what is in flight
    expect(tracker.onAnswer({ type: 'joined', room: '#a', members: ['alice'] })).toBe(true);
    expect(wire.take()).toEqual(['ping']);
    expect(tracker.onAnswer({ type: 'pong' })).toBe(true);
    await expect(join).resolves.toMatchObject({ type: 'joined', room: '#a' });
    await expect(ping).resolves.toEqual({ type: 'pong' });
    expect(tracker.onAnswer({ type: 'pong' })).toBe(false); // nothing in flight
  });

  it('matches an error to its send by id, or to the request in flight', async () => {
    const { tracker, wire } = setup();
    const send = tracker.send(() => sendMessage('a'));
    const join = tracker.request({ type: 'join', room: '#x' }, 'joined');
    const ping = tracker.request({ type: 'ping' }, 'pong');
    wire.take();
    const forbidden: ErrorMessage = { type: 'error', code: 'forbidden', message: 'no', id: 'a' };
    expect(tracker.onError(forbidden)).toBe(true);
    await expect(send).rejects.toMatchObject({ code: 'forbidden', request: 'send', id: 'a' });
    expect(tracker.onError({ type: 'error', code: 'not_found', message: 'no room' })).toBe(true);
    const error = await join.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientRequestError);
    expect(error).toMatchObject({ code: 'not_found', request: 'join' });
    expect(wire.take()).toEqual(['ping']); // the next request went out
    // A connection-level error answers nothing: the client reports it, the ping still waits.
    expect(tracker.onError({ type: 'error', code: 'shutting_down', message: 'bye' })).toBe(false);
    expect(tracker.onError({ type: 'error', code: 'bad_request', message: '?', id: 'zz' })).toBe(
      false,
    );
    expect(tracker.onAnswer({ type: 'pong' })).toBe(true);
    await expect(ping).resolves.toEqual({ type: 'pong' });
  });

  it('sends again after a lost connection what was written but not answered, first', async () => {
    const { tracker, wire, state } = setup();
    const a = tracker.send(() => sendMessage('a'));
    const b = tracker.send(() => sendMessage('b'));
    const join = tracker.request({ type: 'join', room: '#r' }, 'joined');
    const ping = tracker.request({ type: 'ping' }, 'pong');
    tracker.confirm('m0');
    expect(wire.take()).toEqual(['send:a', 'send:b', 'join', 'delivered:m0']);
    tracker.onAck({ type: 'ack', id: 'a', msg_id: 'm1', server_ts: 1 });

    state.connected = false;
    tracker.connectionLost();
    const c = tracker.send(() => sendMessage('c')); // queued while disconnected
    tracker.confirm('m9');
    expect(wire.take()).toEqual([]);

    state.connected = true;
    tracker.resume();
    // b was written without an ack: it leads; the join goes again before the ping.
    expect(wire.take()).toEqual(['send:b', 'send:c', 'delivered:m9', 'join']);
    tracker.onAnswer({ type: 'joined', room: '#r', members: [] });
    expect(wire.take()).toEqual(['ping']);
    tracker.onAnswer({ type: 'pong' });
    tracker.onAck({ type: 'ack', id: 'b', msg_id: 'm2', server_ts: 2 });
    tracker.onAck({ type: 'ack', id: 'c', msg_id: 'm3', server_ts: 3 });
    await expect(Promise.all([a, b, c, join, ping])).resolves.toHaveLength(5);
  });

  it('lets bye go only after the last answer; requests not yet sent are refused', async () => {
    const { tracker, wire } = setup();
    const join = tracker.request({ type: 'join', room: '#r' }, 'joined');
    const ping = outcome(tracker.request({ type: 'ping' }, 'pong'));
    const send = tracker.send(() => sendMessage('a'));
    expect(wire.take()).toEqual(['join', 'send:a']);
    tracker.startClosing();
    await settled();
    expect(ping.error).toBeInstanceOf(ClientClosedError);
    expect(tracker.byeDue).toBe(false); // the join is in flight
    expect(tracker.onAnswer({ type: 'joined', room: '#r', members: [] })).toBe(true);
    expect(tracker.byeDue).toBe(true);
    expect(wire.take()).toEqual([]); // the refused ping never went out
    await expect(join).resolves.toMatchObject({ type: 'joined' });
    await expect(tracker.request({ type: 'ping' }, 'pong')).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    // A send may still be answered after bye (the server answers before its receipt).
    tracker.onAck({ type: 'ack', id: 'a', msg_id: 'm1', server_ts: 1 });
    await expect(send).resolves.toMatchObject({ msgId: 'm1' });
  });

  it('waits with bye while messages are queued behind a full socket', () => {
    const { tracker, wire } = setup();
    wire.writable = false;
    tracker.confirm('m1');
    tracker.startClosing();
    expect(tracker.byeDue).toBe(false);
    wire.writable = true;
    tracker.flush(wire);
    expect(wire.take()).toEqual(['delivered:m1']);
    expect(tracker.byeDue).toBe(true);
  });

  it('stops sealing while the socket is full and goes on where it stopped', () => {
    const { tracker, wire } = setup();
    void tracker.send(() => sendMessage('a'));
    wire.writable = false;
    void tracker.send(() => sendMessage('b'));
    void tracker.send(() => sendMessage('c'));
    expect(wire.take()).toEqual(['send:a']);
    wire.writable = true;
    tracker.flush(wire);
    expect(wire.take()).toEqual(['send:b', 'send:c']);
  });

  it('times out a send, which is then neither sent nor matched', async () => {
    const { tracker, wire, timers, state } = setup();
    state.connected = false;
    const send = outcome(tracker.send(() => sendMessage('late')));
    timers.advance(999);
    await settled();
    expect(send.error).toBeUndefined();
    timers.advance(1);
    await settled();
    expect(send.error).toBeInstanceOf(RequestTimeoutError);
    expect(send.error).toMatchObject({ request: 'send', timeoutMs: 1_000 });
    state.connected = true;
    tracker.resume();
    expect(wire.take()).toEqual([]);
    expect(tracker.onAck({ type: 'ack', id: 'late', msg_id: 'm', server_ts: 1 })).toBe(false);
  });

  it('a request timing out in flight desynchronises the connection; a queued one just ends', async () => {
    const { tracker, wire, timers, desyncs } = setup();
    const first = outcome(tracker.request({ type: 'ping', n: 1 }, 'pong'));
    timers.advance(500);
    const second = outcome(tracker.request({ type: 'ping', n: 2 }, 'pong'));
    expect(wire.take()).toEqual(['ping']);
    timers.advance(500);
    await settled();
    expect(first.error).toBeInstanceOf(RequestTimeoutError);
    // Its answer may still come and would be taken for the next one's: a new connection.
    expect(desyncs).toEqual([first.error]);
    expect(wire.take()).toEqual([]); // nothing more on this connection
    timers.advance(500);
    await settled();
    expect(second.error).toBeInstanceOf(RequestTimeoutError);
    expect(desyncs).toHaveLength(1);
  });

  it('refuses sends beyond the pending limit without preparing (signing) them', async () => {
    const { tracker } = setup({ maxPendingSends: 2 });
    void tracker.send(() => sendMessage('a'));
    void tracker.send(() => sendMessage('b'));
    const prepare = jest.fn(() => sendMessage('c'));
    await expect(tracker.send(prepare)).rejects.toBeInstanceOf(PendingLimitError);
    expect(prepare).not.toHaveBeenCalled();
    tracker.onAck({ type: 'ack', id: 'a', msg_id: 'm1', server_ts: 1 });
    const third = outcome(tracker.send(() => sendMessage('c')));
    await settled();
    expect(third.error).toBeUndefined(); // room again after an ack
    expect(tracker.pendingSends).toBe(2);
  });

  it('rejects a send whose preparation throws, and fails only what cannot be sealed', async () => {
    const { tracker, wire, errors } = setup();
    const boom = new Error('unpaired surrogate');
    await expect(
      tracker.send(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    wire.refuse.add('send:bad').add('join').add('delivered:m1');
    const bad = outcome(tracker.send(() => sendMessage('bad')));
    const join = outcome(tracker.request({ type: 'join', room: '#r' }, 'joined'));
    const ping = tracker.request({ type: 'ping' }, 'pong');
    tracker.confirm('m1');
    tracker.send(() => sendMessage('good')).catch(() => undefined);
    await settled();
    expect((bad.error as Error).message).toBe('cannot seal send:bad');
    expect((join.error as Error).message).toBe('cannot seal join');
    expect(errors.map((e) => e.message)).toEqual(['cannot seal delivered:m1']);
    expect(wire.take()).toEqual(['ping', 'send:good']);
    tracker.onAnswer({ type: 'pong' });
    await expect(ping).resolves.toEqual({ type: 'pong' });
  });

  it('failAll rejects everything still waiting and forgets the queue', async () => {
    const { tracker, wire, state, timers } = setup();
    state.connected = false;
    const send = outcome(tracker.send(() => sendMessage('a')));
    const first = outcome(tracker.request({ type: 'ping' }, 'pong'));
    const second = outcome(tracker.request({ type: 'join', room: '#r' }, 'joined'));
    const closed = new ClientClosedError('the client is closed');
    tracker.failAll(closed);
    await settled();
    expect([send.error, first.error, second.error]).toEqual([closed, closed, closed]);
    expect(tracker.pendingSends).toBe(0);
    expect(timers.waiting).toEqual([]); // no timeout left to fire
    state.connected = true;
    tracker.resume();
    expect(wire.take()).toEqual([]);
  });
});

describe('signedSend (§7.3)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');

  it('signs what it sends, under a fresh id, to a user or a room', () => {
    const a = signedSend(privateKey, 'alice', 'bob', 'hi');
    const b = signedSend(privateKey, 'alice', '#ops', 'hi');
    expect(a.id).not.toBe(b.id);
    for (const m of [a, b]) {
      expect(verifyMessage(publicKey, { from: 'alice', ...m }, m.sig)).toBe(true);
      expect(verifyMessage(publicKey, { from: 'mallory', ...m }, m.sig)).toBe(false);
    }
  });

  it('refuses a recipient that is neither a username nor a #room', () => {
    for (const to of ['', 'no spaces', '#', 'x'.repeat(200)]) {
      expect(() => signedSend(privateKey, 'alice', to, 'hi')).toThrow(TypeError);
    }
  });
});
