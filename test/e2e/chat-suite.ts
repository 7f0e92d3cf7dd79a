/**
 * The chat behaviour every deployment must have, over real sockets to real processes: run
 * against the embedded server and against the distributed cluster. One server with
 * self-registration on serves all tests; users are created through the protocol itself.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

import {
  encodeFrame,
  FrameDecoder,
  fingerprint,
  exportSpki,
  parseJsonObject,
  serializeJson,
  toBase64,
  x25519KeyPair,
} from '@securechat/protocol';

import { HandshakeFailed, openSocket, socketClosed, TestClient } from '../support/protocol-client';

/** What the suite needs of a running deployment: one gateway to talk to. */
export interface ChatTarget {
  /** Where the suite's clients connect: the TCP port, or the WebSocket one with `transport`. */
  readonly port: number;
  /** `websocket`: every client speaks the PROTOCOL.md §11 binding to `port`. */
  readonly transport?: 'tcp' | 'websocket';
  /** The TCP port, for the raw-bytes probes (byte-stream framing has no WebSocket twin). */
  readonly tcpPort?: number;
  readonly fingerprint: string;
  /** Everything the server processes printed so far. */
  output(): string;
  stop(): Promise<unknown>;
}

/** The settings the suite relies on (short handshake timeout, registration on, throttle at 5). */
export const CHAT_SUITE_ENV = {
  ALLOW_REGISTRATION: 'true',
  SECURECHAT_HANDSHAKE_TIMEOUT_MS: '1500',
  THROTTLE_USER_FAILURES: '5',
};

