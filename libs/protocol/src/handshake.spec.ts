/**
 * Both handshake roles wired in memory (PROTOCOL.md §3): success paths and every refusal the spec
 * names.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';

import {
  aliceKey,
  aliceRsaKey,
  Pipe,
  runHandshake,
  serverFingerprint,
  serverIdentity,
  verifierFor,
} from '../test/in-memory-pair';
import { ClientHandshake } from './client-handshake';
import {
  exportSpki,
  fingerprint,
  type X25519KeyPair,
  importServerKey,
  importUserPublicKey,
  userSign,
  x25519,
  x25519KeyPair,
} from './crypto';
import { fromBase64, toBase64 } from './encoding';
import { encodeFrame, FrameDecoder, type RawFrame } from './frame-decoder';
import { clientAuthInput, computeH2, derivePrk, deriveTrafficSecrets } from './key-schedule';
import { parseFrame } from './messages/handshake-frames';
import { parseJsonObject, serializeJson } from './messages/json';
import { RecordDirection } from './record-layer';
import { type ServerHandshakeOptions, ServerHandshake } from './server-handshake';

const PASSWORD = 'correct horse battery staple';

function serverOptions(overrides: Partial<ServerHandshakeOptions> = {}): ServerHandshakeOptions {
  return {
    identity: { privateKey: serverIdentity },
    sessionId: 's-test',
    verifyLogin: verifierFor({ alice: { password: PASSWORD, key: createPublicKey(aliceKey) } })
      .verify,
    ...overrides,
  };
}

const aliceLogin = {
  action: 'login' as const,
  username: 'alice',
  password: PASSWORD,
  privateKey: aliceKey,
};

function raw(bytes: Buffer): RawFrame {
  return { bytes, body: bytes.subarray(4) };
}

function frameOf(message: object): RawFrame {
  return raw(encodeFrame(serializeJson(message)));
}

describe('a successful handshake', () => {
  it('logs in with an Ed25519 user key and agrees on keys, chains and session id', async () => {
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions(),
    );
    expect(run.clientStep?.error).toBeUndefined();
    expect(run.clientStep?.loginOk).toMatchObject({
      type: 'login_ok',
      username: 'alice',
      session_id: 's-test',
    });
    expect(run.clientSession!.view()).toEqual(run.serverSession!.view());
    expect(run.serverSession!.sequences).toEqual({ sending: 1, receiving: 1 });
    expect(run.clientSession!.sequences).toEqual({ sending: 1, receiving: 1 });
  });

  it('logs in with an RSA-2048 user key (RSA-PSS, salt 32)', async () => {
    const run = await runHandshake(
      {
        trust: { fingerprint: serverFingerprint },
        credentials: { ...aliceLogin, privateKey: aliceRsaKey },
      },
      serverOptions({
        verifyLogin: verifierFor({
          alice: { password: PASSWORD, key: createPublicKey(aliceRsaKey) },
        }).verify,
      }),
    );
    expect(run.clientStep?.error).toBeUndefined();
    expect(run.serverSession?.username).toBe('alice');
  });

  it('registers: the verifier gets the public key and checks proof of possession', async () => {
    const users = {};
    const verifier = verifierFor(users);
    const bobKey = generateKeyPairSync('ed25519').privateKey;
    const run = await runHandshake(
      {
        trust: { fingerprint: serverFingerprint },
        credentials: {
          action: 'register',
          username: 'bob',
          password: PASSWORD,
          privateKey: bobKey,
        },
      },
      serverOptions({ verifyLogin: verifier.verify }),
    );
    expect(run.clientStep?.error).toBeUndefined();
    expect(verifier.requests[0]).toMatchObject({ action: 'register', username: 'bob' });
    expect(verifier.requests[0]!.publicKey!.equals(exportSpki(bobKey))).toBe(true);
    expect(Object.keys(users)).toEqual(['bob']);
  });

  it('asks the trust-on-first-use callback once, with the fingerprint, and proceeds on yes', async () => {
    const asked: string[] = [];
    const run = await runHandshake(
      {
        trust: {
          onFirstUse: ({ fingerprint: fp }) => {
            asked.push(fp);
            return Promise.resolve(true);
          },
        },
        credentials: aliceLogin,
      },
      serverOptions(),
    );
    expect(asked).toEqual([serverFingerprint]);
    expect(run.clientSession).toBeDefined();
  });
});

describe('server identity (§3 step 3)', () => {
  it('refuses a wrong pinned fingerprint before sending anything, showing both fingerprints', async () => {
    const other = fingerprint(exportSpki(generateKeyPairSync('ed25519').privateKey));
    const run = await runHandshake(
      { trust: { fingerprint: other }, credentials: aliceLogin },
      serverOptions(),
    );
    expect(run.clientStep?.close).toBe(true);
    expect(run.clientStep?.send).toEqual([]);
    expect(run.clientSent).toHaveLength(1); // client_hello only: no login, no password
    expect(run.clientStep?.error).toMatchObject({
      name: 'ServerIdentityError',
      reason: 'server_key_mismatch',
      expectedFingerprint: other,
      presentedFingerprint: serverFingerprint,
    });
    expect(run.clientStep?.error?.message).toContain(other);
    expect(run.clientStep?.error?.message).toContain(serverFingerprint);
  });

  it('fails, and sends no login, when a frame arrives while server_auth waits for the user', async () => {
    const client = new ClientHandshake({
      trust: { onFirstUse: () => decision },
      credentials: aliceLogin,
    });
    let answer!: (yes: boolean) => void;
    const decision = new Promise<boolean>((resolve) => (answer = resolve));
    const server = new ServerHandshake(serverOptions());
    const toServer = new Pipe();
    const toClient = new Pipe();
    const fromServer: Buffer[] = [];
    for (const frame of toServer.frames(client.start())) {
      fromServer.push(...(await server.receive(frame)).send);
    }
    const [hello, auth] = toClient.frames(fromServer);
    expect((await client.receive(hello!)).send).toEqual([]);
    const waiting = client.receive(auth!); // asks the user: not answered yet
    const early = await client.receive(auth!); // server_auth again: it must not run twice
    expect(early).toMatchObject({ close: true, error: { code: 'unexpected_message' } });
    answer(true);
    const after = await waiting;
    expect(after).toMatchObject({ close: true, send: [] });
    expect(client.state).toBe('failed');
  });

  it('refuses when the first-use callback says no', async () => {
    const run = await runHandshake(
      { trust: { onFirstUse: () => false }, credentials: aliceLogin },
      serverOptions(),
    );
    expect(run.clientStep?.error).toMatchObject({ reason: 'server_key_untrusted' });
    expect(run.clientSent).toHaveLength(1);
  });

  it('refuses a tampered server_auth signature', async () => {
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions(),
      (index, frame) => {
        if (index !== 1) return frame;
        const message = parseFrame(frame.subarray(4)) as { type: string; signature: string };
        const signature = fromBase64(message.signature, 'signature');
        signature[10]! ^= 0x01;
        return encodeFrame(serializeJson({ type: 'server_auth', signature: toBase64(signature) }));
      },
    );
    expect(run.clientStep?.error).toMatchObject({ reason: 'bad_server_signature' });
    expect(run.clientSent).toHaveLength(1);
  });

  it('refuses a server_hello that was altered in transit (H1 no longer matches)', async () => {
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions(),
      (index, frame) => {
        if (index !== 0) return frame;
        const message = parseFrame(frame.subarray(4)) as unknown as Record<string, string>;
        // a man in the middle swapping in its own DH key
        return encodeFrame(
          serializeJson({ ...message, dh_pub: toBase64(x25519KeyPair().publicRaw) }),
        );
      },
    );
    expect(run.clientStep?.error).toMatchObject({ reason: 'bad_server_signature' });
  });
});

describe('login failures (§3 step 5)', () => {
  it('answers a wrong password with the encrypted auth_failed and closes', async () => {
    const run = await runHandshake(
      {
        trust: { fingerprint: serverFingerprint },
        credentials: { ...aliceLogin, password: 'wrong password' },
      },
      serverOptions(),
    );
    expect(run.serverStep).toMatchObject({ close: true, error: { code: 'auth_failed' } });
    expect(run.clientStep?.error).toMatchObject({
      name: 'PeerError',
      code: 'auth_failed',
      peerMessage: 'authentication failed',
    });
    // the error is a record (PROTOCOL.md §2: keys exist), not a plaintext frame
    expect(parseJsonObject(run.serverStep!.send[0]!.subarray(4)).type).toBe('enc');
  });

  it('answers an unknown user exactly like a wrong password', async () => {
    const run = await runHandshake(
      {
        trust: { fingerprint: serverFingerprint },
        credentials: { ...aliceLogin, username: 'mallory' },
      },
      serverOptions(),
    );
    expect(run.clientStep?.error).toMatchObject({
      code: 'auth_failed',
      peerMessage: 'authentication failed',
    });
  });

  it('passes rate_limited with retry_after through to the client', async () => {
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions({
        verifyLogin: () => Promise.resolve({ ok: false, code: 'rate_limited', retryAfter: 30 }),
      }),
    );
    expect(run.clientStep?.error).toMatchObject({ code: 'rate_limited', retryAfter: 30 });
  });

  it('rejects a signature over another session’s H2', async () => {
    // A client that replays a signature made for another handshake: we play the client by hand.
    const other = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions(),
    );
    const otherH2 = other.serverSession!.h2;

    const verifier = verifierFor({ alice: { password: PASSWORD, key: createPublicKey(aliceKey) } });
    const server = new ServerHandshake(serverOptions({ verifyLogin: verifier.verify }));
    const { step, h2, reply } = await loginByHand(server, {
      action: 'login',
      username: 'alice',
      password: PASSWORD,
      signature: toBase64(userSign(aliceKey, clientAuthInput(otherH2))),
    });
    expect(h2.equals(otherH2)).toBe(false);
    expect(step).toMatchObject({ close: true, error: { code: 'auth_failed' } });
    expect(step.session).toBeUndefined();
    expect(verifier.requests.at(-1)!.h2.equals(h2)).toBe(true);
    expect(reply).toEqual({
      type: 'error',
      code: 'auth_failed',
      message: 'authentication failed',
    });
  });

  it('answers a register whose public_key is no SubjectPublicKeyInfo with bad_request (§10.11), before the verifier', async () => {
    const verifier = verifierFor({});
    const server = new ServerHandshake(serverOptions({ verifyLogin: verifier.verify }));
    const { step, reply } = await loginByHand(server, {
      action: 'register',
      username: 'bob',
      password: PASSWORD,
      signature: toBase64(Buffer.alloc(64, 5)),
      public_key: toBase64(Buffer.alloc(44, 7)), // canonical base64 (PROTOCOL.md §2), but no key
    });
    expect(step).toMatchObject({ close: true, error: { code: 'bad_request' } });
    expect(reply).toMatchObject({ type: 'error', code: 'bad_request' });
    expect(verifier.requests).toEqual([]);
  });
});

/**
 * Plays the client by hand up to a login record holding `payload`; returns the server's step,
 * H2, and the plaintext of the first s2c record it answered with.
 */
