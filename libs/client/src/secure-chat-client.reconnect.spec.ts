/**
 * The client's state events through a lost connection and its reconnects, without a server:
 * the dial-and-handshake (dialSession) is replaced by one the test completes or fails by hand,
 * and the reconnect waits run on fake timers.
 */
import { generateKeyPairSync } from 'node:crypto';

import { type ClientSession, type LoginOk, PeerError } from '@securechat/protocol';

import { FakeTimers } from '../test/fake-timers';
import { type ClientState, type StateDetail } from './client-options';
import { MemoryKnownServersStore } from './known-servers';
import { MemoryPeerKeyStore } from './peer-keys';
import { SecureChatClient } from './secure-chat-client';
import { type DialSessionOptions, dialSession } from './session-opener';
import { type SocketDriver, type SocketDriverHandlers } from './socket-driver';

jest.mock('./session-opener', () => ({
  ...jest.requireActual<Record<string, unknown>>('./session-opener'),
  dialSession: jest.fn(),
}));

const dial = dialSession as jest.MockedFunction<typeof dialSession>;
const SERVER = `sha256:${'5'.repeat(64)}`;

/** One dial the client made: the test lets its handshake succeed, or fail. */
interface PendingDial {
  /** The handshake is done: returns the handlers through which the connection ends. */
  succeed(sessionId: string): SocketDriverHandlers;
  fail(error: Error): void;
}

function fakeDriver(): SocketDriver {
  return {
    failure: undefined,
    destroyed: false,
    writable: true,
    write: () => undefined,
    destroy: () => undefined,
    startKeepAlive: () => undefined,
    stopKeepAlive: () => undefined,
  } as unknown as SocketDriver;
}

function fakeSession(sessionId: string): ClientSession {
  return {
    sessionId,
    username: 'alice',
    h2: Buffer.alloc(32),
    state: 'open',
  } as unknown as ClientSession;
}

function setup() {
  const dials: PendingDial[] = [];
  dial.mockReset();
  dial.mockImplementation(
    (options: DialSessionOptions) =>
      new Promise<LoginOk>((resolve, reject) => {
        dials.push({
          succeed: (sessionId) => {
            const handlers = options.adopt(
              {
                session: fakeSession(sessionId),
                loginOk: {
                  type: 'login_ok',
                  username: 'alice',
                  session_id: sessionId,
                  server_time: 1,
                },
                serverFingerprint: SERVER,
              },
              fakeDriver(),
            );
            resolve({ type: 'login_ok', username: 'alice', session_id: sessionId, server_time: 1 });
            return handlers;
          },
          fail: reject,
        });
      }),
  );
  const timers = new FakeTimers();
  const client = new SecureChatClient({
    host: '127.0.0.1',
    port: 1,
    username: 'alice',
    password: 'a very secret password',
    privateKey: generateKeyPairSync('ed25519').privateKey,
    trust: { store: new MemoryKnownServersStore(), policy: { fingerprint: SERVER } },
    peerKeys: new MemoryPeerKeyStore(),
    reconnect: { initialDelayMs: 1_000, maxDelayMs: 10_000 },
    random: () => 0.999_999,
    timers,
  });
  const events: [ClientState, StateDetail][] = [];
  client.on('state', (state, detail) => events.push([state, detail]));
  const errors: Error[] = [];
  client.on('error', (error) => errors.push(error));
  /** The dial the client has started by now (it first reads its trust store). */
  const nextDial = async (): Promise<PendingDial> => {
    for (let i = 0; i < 10 && dials.length === 0; i++) await Promise.resolve();
    const pending = dials.shift();
    if (pending === undefined) throw new Error('the client did not dial');
    return pending;
  };
  return { client, timers, events, errors, nextDial };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('SecureChatClient reconnecting', () => {
  it('goes reconnecting → connecting (when the wait is over) → reconnecting → connecting → connected', async () => {
    const { client, timers, events, errors, nextDial } = setup();
    const connecting = client.connect();
    const first = (await nextDial()).succeed('s-1');
    await connecting;
    expect(events.map(([state]) => state)).toEqual(['connecting', 'connected']);

    first.close(undefined); // the connection is lost
    expect(events.slice(2)).toEqual([
      ['reconnecting', expect.objectContaining({ attempt: 1, delayMs: 1_000 })],
    ]);

    // Nothing is dialled while the wait lasts: the state stays `reconnecting`.
    timers.advance(999);
    await settled();
    expect(client.state).toBe('reconnecting');
    expect(dial).toHaveBeenCalledTimes(1);

    timers.advance(1);
    expect(client.state).toBe('connecting');
    expect(events.at(-1)).toEqual(['connecting', { attempt: 1 }]);
    (await nextDial()).fail(new Error('connect ECONNREFUSED'));
    await settled();
    expect(events.slice(3)).toEqual([
      ['connecting', { attempt: 1 }],
      ['reconnecting', expect.objectContaining({ attempt: 2, delayMs: 2_000 })],
    ]);

    timers.advance(2_000);
    expect(events.at(-1)).toEqual(['connecting', { attempt: 2 }]);
    (await nextDial()).succeed('s-2');
    await settled();
    expect(events.map(([state, detail]) => [state, detail.attempt])).toEqual([
      ['connecting', undefined],
      ['connected', undefined],
      ['reconnecting', 1],
      ['connecting', 1],
      ['reconnecting', 2],
      ['connecting', 2],
      ['connected', undefined],
    ]);
    expect(client.sessionId).toBe('s-2');
    // A failed attempt is its own `reconnecting`, not an error.
    expect(errors).toEqual([]);
  });

  it('still reports a final failure of a reconnect as an error, and ends closed', async () => {
    const { client, timers, events, errors, nextDial } = setup();
    const connecting = client.connect();
    const first = (await nextDial()).succeed('s-1');
    await connecting;
    first.close(undefined);
    timers.advance(1_000);
    expect(client.state).toBe('connecting');

    // E.g. the account was disabled while the connection was down.
    const refused = new PeerError('auth_failed', 'authentication failed');
    (await nextDial()).fail(refused);
    await settled();
    expect(events.map(([state]) => state)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connecting',
      'closed',
    ]);
    expect(events.at(-1)?.[1].error).toBe(refused);
    expect(errors).toEqual([refused]);
    expect(timers.waiting).toEqual([]);
  });
});
