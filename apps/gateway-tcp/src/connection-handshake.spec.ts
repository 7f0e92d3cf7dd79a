/**
 * ConnectionHandshake with a real libs/protocol ClientHandshake on the other end, a real
 * LoginGate over a fake auth service whose decisions the test releases, and jest's fake
 * timers: the hello and login timeouts (PROTOCOL.md §10 item 10), the early-frame rule (PROTOCOL.md
 * §10 item 14), and how each ending is counted.
 */
import { generateKeyPairSync } from 'node:crypto';

import { type LoggerService } from '@nestjs/common';
import { type LoginCommand, type LoginResult, NoopMetricsRepository } from '@securechat/core';
import {
  type ClientHandshake,
  type ClientHandshakeStep,
  exportSpki,
  fingerprint,
  FrameDecoder,
  type LoginDecision,
  parseJsonObject,
  PeerError,
  type RawFrame,
  type RecordEvent,
  ServerSession,
  toBase64,
} from '@securechat/protocol';

import { ConnectionHandshake } from './connection-handshake';
import { LoginGate } from './login-gate';
import { aliceHandshake } from '../test/alice-handshake';

const HELLO_TIMEOUT_MS = 500;
const HANDSHAKE_TIMEOUT_MS = 2_000;

const serverKey = generateKeyPairSync('ed25519');
const userKey = generateKeyPairSync('ed25519');
const identity = {
  privateKey: serverKey.privateKey,
  fingerprint: fingerprint(exportSpki(serverKey.publicKey)),
};
const okResult: LoginResult = {
  ok: true,
  username: 'alice',
  publicKey: toBase64(exportSpki(userKey.publicKey)),
};

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

const frameOf = (bytes: Buffer): RawFrame => {
  const [frame, ...rest] = new FrameDecoder().push(bytes);
  if (!frame || rest.length > 0) throw new Error('expected exactly one frame');
  return frame;
};

function harness(gate?: LoginGate) {
  const written: Buffer[] = [];
  const output = {
    write: jest.fn((bytes: Buffer) => void written.push(bytes)),
    pauseReading: jest.fn(),
  };
  const metrics = new NoopMetricsRepository();
  const handshakeMetric = jest.spyOn(metrics, 'handshake');
  const authFailure = jest.spyOn(metrics, 'authFailure');
  const decisions: Deferred<LoginResult>[] = [];
  const auth = {
    login: jest.fn<Promise<LoginResult>, [LoginCommand]>(() => {
      const decision = deferred<LoginResult>();
      decisions.push(decision);
      return decision.promise;
    }),
  };
  const limiter = {
    tryStartSession: jest.fn<'ok' | 'server_full' | 'user_limit', [string]>(() => 'ok'),
    endSession: jest.fn<void, [string]>(),
  };
  const logger: LoggerService = { log: jest.fn(), error: jest.fn(), warn: jest.fn() };
  /** Like ClientConnection: the connection is closed once the handshake failed or closed. */
  const connection = { closed: false };
  const login =
    gate ??
    new LoginGate({
      auth,
      limiter,
      metrics,
      logger,
      now: () => Date.now(),
      remoteAddress: '192.0.2.7',
      closed: () => connection.closed,
    });
  const established = jest.fn<void, [ServerSession]>();
  const failed = jest.fn<void, [string]>(() => {
    connection.closed = true;
  });
  const onRecord = jest.fn<void, [RecordEvent]>();
  const handshake = new ConnectionHandshake({
    identity,
    sessionId: 'sess-1',
    limits: {
      maxFrame: 65_536,
      maxBodyBytes: 16_384,
      helloTimeoutMs: HELLO_TIMEOUT_MS,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    },
    login,
    metrics,
    now: () => Date.now(),
    onRecord,
    output,
    established,
    failed,
  });
  const decoder = new FrameDecoder();
  return {
    handshake,
    login,
    output,
    handshakeMetric,
    authFailure,
    auth,
    limiter,
    established,
    failed,
    onRecord,
    connection,
    /** Auth's decision on the n-th login. */
    decide: (result: LoginResult, n = 0) => decisions[n]!.resolve(result),
    /** The frames written since the last take. */
    take: (): RawFrame[] => decoder.push(Buffer.concat(written.splice(0))),
    /** Closes like ClientConnection does: the handshake hears of it, the gate sees it. */
    close: () => {
      connection.closed = true;
      handshake.closed();
    },
  };
}

