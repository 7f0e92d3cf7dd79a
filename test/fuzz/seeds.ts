/**
 * The seed corpus: valid and nearly valid inputs for each target, made from the protocol's
 * known-answer vectors. `npm run fuzz -- --make-seeds` writes them to test/fuzz/corpus/<target>/
 * (deterministic: the same bytes every time), next to any inputs a run kept with
 * `--save-corpus`. Each seed is named after what it is.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { encodeChunk } from '../../libs/core/src/transcripts/transcript-chunk';
import { vectorFrames, vectors } from './fixtures';
import { joinRecords } from './harness';
import { jsonFrame, rawFrame } from './records';

type Seeds = Record<string, Buffer>;

const frames1to4 = Buffer.concat([
  vectorFrames.clientHello,
  vectorFrames.serverHello,
  vectorFrames.serverAuth,
  vectorFrames.login,
]);
const encFrame = (ct: string) => jsonFrame({ type: 'enc', ct });
const s2cRecords = vectors.records.filter((r) => r.direction === 's2c');
const allRecordFrames = Buffer.concat(vectors.records.map((r) => encFrame(r.ciphertext)));
const seed = (control: number[], ...parts: (Buffer | string)[]) =>
  Buffer.concat([
    Buffer.from(control),
    ...parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))),
  ]);
const json = (value: object) => JSON.stringify(value);

function frameDecoderSeeds(): Seeds {
  return {
    'handshake-frames-push': seed([0x06, 0], frames1to4),
    'handshake-frames-next-chunked': seed([0x0e, 37], frames1to4),
    'record-frames-chunked': seed([0x06, 5], allRecordFrames),
    'prefix-above-max-frame': seed([0x06, 0], Buffer.from('00010001', 'hex'), 'xxxx'),
    'prefix-below-min-frame': seed([0x04, 0], Buffer.from('00000001', 'hex'), 'x'),
    'tiny-frames-tight-bound': seed([0x02, 3], ...Array.from({ length: 8 }, () => jsonFrame({}))),
    'bound-tightened-midway': seed([0x56, 1], frames1to4),
    'cut-short': seed([0x0e, 0], vectorFrames.clientHello.subarray(0, 50)),
    'one-byte-chunks-max-2': seed(
      [0x08, 1],
      rawFrame(Buffer.from('{}')),
      rawFrame(Buffer.from('[]')),
    ),
  };
}

const loginPayload = (fields: Record<string, unknown>) =>
  json({
    action: 'login',
    username: 'alice',
    password: 'correct horse battery staple',
    signature: 'SIGN',
    ...fields,
  });

function serverHandshakeSeeds(): Seeds {
  const hello = vectorFrames.clientHello;
  return {
    'raw-vectors-hello-login': seed([0, 0], hello, vectorFrames.login),
    'raw-hello-chunked': seed([0, 11], hello),
    'raw-hello-login-pipelined': seed([2, 0], hello, vectorFrames.login, hello),
    'raw-client-error': seed(
      [0, 0],
      jsonFrame({ type: 'error', code: 'auth_failed', message: 'x' }),
    ),
    'raw-other-protocol': seed(
      [0, 0],
      jsonFrame({ type: 'client_hello', protocol: 'securechat/2', nonce: 'x' }),
    ),
    'raw-prefix-above-handshake-bound': seed([0, 0], Buffer.from('00006001', 'hex')),
    'raw-hello-then-enc': seed([0, 0], hello, encFrame(s2cRecords[0]!.ciphertext)),
    'login-alice': seed([1, 0], loginPayload({})),
    'login-wrong-password': seed([1, 0], loginPayload({ password: 'wrong' })),
    'login-bad-signature': seed([1, 0], loginPayload({ signature: 'AAAA' })),
    'login-rate-limited': seed([1, 0], loginPayload({ username: 'mallory' })),
    'login-extra-member': seed([1, 0], loginPayload({ extra: 1 })),
    'register-new-user': seed(
      [1, 0],
      json({
        action: 'register',
        username: 'bobby',
        password: 'correct horse battery staple',
        signature: 'SIGN',
        public_key: 'SPKI',
      }),
    ),
    'register-taken': seed(
      [1, 0],
      json({
        action: 'register',
        username: 'alice',
        password: 'p',
        signature: 'SIGN',
        public_key: 'SPKI',
      }),
    ),
    'register-bad-key': seed(
      [1, 0],
      json({
        action: 'register',
        username: 'carol',
        password: 'p',
        signature: 'SIGN',
        public_key: 'AAAA',
      }),
    ),
    'login-not-json': seed([1, 0], 'login, please'),
  };
}

function clientHandshakeSeeds(): Seeds {
  const server = Buffer.concat([vectorFrames.serverHello, vectorFrames.serverAuth]);
  const records = Buffer.concat(s2cRecords.slice(0, 3).map((r) => encFrame(r.ciphertext)));
  const helloBody = vectorFrames.serverHello.subarray(4);
  const helloObject = JSON.parse(helloBody.toString('utf8')) as Record<string, string>;
  const loginOk = s2cRecords[0]!.plaintext;
  const deliver = json({
    type: 'deliver',
    msg_id: '7',
    id: 'm-1',
    from: 'bob',
    to: 'alice',
    body: 'hi',
    ts: 1,
    server_ts: 2,
    sig: vectors.message_signature.sig_ed25519,
  });
  const receipt = json({
    type: 'receipt',
    session_id: 's-0001',
    c2s_count: 0,
    c2s_chain: 'C2S_CHAIN',
    s2c_count: 3,
    s2c_chain: 'S2C_CHAIN',
    signature: 'SIGN',
  });
  return {
    'raw-vectors-pinned': seed([4, 0], server, records),
    'raw-vectors-first-use-chunked': seed([0, 9], server, records),
    'raw-first-use-refused': seed([8, 0], server),
    'raw-server-rate-limited': seed(
      [4, 0],
      jsonFrame({ type: 'error', code: 'rate_limited', message: 'later', retry_after: 5 }),
    ),
    'hello-vectors': seed([1, 0], helloBody),
    'hello-other-server-key': seed(
      [1, 0],
      json({ ...helloObject, server_key: vectors.keys.user_ed25519_spki }),
    ),
    'session-every-message': seed(
      [2, 0],
      joinRecords([
        loginOk,
        s2cRecords[1]!.plaintext,
        deliver,
        json({ type: 'key_update' }),
        json({ type: 'pong', n: 1 }),
        json({ type: 'joined', room: '#ops', members: ['alice', 'bob'] }),
        json({ type: 'left', room: '#ops' }),
        json({
          type: 'key',
          user: 'bob',
          public_key: vectors.keys.user_ed25519_spki,
          fingerprint: vectors.keys.server_fingerprint,
        }),
        json({ type: 'history', with: 'bob', messages: [JSON.parse(deliver) as object] }),
        json({ type: 'error', code: 'not_found', message: 'no such user', id: 'm-1' }),
      ]),
    ),
    'session-bye-receipt': seed([3, 0], joinRecords([loginOk, json({ type: 'pong' }), receipt])),
    'session-receipt-before-bye': seed([2, 0], joinRecords([loginOk, receipt])),
    'session-login-refused': seed(
      [2, 0],
      json({ type: 'error', code: 'auth_failed', message: 'authentication failed' }),
    ),
    'session-login-ok-for-bob': seed(
      [2, 0],
      json({ type: 'login_ok', username: 'bob', session_id: 's-1', server_time: 1 }),
    ),
  };
}

function sessionSeeds(): Seeds {
  const send = (fields: Record<string, unknown>) =>
    json({
      type: 'send',
      id: 'm-0001',
      to: 'bob',
      body: 'hello',
      ts: 1764000000000,
      sig: 'SIGN',
      ...fields,
    });
  const countersign = json({
    type: 'countersign',
    c2s_count: 'C2S_COUNT',
    c2s_chain: 'C2S_CHAIN',
    s2c_count: 'S2C_COUNT',
    s2c_chain: 'S2C_CHAIN',
    signature: 'SIGN',
  });
  const everyRequest = [
    send({}),
    json({ type: 'ping', n: 1 }),
    json({ type: 'join', room: '#ops' }),
    json({ type: 'leave', room: '#ops' }),
    json({ type: 'get_key', user: 'bob' }),
    json({ type: 'history', with: 'bob', limit: 5 }),
    json({ type: 'delivered', msg_id: '1' }),
    json({ type: 'key_update' }),
    json({ type: 'ping' }),
    json({ type: 'bye' }),
    countersign,
  ];
  return {
    'every-request': seed([0], joinRecords(everyRequest)),
    'every-request-pipelined': seed([1], joinRecords(everyRequest)),
    'sends-batched': seed(
      [1],
      joinRecords([
        send({ id: 'a' }),
        send({ id: 'b', to: '#ops' }),
        send({ id: 'c', to: '#secret' }),
        send({ id: 'dup' }),
      ]),
    ),
    'send-refusals': seed(
      [0],
      joinRecords([
        send({ sig: 'AAAA' }),
        send({ id: 'bad id!' }),
        send({ to: 'Not A User' }),
        send({ ts: -1 }),
        send({ body: 'nul \u0000 byte' }),
        send({ body: 'x'.repeat(2100) }),
        send({ body: 'y'.repeat(1500) }),
      ]),
    ),
    'request-refusals': seed(
      [0],
      joinRecords([
        json({ type: 'join', room: 'ops' }),
        json({ type: 'leave', room: '#nowhere' }),
        json({ type: 'get_key', user: 'nobody' }),
        json({ type: 'history', with: 'nobody' }),
        json({ type: 'history', with: '#ops', limit: 500, before: '' }),
        json({ type: 'delivered', msg_id: '' }),
        json({ type: 'ping', n: -1 }),
      ]),
    ),
    'countersign-before-receipt': seed(
      [0],
      joinRecords([
        json({
          type: 'countersign',
          c2s_count: 0,
          c2s_chain: vectors.receipt.c2s_chain,
          s2c_count: 1,
          s2c_chain: vectors.receipt.s2c_chain,
          signature: vectors.receipt.countersign_signature_ed25519,
        }),
      ]),
    ),
    'placeholders-without-receipt': seed([0], joinRecords([countersign])),
    'live-fan-out': seed(
      [2],
      joinRecords([send({}), json({ type: 'delivered', msg_id: '200' }), json({ type: 'ping' })]),
    ),
    'live-fan-out-resync-pipelined': seed(
      [7],
      joinRecords([
        json({ type: 'ping' }),
        json({ type: 'delivered', msg_id: '1' }),
        json({ type: 'bye' }),
      ]),
    ),
    'resync-then-bye': seed(
      [4],
      joinRecords([json({ type: 'ping' }), json({ type: 'bye' }), countersign]),
    ),
    'bye-then-ping': seed([0], joinRecords([json({ type: 'bye' }), json({ type: 'ping' })])),
    'unknown-type': seed([0], joinRecords([json({ type: 'shout' })])),
    'plaintext-frame-after-login': seed(
      [0],
      joinRecords([Buffer.concat([Buffer.from([0x1f]), Buffer.from(json({ type: 'ping' }))])]),
    ),
    'raw-bytes-after-login': seed([0], Buffer.from([0x1d, 0, 0, 0x10, 0x01])),
    'enc-that-does-not-open': seed(
      [0],
      Buffer.concat([
        Buffer.from([0x1f]),
        Buffer.from(json({ type: 'enc', ct: 'AAAAAAAAAAAAAAAAAAAAAA==' })),
      ]),
    ),
  };
}

function transcriptChunkSeeds(): Seeds {
  const records = vectors.records.map((r, i) => ({
    direction: r.direction as 'c2s' | 's2c',
    chained: i % 3 !== 2,
    plaintext: Buffer.from(r.plaintext, 'utf8'),
  }));
  const chunk = encodeChunk(records);
  // docs/PROTOCOL.md §10 item 25: the c2s requests kept by digest, as a gateway keeps refused ones.
  const digested = encodeChunk(
    records.map((r) =>
      r.direction === 'c2s' && r.chained
        ? {
            direction: r.direction,
            chained: r.chained,
            digest: createHash('sha256').update(r.plaintext).digest(),
          }
        : r,
    ),
  );
  return {
    'vectors-records': chunk,
    'one-empty-record': encodeChunk([
      { direction: 's2c', chained: false, plaintext: Buffer.alloc(0) },
    ]),
    'truncated-header': chunk.subarray(0, 3),
    'length-past-end': chunk.subarray(0, 40),
    // Bit 2 is the digest flag now; bit 3 is the lowest one no record may set.
    'unknown-flags': Buffer.from([0x08, 0, 0, 0, 0]),
    'digest-records': digested,
    'digest-too-short': Buffer.from([0x06, 0, 0, 0, 31, ...Buffer.alloc(31, 0xd1)]),
  };
}

/** Writes every target's seeds; returns how many per target. */
export function writeSeeds(corpusRoot: string): Record<string, number> {
  const all: Record<string, Seeds> = {
    'frame-decoder': frameDecoderSeeds(),
    'server-handshake': serverHandshakeSeeds(),
    'client-handshake': clientHandshakeSeeds(),
    session: sessionSeeds(),
    'transcript-chunk': transcriptChunkSeeds(),
  };
  const counts: Record<string, number> = {};
  for (const [target, seeds] of Object.entries(all)) {
    const dir = join(corpusRoot, target);
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(dir, name), bytes);
    counts[target] = Object.keys(seeds).length;
  }
  return counts;
}