async function loginByHand(server: ServerHandshake, payload: object) {
  const frame1 = encodeFrame(
    serializeJson({
      type: 'client_hello',
      protocol: 'securechat/1',
      nonce: toBase64(Buffer.alloc(32, 7)),
    }),
  );
  const hello = await server.receive(raw(frame1));
  const [frame2, frame3] = hello.send as [Buffer, Buffer];
  const serverHello = parseFrame(frame2.subarray(4)) as { dh_pub: string };
  const mine = x25519KeyPair();
  const h2 = computeH2(frame1, frame2, frame3, mine.publicRaw);
  const secrets = deriveTrafficSecrets(
    derivePrk(h2, x25519(mine.privateKey, fromBase64(serverHello.dh_pub, 'dh_pub'))),
  );
  const login = encodeFrame(
    serializeJson({
      type: 'login',
      dh_pub: toBase64(mine.publicRaw),
      payload: toBase64(new RecordDirection('c2s', secrets.c2s).seal(serializeJson(payload))),
    }),
  );
  const step = await server.receive(raw(login));
  const sealed = step.send[0];
  const reply =
    sealed === undefined
      ? undefined
      : (JSON.parse(
          new RecordDirection('s2c', secrets.s2c)
            .open(fromBase64((parseFrame(sealed.subarray(4)) as { ct: string }).ct, 'ct'))
            .toString(),
        ) as unknown);
  return { step, h2, reply };
}

