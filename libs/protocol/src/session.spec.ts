/** Established sessions (PROTOCOL.md §4–§7), both roles wired in memory. */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';

import {
  aliceKey,
  aliceRsaKey,
  connectAlice,
  type ConnectedRun,
  type HandshakeRun,
  Pipe,
  serverIdentity,
  type Sealer,
} from '../test/in-memory-pair';
import { ClientSession } from './client-session';
import { ed25519Sign } from './crypto';
import { toBase64 } from './encoding';
import { ProtocolError } from './errors/protocol-error';
import { RecordAuthenticationError } from './errors/record-authentication-error';
import { type Deliver } from './messages/server-messages';
import { type RecordEvent, type SessionOptions } from './session';
import { ServerSession } from './server-session';
import { computeChain, receiptDigest, receiptSignedBytes } from './transcript';

function connect(
  clientSession: SessionOptions = {},
  serverSession: SessionOptions = {},
  userKeyOnServer = aliceKey,
): Promise<ConnectedRun> {
  return connectAlice({ clientSession, serverSession, userKeyOnServer });
}

/** Client → server over the pipe; returns what the server read. */
function clientToServer(run: HandshakeRun, bytes: Buffer) {
  return run.toServer.frames(bytes).map((frame) => run.serverSession!.receive(frame));
}

function serverToClient(run: HandshakeRun, bytes: Buffer) {
  return run.toClient.frames(bytes).map((frame) => run.clientSession!.receive(frame));
}

describe('a long session', () => {
  it('exchanges 1,000 messages with key updates both ways and ends with agreed receipts', async () => {
    const clientRecords: RecordEvent[] = [];
    const serverRecords: RecordEvent[] = [];
    const run = await connect(
      { keyUpdateInterval: 37, onRecord: (e) => clientRecords.push(e) },
      { keyUpdateInterval: 53, onRecord: (e) => serverRecords.push(e) },
    );
    const client = run.clientSession;
    const server = run.serverSession;
    const keyUpdatesSeen = { byServer: 0, byClient: 0 };

    for (let i = 0; i < 1000; i++) {
      const send = client.signedSend({
        id: `m-${i}`,
        to: i % 3 === 0 ? '#general' : 'bob',
        body: `hello ${i} ✓`,
        ts: 1_764_000_000_000 + i,
      });
      const received = clientToServer(run, client.send(send));
      keyUpdatesSeen.byServer += received.filter((r) => r.message.type === 'key_update').length;
      const last = received.at(-1)!;
      expect(last.message).toEqual(send);
      expect(server.verifySendSignature(send)).toBe(true);

      const acked = serverToClient(
        run,
        server.send({
          type: 'ack',
          id: send.id,
          msg_id: String(i + 1),
          server_ts: 1_764_000_000_500 + i,
        }),
      );
      keyUpdatesSeen.byClient += acked.filter((r) => r.message.type === 'key_update').length;
      expect(acked.at(-1)!.message).toMatchObject({ type: 'ack', id: send.id });
      if (i % 250 === 0) {
        // explicit updates too, in both directions
        clientToServer(run, client.keyUpdate());
        serverToClient(run, server.keyUpdate());
      }
    }
    expect(keyUpdatesSeen.byServer).toBeGreaterThan(20);
    expect(keyUpdatesSeen.byClient).toBeGreaterThan(15);

    // Closing (PROTOCOL.md §7): bye → receipt → countersign.
    expect(clientToServer(run, client.bye())[0]!.message).toEqual({ type: 'bye' });
    expect(server.state).toBe('closing');
    const [fromServer] = serverToClient(run, server.receipt());
    expect(fromServer!.receipt).toMatchObject({ viewsMatch: true, signatureValid: true });
    const [final] = clientToServer(run, client.countersign());
    expect(final!.countersign).toMatchObject({
      outcome: 'agreed',
      viewsMatch: true,
      signatureValid: true,
    });
    expect(server.state).toBe('closed');
    expect(client.state).toBe('closed');

    // Both views agree and equal what an offline verifier recomputes from the records.
    const view = server.view();
    expect(client.view()).toEqual(view);
    const h2 = server.h2;
    for (const [records, direction, count, chain] of [
      [serverRecords, 'c2s', view.c2sCount, view.c2sChain],
      [serverRecords, 's2c', view.s2cCount, view.s2cChain],
      [clientRecords, 'c2s', view.c2sCount, view.c2sChain],
    ] as const) {
      const chained = records
        .filter((r) => r.direction === direction && r.chained)
        .map((r) => r.plaintext);
      expect(computeChain(h2, chained)).toEqual({ count, chain });
    }
    // bye, receipt and countersign are observed but not chained
    expect(
      serverRecords
        .filter((r) => !r.chained)
        .map((r) => (JSON.parse(r.plaintext.toString()) as { type: string }).type),
    ).toEqual(['bye', 'receipt', 'countersign']);
  });
});