export function defineChatSuite(start: (env: Record<string, string>) => Promise<ChatTarget>): void {
  const PASSWORD = 'correct horse battery staple';
  const ed25519 = () => generateKeyPairSync('ed25519').privateKey;
  const rsa2048 = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

  let server: ChatTarget;
  const keys: Record<string, KeyObject> = {};
  let counter = 0;

  /** A new user with its own key, registered through the protocol. */
  async function newUser(prefix: string, key: KeyObject = ed25519()): Promise<string> {
    const username = `${prefix}${counter++}`;
    keys[username] = key;
    const client = await TestClient.connect({
      port: server.port,
      transport: server.transport ?? 'tcp',
      username,
      password: PASSWORD,
      key,
      action: 'register',
      fingerprint: server.fingerprint,
    });
    await client.close();
    return username;
  }

  function login(username: string, extra: Partial<Parameters<typeof TestClient.connect>[0]> = {}) {
    return TestClient.connect({
      port: server.port,
      transport: server.transport ?? 'tcp',
      username,
      password: PASSWORD,
      key: keys[username]!,
      fingerprint: server.fingerprint,
      ...extra,
    });
  }

  async function loginError(
    username: string,
    extra: Partial<Parameters<typeof TestClient.connect>[0]> = {},
  ) {
    try {
      const client = await login(username, extra);
      client.destroy();
    } catch (error) {
      if (error instanceof HandshakeFailed) return error.cause;
      throw error;
    }
    throw new Error('login unexpectedly succeeded');
  }

  beforeAll(async () => {
    server = await start(CHAT_SUITE_ENV);
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe('logging in', () => {
    it('prints the fingerprint of the identity key it generated', () => {
      expect(server.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(server.output()).toContain(server.fingerprint);
    });

    it('logs in with an Ed25519 key and with an RSA-2048 key', async () => {
      for (const key of [ed25519(), rsa2048()]) {
        const username = await newUser('key', key);
        const client = await login(username);
        expect(client.loginOk).toMatchObject({ type: 'login_ok', username });
        const check = await client.close();
        expect(check).toMatchObject({ viewsMatch: true, signatureValid: true });
      }
    });

    it('answers every kind of failure with the same auth_failed', async () => {
      const username = await newUser('fail');
      const failures = [
        await loginError(`nobody${counter++}`, { key: ed25519() }), // unknown user
        await loginError(username, { password: 'wrong password!' }),
        await loginError(username, { key: ed25519() }), // signature by another key
      ];
      for (const failure of failures) {
        expect(failure).toMatchObject({
          name: 'PeerError',
          code: 'auth_failed',
          peerMessage: 'authentication failed',
        });
      }
    });

    it('throttles a username after repeated failures, without checking the password', async () => {
      const username = await newUser('throttle');
      for (let i = 0; i < 5; i++) {
        expect(await loginError(username, { password: `wrong password ${i}` })).toMatchObject({
          code: 'auth_failed',
        });
      }
      const limited = await loginError(username); // right password, still refused
      expect(limited).toMatchObject({ code: 'rate_limited' });
      expect((limited as { retryAfter?: number }).retryAfter).toBeGreaterThanOrEqual(1);
    });

    it('never lets failures signed by another key lock a user out', async () => {
      const username = await newUser('stranger');
      const stranger = ed25519();
      for (let i = 0; i < 12; i++) {
        expect(await loginError(username, { key: stranger, password: `guess ${i}` })).toMatchObject(
          { code: 'auth_failed' },
        );
      }
      const client = await login(username);
      expect(client.loginOk).toMatchObject({ type: 'login_ok', username });
      await client.close();
    });

    it('refuses a server whose key differs from the pinned one, before sending the login', async () => {
      const other = fingerprint(exportSpki(ed25519()));
      const failure = await loginError(await newUser('pin'), { fingerprint: other });
      expect(failure).toMatchObject({ name: 'ServerIdentityError', reason: 'server_key_mismatch' });
    });

    it('refuses to register a taken name', async () => {
      const username = await newUser('taken');
      const failure = await loginError(username, { action: 'register', key: ed25519() });
      expect(failure).toMatchObject({ code: 'conflict' });
    });
  });

  describe('messages', () => {
    it('delivers a direct message with a verifiable signature, and acks it', async () => {
      const alice = await login(await newUser('alice'));
      const bob = await login(await newUser('bob', rsa2048()));
      const ack = await alice.sendAndAck(bob.username, 'hello bob — 👋');
      expect(ack).toMatchObject({ type: 'ack' });
      const deliver = await bob.receive();
      expect(deliver).toMatchObject({
        from: alice.username,
        to: bob.username,
        body: 'hello bob — 👋',
      });
      expect(deliver.msg_id).toBe((ack as { msg_id: string }).msg_id);
      const { ClientSession } = await import('@securechat/protocol');
      expect(ClientSession.verifyDeliver(deliver, createPublicKey(keys[alice.username]!))).toBe(
        true,
      );
      await alice.close();
      await bob.close();
    });

    it('answers not_found for an unknown user and bad_request for a bad signature', async () => {
      const alice = await login(await newUser('alice'));
      expect(await alice.sendAndAck(`ghost${counter++}`, 'anyone?')).toMatchObject({
        type: 'error',
        code: 'not_found',
      });
      const forged = {
        ...alice.session.signedSend({ id: 'forged-1', to: alice.username, body: 'x', ts: 1 }),
        body: 'y',
      };
      alice.write(forged);
      expect(await alice.next('error', (e) => e.id === 'forged-1')).toMatchObject({
        code: 'bad_request',
      });
      await alice.close();
    });

    it('delivers to every live session of a user', async () => {
      const alice = await login(await newUser('alice'));
      const bobName = await newUser('bob');
      const bob1 = await login(bobName);
      const bob2 = await login(bobName);
      await alice.sendAndAck(bobName, 'to both');
      expect((await bob1.receive()).body).toBe('to both');
      expect((await bob2.receive()).body).toBe('to both');
      await Promise.all([alice.close(), bob1.close(), bob2.close()]);
    });

    it('stores a repeated send id once and acks it with the same msg_id', async () => {
      const alice = await login(await newUser('alice'));
      const bob = await login(await newUser('bob'));
      const first = await alice.sendAndAck(bob.username, 'once', 'same-id');
      const second = await alice.sendAndAck(bob.username, 'once', 'same-id');
      expect(second).toMatchObject({ type: 'ack', msg_id: (first as { msg_id: string }).msg_id });
      await bob.receive();
      await new Promise((r) => setTimeout(r, 300));
      expect(bob.inbox.filter((m) => m.type === 'deliver')).toHaveLength(0);
      await Promise.all([alice.close(), bob.close()]);
    });

    it('delivers offline messages in order right after login, again until delivered, then never', async () => {
      const alice = await login(await newUser('alice'));
      const bobName = await newUser('bob');
      const bodies = ['one', 'two', 'three', 'four', 'five'];
      for (const body of bodies) await alice.sendAndAck(bobName, body);

      // First login: everything arrives in order; bob acknowledges only the first two.
      const bob1 = await login(bobName);
      const first: string[] = [];
      for (let i = 0; i < 5; i++) {
        const d = await bob1.next('deliver');
        first.push(d.body);
        if (i < 2) bob1.write({ type: 'delivered', msg_id: d.msg_id });
      }
      expect(first).toEqual(bodies);
      await bob1.close();

      // Second login: the three unacknowledged ones, in order.
      const bob2 = await login(bobName);
      const second: string[] = [];
      for (let i = 0; i < 3; i++) second.push((await bob2.receive()).body);
      expect(second).toEqual(['three', 'four', 'five']);
      await bob2.close();

      // Third login: nothing left.
      const bob3 = await login(bobName);
      await new Promise((r) => setTimeout(r, 300));
      expect(bob3.inbox.filter((m) => m.type === 'deliver')).toHaveLength(0);
      await Promise.all([bob3.close(), alice.close()]);
    });

    it('answers history with before and limit, oldest first', async () => {
      const alice = await login(await newUser('alice'));
      const bobName = await newUser('bob');
      const ids: string[] = [];
      for (let i = 0; i < 6; i++)
        ids.push(((await alice.sendAndAck(bobName, `h${i}`)) as { msg_id: string }).msg_id);
      alice.write({ type: 'history', with: bobName, limit: 3 });
      const latest = await alice.next('history');
      expect(latest.messages.map((m) => m.body)).toEqual(['h3', 'h4', 'h5']);
      alice.write({ type: 'history', with: bobName, before: ids[3]!, limit: 2 });
      const older = await alice.next('history');
      expect(older.messages.map((m) => m.body)).toEqual(['h1', 'h2']);
      await alice.close();
    });

    it('keeps working across key updates from the client', async () => {
      const alice = await login(await newUser('alice'), { keyUpdateInterval: 3 });
      const bob = await login(await newUser('bob'));
      for (let i = 0; i < 12; i++) await alice.sendAndAck(bob.username, `ku${i}`);
      for (let i = 0; i < 12; i++) expect((await bob.receive()).body).toBe(`ku${i}`);
      expect(await alice.close()).toMatchObject({ viewsMatch: true, signatureValid: true });
      await bob.close();
    });
  });

  describe('rooms', () => {
    it('joins, sends to members only, refuses non-members, leaves', async () => {
      const room = `#room${counter++}`;
      const [alice, bob, carol] = await Promise.all([
        login(await newUser('alice')),
        login(await newUser('bob')),
        login(await newUser('carol')),
      ]);
      alice.write({ type: 'join', room });
      expect(await alice.next('joined')).toEqual({
        type: 'joined',
        room,
        members: [alice.username],
      });
      bob.write({ type: 'join', room });
      expect((await bob.next('joined')).members.sort()).toEqual(
        [alice.username, bob.username].sort(),
      );

      await alice.sendAndAck(room, 'hi room');
      expect(await bob.receive()).toMatchObject({
        from: alice.username,
        to: room,
        body: 'hi room',
      });
      expect(await carol.sendAndAck(room, 'let me in')).toMatchObject({
        type: 'error',
        code: 'forbidden',
      });

      bob.write({ type: 'leave', room });
      expect(await bob.next('left')).toEqual({ type: 'left', room });
      await alice.sendAndAck(room, 'bob is gone');
      await new Promise((r) => setTimeout(r, 300));
      expect(bob.inbox.filter((m) => m.type === 'deliver')).toHaveLength(0);
      await Promise.all([alice.close(), bob.close(), carol.close()]);
    });

    it('shows a newcomer the room from its join on, as SECURECHAT_ROOM_HISTORY does by default', async () => {
      const room = `#room${counter++}`;
      const [alice, bob] = await Promise.all([
        login(await newUser('alice')),
        login(await newUser('bob')),
      ]);
      const history = async (client: TestClient) => {
        client.write({ type: 'history', with: room, limit: 50 });
        return (await client.next('history')).messages.map((m) => m.body);
      };
      alice.write({ type: 'join', room });
      await alice.next('joined');
      for (const body of ['one', 'two', 'three']) await alice.sendAndAck(room, body);
      // joined_at and server_ts are milliseconds of one clock, and a message stamped in the
      // millisecond of the join counts as after it
      await new Promise((r) => setTimeout(r, 20));
      bob.write({ type: 'join', room });
      await bob.next('joined');
      expect(await history(bob)).toEqual([]);

      await alice.sendAndAck(room, 'four');
      expect(await bob.receive()).toMatchObject({ from: alice.username, to: room, body: 'four' });
      expect(await history(bob)).toEqual(['four']);
      expect(await history(alice)).toEqual(['one', 'two', 'three', 'four']);
      // nothing from before the join was delivered either
      await new Promise((r) => setTimeout(r, 300));
      expect(bob.inbox.filter((m) => m.type === 'deliver')).toHaveLength(0);
      await Promise.all([alice.close(), bob.close()]);
    });
  });

  describe('bad input: each class gets its code and a close, and other sessions carry on', () => {
    let alice: TestClient;
    let bob: TestClient;

    beforeAll(async () => {
      alice = await login(await newUser('alice'));
      bob = await login(await newUser('bob'));
    });

    afterEach(async () => {
      // the bystanders still talk
      const ack = await alice.sendAndAck(bob.username, 'still here');
      expect(ack.type).toBe('ack');
      await bob.receive();
    });

    afterAll(async () => {
      await Promise.all([alice.close(), bob.close()]);
    });

    /** Sends bytes on a fresh connection; returns the first frame the server answered and whether it closed. */
    async function probe(bytes: Buffer[], waitMs = 3000) {
      const socket = await openSocket(server.tcpPort ?? server.port);
      const decoder = new FrameDecoder();
      const answers: Record<string, unknown>[] = [];
      socket.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) answers.push(parseJsonObject(frame.body));
      });
      socket.on('error', () => undefined);
      for (const b of bytes) socket.write(b);
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        socketClosed(socket).then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), waitMs))),
      ]);
      // Cleared once the close won the race: a 5 s wait left pending by the last probe kept
      // Jest from exiting after the run ("Jest did not exit one second after…").
      clearTimeout(timer);
      socket.destroy();
      return { answers, closed };
    }

    const frame = (message: object) => encodeFrame(serializeJson(message));
    const hello = frame({
      type: 'client_hello',
      protocol: 'securechat/1',
      nonce: toBase64(Buffer.alloc(32, 1)),
    });

    it('a length prefix above max_frame: frame_too_large', async () => {
      const result = await probe([Buffer.from('00010001', 'hex')]);
      expect(result).toMatchObject({
        closed: true,
        answers: [{ type: 'error', code: 'frame_too_large' }],
      });
    });

    it('garbage: bad_frame', async () => {
      const result = await probe([Buffer.from('\x00\x00\x00\x05hello')]);
      expect(result).toMatchObject({ closed: true, answers: [{ code: 'bad_frame' }] });
    });

    it('frames out of order: unexpected_message', async () => {
      const result = await probe([
        frame({
          type: 'login',
          dh_pub: toBase64(Buffer.alloc(32, 9)),
          payload: toBase64(Buffer.alloc(40)),
        }),
      ]);
      expect(result).toMatchObject({ closed: true, answers: [{ code: 'unexpected_message' }] });
    });

    it('bad base64 and unknown members: bad_frame', async () => {
      for (const bad of [
        frame({ type: 'client_hello', protocol: 'securechat/1', nonce: 'not base64!' }),
        frame({
          type: 'client_hello',
          protocol: 'securechat/1',
          nonce: toBase64(Buffer.alloc(32)),
          extra: 1,
        }),
      ]) {
        expect(await probe([bad])).toMatchObject({
          closed: true,
          answers: [{ code: 'bad_frame' }],
        });
      }
    });

    it('another protocol: unsupported_protocol', async () => {
      const result = await probe([
        frame({
          type: 'client_hello',
          protocol: 'securechat/9',
          nonce: toBase64(Buffer.alloc(32)),
        }),
      ]);
      expect(result).toMatchObject({ closed: true, answers: [{ code: 'unsupported_protocol' }] });
    });

    it('an all-zero DH key: bad_frame', async () => {
      const login = frame({
        type: 'login',
        dh_pub: toBase64(Buffer.alloc(32)),
        payload: toBase64(Buffer.alloc(40)),
      });
      const result = await probe([hello, login]);
      expect(result.closed).toBe(true);
      expect(result.answers.map((a) => a.type)).toEqual(['server_hello', 'server_auth', 'error']);
      expect(result.answers[2]).toMatchObject({ code: 'bad_frame' });
    });

    it('a login record that does not authenticate: silent close', async () => {
      const login = frame({
        type: 'login',
        dh_pub: toBase64(x25519KeyPair().publicRaw),
        payload: toBase64(Buffer.alloc(40)),
      });
      const result = await probe([hello, login]);
      expect(result.closed).toBe(true);
      expect(result.answers.map((a) => a.type)).toEqual(['server_hello', 'server_auth']);
    });

    it('no login in time: handshake_timeout', async () => {
      const result = await probe([hello], 5000);
      expect(result.closed).toBe(true);
      expect(result.answers.at(-1)).toMatchObject({ type: 'error', code: 'handshake_timeout' });
    });

    it('a tampered record and a replayed record in a live session: closed without an answer', async () => {
      for (const attack of ['tamper', 'replay'] as const) {
        const mallory = await login(await newUser('mallory'));
        const ping = mallory.session.send({ type: 'ping', n: 1 });
        if (attack === 'tamper') {
          // flip one bit of the ciphertext, keep the frame well-formed
          const enc = parseJsonObject(ping.subarray(4)) as { ct: string };
          const ct = Buffer.from(enc.ct, 'base64');
          ct[3]! ^= 0x01;
          mallory.socket.write(frame({ type: 'enc', ct: toBase64(ct) }));
        } else {
          mallory.socket.write(ping);
          await mallory.next('pong');
          mallory.socket.write(ping);
        }
        await mallory.closed;
        expect(mallory.inbox.filter((m) => m.type === 'error')).toEqual([]);
      }
    });
  });
}