type Harness = ReturnType<typeof harness>;

function newClient(): ClientHandshake {
  return aliceHandshake(userKey.privateKey);
}

/** Says client_hello, reads server_hello and server_auth: returns the login frame. */
async function reachLogin(h: Harness): Promise<{ client: ClientHandshake; login: RawFrame }> {
  const client = newClient();
  await h.handshake.receive(frameOf(client.start()), () => false);
  const frames = h.take();
  expect(frames).toHaveLength(2);
  let login: RawFrame | undefined;
  for (const frame of frames) {
    const step = await client.receive(frame);
    if (step.error) throw step.error;
    if (step.send.length > 0) login = frameOf(Buffer.concat(step.send));
  }
  return { client, login: login! };
}

/** The client reads the server's one answer to its login. */
async function loginReply(h: Harness, client: ClientHandshake): Promise<ClientHandshakeStep> {
  const frames = h.take();
  expect(frames).toHaveLength(1);
  return client.receive(frames[0]!);
}

const plaintextError = (frame: RawFrame) => parseJsonObject(frame.body);

beforeEach(() => {
  jest.useFakeTimers({ now: 1_700_000_000_000 });
});

afterEach(() => {
  jest.clearAllTimers();
  jest.useRealTimers();
});

describe('ConnectionHandshake', () => {
  describe('hello timeout', () => {
    it('without client_hello in helloTimeoutMs: handshake_timeout, failed, counted as timeout', () => {
      const h = harness();
      h.handshake.start();
      jest.advanceTimersByTime(HELLO_TIMEOUT_MS - 1);
      expect(h.output.write).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.authFailure).not.toHaveBeenCalled();

      jest.advanceTimersByTime(1);
      const frames = h.take();
      expect(frames).toHaveLength(1);
      expect(plaintextError(frames[0]!)).toMatchObject({
        type: 'error',
        code: 'handshake_timeout',
      });
      expect(h.failed).toHaveBeenCalledTimes(1);
      expect(h.failed).toHaveBeenCalledWith(expect.stringContaining('handshake_timeout'));
      expect(h.authFailure).toHaveBeenCalledTimes(1);
      expect(h.authFailure).toHaveBeenCalledWith('timeout');
      expect(h.handshakeMetric).not.toHaveBeenCalled();

      // The login timer, still set, finds the handshake over: nothing more.
      jest.advanceTimersByTime(HANDSHAKE_TIMEOUT_MS * 2);
      expect(h.take()).toHaveLength(0);
      expect(h.authFailure).toHaveBeenCalledTimes(1);

      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('timeout');
    });

    it('client_hello clears the hello timer; the login timer still runs from accept', async () => {
      const h = harness();
      h.handshake.start();
      jest.advanceTimersByTime(HELLO_TIMEOUT_MS - 100);
      const client = newClient();
      await h.handshake.receive(frameOf(client.start()), () => false);
      expect(h.take()).toHaveLength(2); // server_hello, server_auth

      jest.advanceTimersByTime(HANDSHAKE_TIMEOUT_MS - (HELLO_TIMEOUT_MS - 100) - 1);
      expect(h.output.write).toHaveBeenCalledTimes(2);
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.authFailure).not.toHaveBeenCalled();

      jest.advanceTimersByTime(1);
      const frames = h.take();
      expect(frames).toHaveLength(1);
      expect(plaintextError(frames[0]!)).toMatchObject({
        type: 'error',
        code: 'handshake_timeout',
      });
      expect(h.failed).toHaveBeenCalledTimes(1);
      expect(h.authFailure).toHaveBeenCalledWith('timeout');
      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledWith('timeout');
      expect(h.auth.login).not.toHaveBeenCalled();
    });

    it('a frame waiting behind client_hello is not an early frame', async () => {
      const h = harness();
      h.handshake.start();
      await h.handshake.receive(frameOf(newClient().start()), () => true);
      expect(h.output.pauseReading).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.take()).toHaveLength(2);
    });
  });

  describe('login timeout', () => {
    it('login within handshakeTimeoutMs clears the timer; auth may take longer', async () => {
      const h = harness();
      h.handshake.start();
      const { client, login } = await reachLogin(h);
      jest.advanceTimersByTime(HANDSHAKE_TIMEOUT_MS - 1);
      const done = h.handshake.receive(login, () => false);
      expect(h.handshake.verifying).toBe(true);
      expect(jest.getTimerCount()).toBe(0); // neither the hello nor the login timer is left

      jest.advanceTimersByTime(HANDSHAKE_TIMEOUT_MS * 5);
      expect(h.output.write).toHaveBeenCalledTimes(2); // nothing since server_auth
      expect(h.authFailure).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();

      h.decide(okResult);
      await done;
      expect(h.established).toHaveBeenCalledTimes(1);
      const reply = await loginReply(h, client);
      expect(reply.session).toBeDefined();
    });
  });

  describe('a login auth accepts', () => {
    it('calls established once with the session and counts ok', async () => {
      const h = harness();
      h.handshake.start();
      const { client, login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      expect(h.auth.login).toHaveBeenCalledTimes(1);
      h.decide(okResult);
      await done;

      expect(h.established).toHaveBeenCalledTimes(1);
      const session = h.established.mock.calls[0]![0];
      expect(session).toBeInstanceOf(ServerSession);
      expect(session.username).toBe('alice');
      expect(session.sessionId).toBe('sess-1');
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('ok');
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.login.holdsSlot).toBe(true);
      expect(h.onRecord).toHaveBeenCalledWith(
        expect.objectContaining({ direction: 's2c', sequence: 0, chained: true }),
      );
      expect(jest.getTimerCount()).toBe(0);

      const reply = await loginReply(h, client);
      expect(reply.error).toBeUndefined();
      expect(reply.loginOk).toMatchObject({ username: 'alice', session_id: 'sess-1' });
    });

    it('ignores abort and closed() after the end', async () => {
      const h = harness();
      h.handshake.start();
      const { login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      h.decide(okResult);
      await done;
      h.take();

      h.handshake.abort('shutting_down', 'going away');
      h.handshake.earlyFrame();
      h.handshake.closed();
      expect(h.take()).toHaveLength(0);
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.established).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('ok');
    });
  });

  describe('a login auth refuses', () => {
    it('writes the error, calls failed, and closed() counts it refused', async () => {
      const h = harness();
      h.handshake.start();
      const { client, login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      h.decide({ ok: false, code: 'rate_limited', retryAfter: 7 });
      await done;
      expect(h.established).not.toHaveBeenCalled();
      expect(h.failed).toHaveBeenCalledTimes(1);
      expect(h.failed).toHaveBeenCalledWith(expect.stringContaining('rate_limited'));
      expect(h.authFailure).toHaveBeenCalledWith('rate_limited');
      const reply = await loginReply(h, client);
      expect(reply.error).toBeInstanceOf(PeerError);
      expect(reply.error).toMatchObject({ code: 'rate_limited', retryAfter: 7 });

      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('refused');
    });
  });

  describe('frames before the login decision (§10 item 14)', () => {
    it('a frame already waiting behind login: unexpected_message, reading paused, never established', async () => {
      const h = harness();
      h.handshake.start();
      const { client, login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => true);

      expect(h.output.pauseReading).toHaveBeenCalledTimes(1);
      expect(h.failed).toHaveBeenCalled();
      expect(h.failed.mock.calls[0]![0]).toContain('unexpected_message');
      const reply = await loginReply(h, client); // the error is a record: keys exist
      expect(reply.error).toBeInstanceOf(PeerError);
      expect(reply.error).toMatchObject({ code: 'unexpected_message' });

      h.decide(okResult); // auth says yes, too late
      await done;
      expect(h.established).not.toHaveBeenCalled();
      expect(h.handshakeMetric).not.toHaveBeenCalledWith('ok');
      expect(h.take()).toHaveLength(0); // no login_ok after the error
      expect(h.limiter.tryStartSession).not.toHaveBeenCalled();
      expect(h.login.holdsSlot).toBe(false);

      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');
    });

    it('earlyFrame() while verifying does the same', async () => {
      const h = harness();
      h.handshake.start();
      const { client, login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      expect(h.handshake.verifying).toBe(true);
      expect(h.output.pauseReading).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();

      h.handshake.earlyFrame();
      expect(h.output.pauseReading).toHaveBeenCalledTimes(1);
      expect(h.failed).toHaveBeenCalled();
      expect(h.failed.mock.calls[0]![0]).toContain('unexpected_message');
      const reply = await loginReply(h, client);
      expect(reply.error).toMatchObject({ code: 'unexpected_message' });

      h.decide(okResult);
      await done;
      expect(h.established).not.toHaveBeenCalled();
      expect(h.take()).toHaveLength(0);
      expect(h.login.holdsSlot).toBe(false);
    });
  });

  describe('the connection closing during the handshake', () => {
    it('closed() while verifying: the later decision is ignored, counted as failed', async () => {
      const h = harness();
      h.handshake.start();
      const { login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');
      expect(h.take()).toHaveLength(0); // nothing is written to a closed connection

      h.decide(okResult);
      await done;
      expect(h.established).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.take()).toHaveLength(0);
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.login.holdsSlot).toBe(false);

      h.handshake.closed();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
    });

    it('closed() while verifying, then a refusal: still one result, and no answer written', async () => {
      const h = harness();
      h.handshake.start();
      const { login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      h.close();
      h.decide({ ok: false, code: 'auth_failed' });
      await done;
      expect(h.take()).toHaveLength(0);
      expect(h.failed).not.toHaveBeenCalled();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');
    });

    it('closed() while verifying: a yes from a gate that missed the close seals no login_ok', async () => {
      // A LoginGate-like object that does not look at the connection: the handshake itself
      // must make sure nothing is sealed or recorded for a connection already gone.
      const decision = deferred<LoginDecision>();
      const gate = { verify: jest.fn(() => decision.promise), refused: false };
      const h = harness(gate as unknown as LoginGate);
      h.handshake.start();
      const { login } = await reachLogin(h);
      const done = h.handshake.receive(login, () => false);
      expect(gate.verify).toHaveBeenCalledTimes(1);
      h.close();
      decision.resolve({ ok: true, publicKey: exportSpki(userKey.publicKey) });
      await done;
      expect(h.established).not.toHaveBeenCalled();
      expect(h.onRecord).not.toHaveBeenCalled();
      expect(h.take()).toHaveLength(0);
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');
    });

    it('closed() before client_hello stops the timers and counts failed', () => {
      const h = harness();
      h.handshake.start();
      h.close();
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(HANDSHAKE_TIMEOUT_MS * 2);
      expect(h.output.write).not.toHaveBeenCalled();
      expect(h.authFailure).not.toHaveBeenCalled();
      expect(h.handshakeMetric).toHaveBeenCalledTimes(1);
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');

      h.handshake.abort('shutting_down', 'going away');
      expect(h.output.write).not.toHaveBeenCalled();
      expect(h.failed).not.toHaveBeenCalled();
    });
  });

  describe('abort', () => {
    it('before login writes a plaintext error and calls failed', async () => {
      const h = harness();
      h.handshake.start();
      await reachLogin(h);
      h.handshake.abort('shutting_down', 'server is shutting down');
      const frames = h.take();
      expect(frames).toHaveLength(1);
      expect(plaintextError(frames[0]!)).toMatchObject({ type: 'error', code: 'shutting_down' });
      expect(h.failed).toHaveBeenCalledWith(expect.stringContaining('shutting_down'));
      h.close();
      expect(h.handshakeMetric).toHaveBeenCalledWith('failed');
    });
  });
});