describe('ordering and tampering (§5)', () => {
  it('fails a reordered record and closes silently', async () => {
    const run = await connect();
    const first = run.clientSession.send({ type: 'ping', n: 1 });
    const second = run.clientSession.send({ type: 'ping', n: 2 });
    const frames = run.toServer.frames(Buffer.concat([second, first]));
    expect(() => run.serverSession.receive(frames[0]!)).toThrow(RecordAuthenticationError);
    expect(run.serverSession.state).toBe('closed');
  });

  it('fails a replayed record', async () => {
    const run = await connect();
    const ping = run.clientSession.send({ type: 'ping', n: 1 });
    clientToServer(run, ping);
    expect(() => clientToServer(run, ping)).toThrow(RecordAuthenticationError);
  });

  it('fails a dropped record: the next one no longer authenticates', async () => {
    const run = await connect();
    run.clientSession.send({ type: 'ping', n: 1 }); // lost on the way
    expect(() => clientToServer(run, run.clientSession.send({ type: 'ping', n: 2 }))).toThrow(
      RecordAuthenticationError,
    );
  });

  it('treats a plaintext frame inside the session as unexpected_message', async () => {
    const run = await connect();
    const pipe = new Pipe();
    const frame = pipe.frames(Buffer.from('\x00\x00\x00\x10{"type":"ping"} ', 'latin1'));
    expect(() => run.serverSession.receive(frame[0]!)).toThrow(
      expect.objectContaining({ code: 'unexpected_message' }),
    );
  });
});