describe('frame order and bad input (§2, §3)', () => {
  const hello = {
    type: 'client_hello',
    protocol: 'securechat/1',
    nonce: toBase64(Buffer.alloc(32)),
  };

  it('answers a login before client_hello with a plaintext unexpected_message', async () => {
    const server = new ServerHandshake(serverOptions());
    const step = await server.receive(
      frameOf({
        type: 'login',
        dh_pub: toBase64(Buffer.alloc(32, 9)),
        payload: toBase64(Buffer.alloc(40)),
      }),
    );
    expect(step.close).toBe(true);
    expect(parseJsonObject(step.send[0]!.subarray(4))).toMatchObject({
      type: 'error',
      code: 'unexpected_message',
    });
    expect(server.state).toBe('failed');
    expect((await server.receive(frameOf(hello))).send).toEqual([]);
  });

  it('answers a second client_hello with unexpected_message', async () => {
    const server = new ServerHandshake(serverOptions());
    await server.receive(frameOf(hello));
    const step = await server.receive(frameOf(hello));
    expect(step.error?.code).toBe('unexpected_message');
  });

  it('answers another protocol with unsupported_protocol', async () => {
    const server = new ServerHandshake(serverOptions());
    const step = await server.receive(frameOf({ ...hello, protocol: 'securechat/2' }));
    expect(parseJsonObject(step.send[0]!.subarray(4))).toMatchObject({
      code: 'unsupported_protocol',
    });
  });

  it('answers an all-zero client key share with bad_frame and never calls the verifier', async () => {
    const verifier = verifierFor({});
    const server = new ServerHandshake(serverOptions({ verifyLogin: verifier.verify }));
    await server.receive(frameOf(hello));
    const step = await server.receive(
      frameOf({
        type: 'login',
        dh_pub: toBase64(Buffer.alloc(32)),
        payload: toBase64(Buffer.alloc(40)),
      }),
    );
    expect(step.error?.code).toBe('bad_frame');
    expect(verifier.requests).toHaveLength(0);
  });

  it('closes silently when the login record does not authenticate', async () => {
    const server = new ServerHandshake(serverOptions());
    await server.receive(frameOf(hello));
    const step = await server.receive(
      frameOf({
        type: 'login',
        dh_pub: toBase64(x25519KeyPair().publicRaw),
        payload: toBase64(Buffer.alloc(40)),
      }),
    );
    expect(step).toMatchObject({
      close: true,
      send: [],
      error: { name: 'RecordAuthenticationError' },
    });
  });

  it('rejects an all-zero server key share on the client side before logging in', async () => {
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      serverOptions({
        ephemeral: { privateKey: x25519KeyPair().privateKey, publicRaw: Buffer.alloc(32) },
      }),
    );
    // The server signed its (zero) key share honestly, so only the zero check can stop this.
    expect(run.clientStep?.error).toMatchObject({ code: 'bad_frame' });
    const sentTypes = run.clientSent.map((frame) => parseJsonObject(frame.subarray(4)).type);
    expect(sentTypes).toEqual(['client_hello', 'error']); // told why; no login, no password
  });

  it('closes without answering when the client sends an error frame', async () => {
    const server = new ServerHandshake(serverOptions());
    await server.receive(frameOf(hello));
    const step = await server.receive(frameOf({ type: 'error', code: 'bad_frame', message: 'no' }));
    expect(step).toMatchObject({
      close: true,
      send: [],
      error: { name: 'PeerError', code: 'bad_frame' },
    });
  });

  it('aborts with a plaintext handshake_timeout before keys, and an encrypted one while verifying', async () => {
    const early = new ServerHandshake(serverOptions());
    await early.receive(frameOf(hello));
    const timeout = early.abort('handshake_timeout', 'login not received in time');
    expect(parseJsonObject(timeout.send[0]!.subarray(4))).toMatchObject({
      type: 'error',
      code: 'handshake_timeout',
    });

    let release: () => void = () => undefined;
    const late = new ServerHandshake(
      serverOptions({
        verifyLogin: () =>
          new Promise((resolve) => {
            release = () => resolve({ ok: true, publicKey: exportSpki(aliceKey) });
          }),
      }),
    );
    const client = new ClientHandshake({
      trust: { fingerprint: serverFingerprint },
      credentials: aliceLogin,
    });
    const toServer = new FrameDecoder();
    const toClient = new FrameDecoder();
    const s1 = await late.receive(toServer.push(client.start())[0]!);
    let login: Buffer[] = [];
    for (const frame of toClient.push(Buffer.concat(s1.send)))
      login = (await client.receive(frame)).send;
    const pending = late.receive(toServer.push(login[0]!)[0]!);
    const aborted = late.abort('shutting_down', 'server is shutting down');
    expect(parseJsonObject(aborted.send[0]!.subarray(4)).type).toBe('enc');
    const reply = await client.receive(toClient.push(aborted.send[0]!)[0]!);
    expect(reply.error).toMatchObject({ code: 'shutting_down' });
    release();
    expect(await pending).toMatchObject({ close: true, send: [] });
  });

  it('checks its arguments', () => {
    expect(() => new ClientHandshake({ trust: {}, credentials: aliceLogin })).toThrow(TypeError);
    expect(
      () => new ClientHandshake({ trust: { fingerprint: 'sha256:XYZ' }, credentials: aliceLogin }),
    ).toThrow(TypeError);
    expect(
      () => new ServerHandshake({ ...serverOptions(), identity: { privateKey: aliceRsaKey } }),
    ).toThrow(TypeError);
    expect(() => importServerKey(exportSpki(aliceRsaKey))).toThrow(
      expect.objectContaining({ code: 'bad_frame' }),
    );
  });
});

describe('ephemeral key generation (PROTOCOL.md §3)', () => {
  const hello = {
    type: 'client_hello',
    protocol: 'securechat/1',
    nonce: toBase64(Buffer.alloc(32)),
  };

  /** A server whose key maker records every key pair it makes. */
  function countingServer() {
    const made: X25519KeyPair[] = [];
    const makeEphemeral = () => {
      const pair = x25519KeyPair();
      made.push(pair);
      return pair;
    };
    return { made, options: serverOptions({ makeEphemeral }) };
  }

  it('makes no key pair for a connection that never sends client_hello', async () => {
    const silent = countingServer();
    new ServerHandshake(silent.options).abort('handshake_timeout', 'no client_hello in time');
    const loginFirst = countingServer();
    const login = frameOf({
      type: 'login',
      dh_pub: toBase64(Buffer.alloc(32, 9)),
      payload: toBase64(Buffer.alloc(40)),
    });
    expect((await new ServerHandshake(loginFirst.options).receive(login)).close).toBe(true);
    const otherProtocol = countingServer();
    const refused = await new ServerHandshake(otherProtocol.options).receive(
      frameOf({ ...hello, protocol: 'securechat/2' }),
    );
    expect(refused.error?.code).toBe('unsupported_protocol');
    expect([silent.made, loginFirst.made, otherProtocol.made]).toEqual([[], [], []]);
  });

  it('makes one key pair when client_hello arrives, and logs in with it', async () => {
    const counting = countingServer();
    const server = new ServerHandshake(counting.options);
    expect(counting.made).toHaveLength(0);
    const step = await server.receive(frameOf(hello));
    expect(counting.made).toHaveLength(1);
    expect(parseJsonObject(step.send[0]!.subarray(4)).dh_pub).toBe(
      toBase64(counting.made[0]!.publicRaw),
    );

    const full = countingServer();
    const run = await runHandshake(
      { trust: { fingerprint: serverFingerprint }, credentials: aliceLogin },
      full.options,
    );
    expect(run.serverSession?.username).toBe('alice');
    expect(full.made).toHaveLength(1);
  });

  it('refuses both an injected key pair and a key maker', () => {
    expect(
      () =>
        new ServerHandshake(
          serverOptions({ ephemeral: x25519KeyPair(), makeEphemeral: () => x25519KeyPair() }),
        ),
    ).toThrow(TypeError);
  });
});