describe('requests', () => {
  it('answers a value error with bad_request and keeps the session', async () => {
    const run = await connect();
    const bad = run.clientSession.signedSend({ id: 'm-1', to: 'NOT A USER', body: 'x', ts: 1 });
    let error: unknown;
    try {
      clientToServer(run, run.clientSession.send(bad));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'bad_request', id: 'm-1' });
    // the session continues and both chains still agree
    const [pong] = serverToClient(
      run,
      run.serverSession.send(
        ServerSession.errorMessage('bad_request', 'to: not a username or room', { id: 'm-1' }),
      ),
    );
    expect(pong!.message).toMatchObject({ type: 'error', code: 'bad_request', id: 'm-1' });
    expect(clientToServer(run, run.clientSession.send({ type: 'ping', n: 7 }))[0]!.message).toEqual(
      { type: 'ping', n: 7 },
    );
    expect(run.clientSession.view()).toEqual(run.serverSession.view());
  });

  it('answers an oversized body with too_large', async () => {
    const run = await connect({}, {});
    const big = run.clientSession.signedSend({
      id: 'big',
      to: 'bob',
      body: 'x'.repeat(16385),
      ts: 1,
    });
    expect(() => clientToServer(run, run.clientSession.send(big))).toThrow(
      expect.objectContaining({ code: 'too_large', id: 'big' }),
    );
  });

  it('verifies message signatures with the author key, from = session user', async () => {
    const run = await connect();
    const send = run.clientSession.signedSend({ id: 'm-9', to: 'bob', body: 'hi', ts: 5 });
    expect(run.serverSession.verifySendSignature(send)).toBe(true);
    expect(run.serverSession.verifySendSignature({ ...send, body: 'hi!' })).toBe(false);
    const deliver: Deliver = { ...send, type: 'deliver', msg_id: '9', from: 'alice', server_ts: 6 };
    expect(ClientSession.verifyDeliver(deliver, createPublicKey(aliceKey))).toBe(true);
    expect(
      ClientSession.verifyDeliver({ ...deliver, from: 'eve' }, createPublicKey(aliceKey)),
    ).toBe(false);
  });

  // The server keeps an Ed25519 or RSA user key as its JWK until a signature needs it, and
  // other keys as they are: every kind must verify exactly as before.
  it.each([
    ['RSA', aliceRsaKey],
    ['RSA-PSS', generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey],
  ])('verifies sends and the countersign with an %s user key', async (_kind, userKey) => {
    const run = await connectAlice({ key: userKey, sessionId: 's-43' });
    const client = run.clientSession;
    const server = run.serverSession;
    const send = client.signedSend({ id: 'm-1', to: 'bob', body: 'hi', ts: 5 });
    expect(server.verifySendSignature(send)).toBe(true);
    expect(server.verifySendSignature({ ...send, body: 'hi!' })).toBe(false);
    clientToServer(run, client.bye());
    serverToClient(run, server.receipt());
    const [final] = clientToServer(run, client.countersign());
    expect(final!.countersign).toMatchObject({ outcome: 'agreed', signatureValid: true });
  });
});

describe('the asynchronous signing path (keys that sign only asynchronously, e.g. in a browser)', () => {
  it.each([
    ['Ed25519', aliceKey],
    ['RSA', aliceRsaKey],
  ])(
    'signedSendAsync, verifyDeliverAsync and countersignAsync agree with the server (%s)',
    async (_kind, key) => {
      const run = await connectAlice({ key, sessionId: 's-44' });
      const client = run.clientSession;
      const server = run.serverSession;
      const send = await client.signedSendAsync({ id: 'm-2', to: 'bob', body: 'hé', ts: 7 });
      expect(server.verifySendSignature(send)).toBe(true);
      expect(server.verifySendSignature({ ...send, body: 'he' })).toBe(false);
      const deliver: Deliver = {
        ...send,
        type: 'deliver',
        msg_id: '2',
        from: 'alice',
        server_ts: 8,
      };
      const publicKey = createPublicKey(key);
      await expect(ClientSession.verifyDeliverAsync(deliver, publicKey)).resolves.toBe(true);
      await expect(
        ClientSession.verifyDeliverAsync({ ...deliver, to: 'carol' }, publicKey),
      ).resolves.toBe(false);
      await expect(
        ClientSession.verifyDeliverAsync({ ...deliver, sig: 'not base64!' }, publicKey),
      ).resolves.toBe(false);
      clientToServer(run, client.bye());
      serverToClient(run, server.receipt());
      const pending = client.countersignAsync();
      // A second call while the first waits for its signature must not sign (and send) twice.
      await expect(client.countersignAsync()).rejects.toThrow(/once/);
      const [final] = clientToServer(run, await pending);
      expect(final!.countersign).toMatchObject({ outcome: 'agreed', signatureValid: true });
    },
  );

  it('gives the very bytes of the synchronous path for a deterministic (Ed25519) key', async () => {
    const run = await connect();
    const message = { id: 'm-3', to: 'bob', body: 'same', ts: 9 };
    expect(await run.clientSession.signedSendAsync(message)).toEqual(
      run.clientSession.signedSend(message),
    );
  });
});