describe('key import', () => {
  it('accepts only canonical SPKI DER, so one key has one fingerprint', () => {
    const spki = exportSpki(aliceRsaKey);
    expect(() => importUserPublicKey(spki)).not.toThrow();
    expect(() => importUserPublicKey(Buffer.concat([spki, Buffer.of(0)]))).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
  });

  // PROTOCOL.md §10.11: a malformed key at registration is bad_request (its base64 was fine,
  // PROTOCOL.md §2), while a server_key that is no SPKI breaks the handshake frame itself.
  it('answers a user key that is no SubjectPublicKeyInfo with bad_request, a server_key with bad_frame', () => {
    const noKey = Buffer.alloc(44, 7);
    expect(() => importUserPublicKey(noKey)).toThrow(
      expect.objectContaining({
        code: 'bad_request',
        message: expect.stringMatching(/SubjectPublicKeyInfo/),
      }),
    );
    expect(() => importServerKey(noKey)).toThrow(expect.objectContaining({ code: 'bad_frame' }));
  });
});

describe('user key policy (docs/PROTOCOL.md §10)', () => {
  const ed25519Spki = (hex: string) =>
    Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(hex, 'hex')]);

  it('refuses small-order and non-canonical Ed25519 keys, which verify forged signatures', () => {
    const identity = ed25519Spki(`01${'00'.repeat(31)}`);
    expect(() => importUserPublicKey(identity)).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    const nonCanonical = ed25519Spki(`ee${'ff'.repeat(30)}7f`); // y = p + 1
    expect(() => importUserPublicKey(nonCanonical)).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    expect(() => importUserPublicKey(exportSpki(aliceKey))).not.toThrow();
  });

  it('refuses RSA keys below 2048 or above 8192 bits and exponents other than odd 65537..2^32', () => {
    const rsa = (modulusLength: number, publicExponent = 65537) =>
      exportSpki(generateKeyPairSync('rsa', { modulusLength, publicExponent }).publicKey);
    expect(() => importUserPublicKey(rsa(1024))).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    expect(() => importUserPublicKey(rsa(2048, 3))).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    expect(() => importUserPublicKey(rsa(2048))).not.toThrow();
  });
});