describe('closing rules (§7)', () => {
  it('refuses anything but countersign after bye, on both sides', async () => {
    const run = await connect();
    const bye = run.clientSession.bye();
    expect(() => run.clientSession.send({ type: 'ping' })).toThrow(/bye/);
    clientToServer(run, bye);
    // Answers to requests read before bye may still go (a pipelining server); then the
    // receipt, and nothing after it.
    expect(() => run.serverSession.send({ type: 'pong' })).not.toThrow();
    run.serverSession.receipt();
    expect(() => run.serverSession.send({ type: 'pong' })).toThrow(/bye/);
    expect(() => run.clientSession.countersign()).toThrow(/receipt/);
  });

  it('lets the client receive records sent before the receipt, and chains them', async () => {
    const run = await connect();
    const bye = run.clientSession.bye();
    const late = run.serverSession.send({ type: 'pong', n: 1 }); // crossed the bye on the wire
    clientToServer(run, bye);
    serverToClient(run, late);
    const [receipt] = serverToClient(run, run.serverSession.receipt());
    expect(receipt!.receipt).toMatchObject({ viewsMatch: true, signatureValid: true });
  });

  it('rejects a countersign before the receipt (server) and a receipt before bye (client)', async () => {
    const zero = Buffer.alloc(32).toString('base64');
    const run = await connect();
    const clientSeal = run.clientSession as unknown as Sealer;
    const countersign = clientSeal.seal(
      {
        type: 'countersign',
        c2s_count: 0,
        c2s_chain: zero,
        s2c_count: 0,
        s2c_chain: zero,
        signature: 'AA==',
      },
      false,
    );
    expect(() => clientToServer(run, countersign)).toThrow(
      expect.objectContaining({ code: 'unexpected_message' }),
    );

    const other = await connect();
    const serverSeal = other.serverSession as unknown as Sealer;
    const earlyReceipt = serverSeal.seal(
      {
        type: 'receipt',
        session_id: 's-42',
        c2s_count: 0,
        c2s_chain: zero,
        s2c_count: 0,
        s2c_chain: zero,
        signature: Buffer.alloc(64).toString('base64'),
      },
      false,
    );
    expect(() => serverToClient(other, earlyReceipt)).toThrow(
      expect.objectContaining({ code: 'unexpected_message' }),
    );
  });

  it('marks the session disputed when the countersignature does not verify', async () => {
    // The server holds another key for alice than the one she signs with.
    const run = await connect({}, {}, generateKeyPairSync('ed25519').privateKey);
    clientToServer(run, run.clientSession.bye());
    serverToClient(run, run.serverSession.receipt());
    const [final] = clientToServer(run, run.clientSession.countersign());
    expect(final!.countersign).toMatchObject({
      outcome: 'disputed',
      viewsMatch: true,
      signatureValid: false,
    });
  });

  it('tells the client when the receipt does not match its view, or is not signed by the server', async () => {
    for (const forge of ['view', 'signature'] as const) {
      const run = await connect();
      clientToServer(run, run.clientSession.send({ type: 'ping', n: 1 }));
      clientToServer(run, run.clientSession.bye());
      const view = run.serverSession.view();
      // A dishonest server claims one record fewer (signed properly), or signs with another key.
      const claimed = forge === 'view' ? { ...view, c2sCount: view.c2sCount - 1 } : view;
      const signer = forge === 'view' ? serverIdentity : generateKeyPairSync('ed25519').privateKey;
      const signature = ed25519Sign(signer, receiptSignedBytes(receiptDigest(claimed)));
      const forged = (run.serverSession as unknown as Sealer).seal(
        {
          type: 'receipt',
          session_id: claimed.sessionId,
          c2s_count: claimed.c2sCount,
          c2s_chain: toBase64(claimed.c2sChain),
          s2c_count: claimed.s2cCount,
          s2c_chain: toBase64(claimed.s2cChain),
          signature: toBase64(signature),
        },
        false,
      );
      const [received] = serverToClient(run, forged);
      expect(received!.receipt).toMatchObject(
        forge === 'view'
          ? { viewsMatch: false, signatureValid: true }
          : { viewsMatch: true, signatureValid: false },
      );
      // the client still countersigns its own view (PROTOCOL.md §7)
      expect(run.clientSession.countersign().length).toBeGreaterThan(0);
    }
  });
});
