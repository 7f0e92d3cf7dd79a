/**
 * Every group of the known-answer vectors (test/fixtures/vectors.json), recomputed through the
 * public API and compared, as a list of results rather than assertions: it runs in a browser
 * page (test/browser/vectors.e2e-spec.ts), where there is no Jest. Unlike ./vectors.ts it needs
 * no node:crypto — the RSA private key goes through WebCrypto — so it bundles for a browser.
 *
 * Each check takes its inputs from the vectors given and compares with their expected value, so
 * a test can hand in a corrupted copy and see exactly the affected checks fail.
 */
import {
  aesGcmOpen,
  ClientHandshake,
  clientAuthInput,
  computeH1,
  computeH2,
  countersignSignedBytes,
  derivePrk,
  deriveRecordKeys,
  deriveTrafficSecrets,
  ed25519PrivateKeyFromSeed,
  ed25519Sign,
  ed25519Verify,
  exportSpki,
  fingerprint,
  FrameDecoder,
  importServerKey,
  importUserPublicKey,
  messageInput,
  messageSignedBytes,
  nextTrafficSecret,
  ProtocolError,
  publicKeyOf,
  receiptDigest,
  receiptSignedBytes,
  RecordAuthenticationError,
  RecordDirection,
  recordNonce,
  serverAuthInput,
  ServerHandshake,
  signMessage,
  TranscriptChain,
  userKeyFromCryptoKeyPair,
  userSign,
  userSignAsync,
  userVerify,
  userVerifyAsync,
  verifyMessage,
  x25519,
  x25519KeyPair,
} from '../src';
import raw from './fixtures/vectors.json';

export type Vectors = typeof raw;
export const vectors: Vectors = raw;

export interface VectorCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** Collects results; a check that throws is a failed check, not an aborted run. */
class Results {
  readonly list: VectorCheck[] = [];

  equal(name: string, actual: string, expected: string): void {
    const ok = actual === expected;
    this.list.push({ name, ok, detail: ok ? actual : `expected ${expected}, got ${actual}` });
  }

  bytes(name: string, actual: Uint8Array, expected: string, encoding: 'base64' | 'hex'): void {
    this.equal(name, Buffer.from(actual).toString(encoding), expected);
  }

  holds(name: string, ok: boolean, detail: string): void {
    this.list.push({ name, ok, detail: ok ? detail : `not so: ${detail}` });
  }

  /** Passes when `run` throws an error that `accept` recognises. */
  async throws(
    name: string,
    run: () => unknown,
    accept: (error: unknown) => boolean,
    what: string,
  ): Promise<void> {
    try {
      await run();
    } catch (error) {
      const ok = accept(error);
      this.list.push({ name, ok, detail: ok ? `refused: ${describe(error)}` : describe(error) });
      return;
    }
    this.list.push({ name, ok: false, detail: `accepted; expected ${what}` });
  }

  async guard(name: string, run: () => unknown): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.list.push({ name, ok: false, detail: `threw ${describe(error)}` });
    }
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return `${error.name}${typeof code === 'string' ? ` (${code})` : ''}: ${error.message}`;
}

/** The vectors' RSA user key as a browser holds one: in WebCrypto, the private half unextractable. */
async function rsaUserKey(v: Vectors) {
  const pkcs8 = b64(v.keys.user_rsa_pkcs8_pem.replace(/-----[A-Z ]+-----|\s/g, ''));
  const { subtle } = globalThis.crypto;
  const algorithm = { name: 'RSA-PSS', hash: 'SHA-256' };
  return userKeyFromCryptoKeyPair({
    privateKey: await subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']),
    publicKey: await subtle.importKey('spki', b64(v.keys.user_rsa_spki), algorithm, true, [
      'verify',
    ]),
  });
}

/** Runs every check over `v` (the fixture by default); never throws. */
export async function checkVectors(v: Vectors = vectors): Promise<VectorCheck[]> {
  const r = new Results();
  const hs = v.handshake;
  const frame1 = b64(hs.frame1);
  const frame2 = b64(hs.frame2);
  const frame3 = b64(hs.frame3);
  const frame4 = b64(hs.frame4);
  const serverIdentity = ed25519PrivateKeyFromSeed(hex(v.keys.server_identity_ed25519_seed_hex));
  const userEd25519 = ed25519PrivateKeyFromSeed(hex(v.keys.user_ed25519_seed_hex));
  const serverEphemeral = () => x25519KeyPair(hex(v.keys.server_ephemeral_x25519_private_hex));
  const clientEphemeral = () => x25519KeyPair(hex(v.keys.client_ephemeral_x25519_private_hex));
  const rsaPublic = () => importUserPublicKey(b64(v.keys.user_rsa_spki));

  await r.guard('keys', async () => {
    const serverSpki = exportSpki(serverIdentity);
    r.bytes('keys: server_key_spki', serverSpki, v.keys.server_key_spki, 'base64');
    r.equal('keys: server_fingerprint', fingerprint(serverSpki), v.keys.server_fingerprint);
    r.bytes('keys: user_ed25519_spki', exportSpki(userEd25519), v.keys.user_ed25519_spki, 'base64');
    const rsaSpki = exportSpki(await rsaUserKey(v));
    r.bytes('keys: user_rsa_spki', rsaSpki, v.keys.user_rsa_spki, 'base64');
    r.equal('keys: user_rsa_fingerprint', fingerprint(rsaSpki), v.keys.user_rsa_fingerprint);
  });

  // Computed values feed the next step, so a wrong expected value fails its own check only.
  let h2 = b64(hs.H2);
  await r.guard('handshake', async () => {
    const h1 = computeH1(frame1, frame2);
    r.bytes('handshake: H1', h1, hs.H1, 'base64');
    const authInput = serverAuthInput(h1);
    r.bytes(
      'handshake: server_auth_signed_bytes',
      authInput,
      hs.server_auth_signed_bytes,
      'base64',
    );
    const authSignature = ed25519Sign(serverIdentity, authInput);
    r.bytes('handshake: server_auth_signature', authSignature, hs.server_auth_signature, 'base64');
    r.holds(
      'handshake: server_auth_signature verifies under server_key_spki',
      ed25519Verify(importServerKey(b64(v.keys.server_key_spki)), authInput, authSignature),
      'ed25519Verify',
    );

    r.bytes('handshake: client_dh_pub', clientEphemeral().publicRaw, hs.client_dh_pub, 'base64');
    const fromClient = x25519(clientEphemeral().privateKey, serverEphemeral().publicRaw);
    const fromServer = x25519(serverEphemeral().privateKey, clientEphemeral().publicRaw);
    r.bytes('handshake: shared (client side)', fromClient, hs.shared, 'base64');
    r.bytes('handshake: shared (server side)', fromServer, hs.shared, 'base64');
    h2 = computeH2(frame1, frame2, frame3, clientEphemeral().publicRaw);
    r.bytes('handshake: H2', h2, hs.H2, 'base64');
    const prk = derivePrk(h2, fromClient);
    r.bytes('handshake: PRK', prk, hs.PRK, 'base64');
    const secrets = deriveTrafficSecrets(prk);
    r.bytes('handshake: c2s_secret', secrets.c2s, hs.c2s_secret, 'base64');
    r.bytes('handshake: s2c_secret', secrets.s2c, hs.s2c_secret, 'base64');
    const c2s = deriveRecordKeys(secrets.c2s);
    const s2c = deriveRecordKeys(secrets.s2c);
    r.bytes('handshake: c2s_key', c2s.key, hs.c2s_key_hex, 'hex');
    r.bytes('handshake: c2s_iv', c2s.iv, hs.c2s_iv_hex, 'hex');
    r.bytes('handshake: s2c_key', s2c.key, hs.s2c_key_hex, 'hex');
    r.bytes('handshake: s2c_iv', s2c.iv, hs.s2c_iv_hex, 'hex');

    const clientInput = clientAuthInput(h2);
    r.bytes('client_auth: signed bytes', clientInput, hs.client_auth_signed_bytes, 'base64');
    const edSignature = userSign(userEd25519, clientInput);
    const expectedEd = hs.client_auth_signature_ed25519;
    r.bytes('client_auth: Ed25519 signature (userSign)', edSignature, expectedEd, 'base64');
    const edAsync = await userSignAsync(userEd25519, clientInput);
    r.bytes('client_auth: Ed25519 signature (userSignAsync)', edAsync, expectedEd, 'base64');
    const sample = b64(hs.client_auth_signature_rsa_pss_sample);
    r.holds(
      'client_auth: RSA-PSS sample verifies (userVerifyAsync)',
      await userVerifyAsync(rsaPublic(), clientInput, sample),
      'userVerifyAsync over client_auth_signed_bytes',
    );
    const tampered = Buffer.from(clientInput).fill(0, 0, 1);
    r.holds(
      'client_auth: RSA-PSS sample fails over other bytes',
      !(await userVerifyAsync(rsaPublic(), tampered, sample)),
      'userVerifyAsync over the signed bytes with their first byte zeroed',
    );
    const rsaKey = await rsaUserKey(v);
    const ownRsa = await userSignAsync(rsaKey, clientInput);
    r.holds(
      'client_auth: own RSA-PSS signature verifies',
      await userVerifyAsync(publicKeyOf(rsaKey), clientInput, ownRsa),
      'userSignAsync then userVerifyAsync',
    );
    // The synchronous path must either agree or refuse RSA (browser-crypto refuses).
    let syncAnswer: string;
    try {
      syncAnswer = String(userVerify(rsaPublic(), clientInput, sample));
    } catch (error) {
      syncAnswer = /async path/.test(describe(error)) ? 'refused' : describe(error);
    }
    r.holds(
      'client_auth: sync RSA verify agrees or refuses',
      syncAnswer === 'true' || syncAnswer === 'refused',
      `userVerify: ${syncAnswer}`,
    );

    const c2sRecords = new RecordDirection('c2s', secrets.c2s);
    r.bytes('login: nonce', recordNonce(c2s.iv, 0), hs.login_nonce_hex, 'hex');
    const login = c2sRecords.seal(Buffer.from(hs.login_plaintext, 'utf8'));
    r.bytes('login: payload', login, hs.login_payload, 'base64');
  });

  await r.guard('state machines', async () => {
    const nonce = b64((JSON.parse(frame1.subarray(4).toString('utf8')) as { nonce: string }).nonce);
    const challenge = b64(
      (JSON.parse(frame2.subarray(4).toString('utf8')) as { challenge: string }).challenge,
    );
    const server = new ServerHandshake({
      identity: { privateKey: serverIdentity },
      sessionId: v.receipt.session_id,
      now: () => 1764000000001,
      randomBytes: () => challenge,
      ephemeral: serverEphemeral(),
      verifyLogin: () => Promise.resolve({ ok: true, publicKey: exportSpki(userEd25519) }),
    });
    const client = new ClientHandshake({
      trust: { fingerprint: v.keys.server_fingerprint },
      credentials: {
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        privateKey: userEd25519,
      },
      randomBytes: () => nonce,
      ephemeral: clientEphemeral(),
    });
    const toServer = new FrameDecoder();
    const toClient = new FrameDecoder();
    const f1 = client.start();
    r.bytes('state machines: client_hello is frame1', f1, hs.frame1, 'base64');
    const s1 = await server.receive(toServer.push(f1)[0]!);
    r.bytes(
      'state machines: server_hello is frame2',
      s1.send[0] ?? Buffer.alloc(0),
      hs.frame2,
      'base64',
    );
    r.bytes(
      'state machines: server_auth is frame3',
      s1.send[1] ?? Buffer.alloc(0),
      hs.frame3,
      'base64',
    );
    const [hello, auth] = toClient.push(Buffer.concat(s1.send));
    await client.receive(hello!);
    const c3 = await client.receive(auth!);
    r.bytes('state machines: login is frame4', c3.send[0] ?? Buffer.alloc(0), hs.frame4, 'base64');
    const s4 = await server.receive(toServer.push(c3.send[0] ?? frame4)[0]!);
    const reply = toClient.push(s4.send[0]!)[0]!;
    const ct = (JSON.parse(reply.body.toString('utf8')) as { ct: string }).ct;
    r.equal('state machines: login_ok ciphertext', ct, v.records[0]!.ciphertext);
    const c5 = await client.receive(reply);
    r.equal(
      'state machines: client reads login_ok',
      JSON.stringify(c5.loginOk ?? c5.error?.message),
      JSON.stringify(JSON.parse(v.records[0]!.plaintext)),
    );
    const view = c5.session?.view();
    r.bytes(
      'state machines: s2c chain',
      view?.s2cChain ?? Buffer.alloc(0),
      v.records[0]!.chain_after ?? '(no chain_after)',
      'base64',
    );
    r.equal(
      'state machines: both sides hold one view',
      JSON.stringify(s4.session?.view()),
      JSON.stringify(view),
    );
  });

  await r.guard('records', () => {
    // Sequence 0 of c2s was the login record.
    const send = {
      c2s: new RecordDirection('c2s', b64(hs.c2s_secret), 1),
      s2c: new RecordDirection('s2c', b64(hs.s2c_secret)),
    };
    const open = {
      c2s: new RecordDirection('c2s', b64(hs.c2s_secret), 1),
      s2c: new RecordDirection('s2c', b64(hs.s2c_secret)),
    };
    const chains = { c2s: new TranscriptChain(h2), s2c: new TranscriptChain(h2) };
    v.records.forEach((record, index) => {
      const direction = record.direction as 'c2s' | 's2c';
      const type = (JSON.parse(record.plaintext) as { type: string }).type;
      const name = `records[${index}] ${direction} ${record.seq} ${type}`;
      const plaintext = Buffer.from(record.plaintext, 'utf8');
      const snapshot = send[direction].snapshotForTests();
      r.equal(`${name}: seq`, String(snapshot.sequence), String(record.seq));
      r.bytes(`${name}: key`, snapshot.key, record.key, 'hex');
      r.bytes(`${name}: nonce`, recordNonce(snapshot.iv, snapshot.sequence), record.nonce, 'hex');
      r.bytes(`${name}: ciphertext`, send[direction].seal(plaintext), record.ciphertext, 'base64');
      const opened = open[direction].open(b64(record.ciphertext));
      r.equal(`${name}: opens`, opened.toString('utf8'), record.plaintext);
      // bye and receipt carry no chain_after: they stay out of the transcript (PROTOCOL.md §7).
      if (record.chain_after !== undefined) {
        chains[direction].append(plaintext);
        r.bytes(`${name}: chain_after`, chains[direction].head, record.chain_after, 'base64');
      }
      if (type === 'key_update') {
        send[direction].update();
        open[direction].update();
      }
    });
    r.equal('records: c2s count', String(chains.c2s.count), String(v.receipt.c2s_count));
    r.equal('records: s2c count', String(chains.s2c.count), String(v.receipt.s2c_count));
    r.bytes('records: c2s chain', chains.c2s.head, v.receipt.c2s_chain, 'base64');
    r.bytes('records: s2c chain', chains.s2c.head, v.receipt.s2c_chain, 'base64');
  });

  await r.guard('key_update', () => {
    const ku = v.key_update;
    r.bytes('key_update: old_secret is c2s_secret', b64(hs.c2s_secret), ku.old_secret, 'hex');
    const next = nextTrafficSecret(hex(ku.old_secret));
    r.bytes('key_update: new_secret', next, ku.new_secret, 'hex');
    const keys = deriveRecordKeys(next);
    r.bytes('key_update: new_key', keys.key, ku.new_key, 'hex');
    r.bytes('key_update: new_iv', keys.iv, ku.new_iv, 'hex');
  });

  await r.guard('message_signature', async () => {
    const ms = v.message_signature;
    const fields = { from: ms.from, to: ms.to, id: ms.id, ts: ms.ts, body: ms.body };
    r.bytes('message_signature: M', messageInput(fields), ms.M, 'base64');
    const signed = messageSignedBytes(fields);
    r.bytes('message_signature: digest', signed.subarray(-32), ms.digest, 'base64');
    r.bytes('message_signature: signed_bytes', signed, ms.signed_bytes, 'base64');
    const sig = signMessage(userEd25519, fields);
    r.equal('message_signature: sig_ed25519', sig, ms.sig_ed25519);
    r.holds(
      'message_signature: sig_ed25519 verifies',
      verifyMessage(publicKeyOf(userEd25519), fields, sig),
      'verifyMessage',
    );
    r.holds(
      'message_signature: sig_ed25519 fails for another sender',
      !verifyMessage(publicKeyOf(userEd25519), { ...fields, from: 'mallory' }, sig),
      'verifyMessage with from = mallory',
    );
    const rsaSample = b64(ms.sig_rsa_pss_sample);
    r.holds(
      'message_signature: RSA-PSS sample verifies',
      await userVerifyAsync(rsaPublic(), signed, rsaSample),
      'userVerifyAsync over signed_bytes',
    );
    r.holds(
      'message_signature: RSA-PSS sample fails for another body',
      !(await userVerifyAsync(
        rsaPublic(),
        messageSignedBytes({ ...fields, body: 'x' }),
        rsaSample,
      )),
      'userVerifyAsync over the signed bytes of body "x"',
    );
    const sendRecord = JSON.parse(v.records[1]!.plaintext) as { sig: string };
    r.equal('message_signature: is the send record sig', sig, sendRecord.sig);
  });

  await r.guard('receipt', () => {
    const rc = v.receipt;
    const d = receiptDigest({
      sessionId: rc.session_id,
      c2sCount: rc.c2s_count,
      c2sChain: b64(rc.c2s_chain),
      s2cCount: rc.s2c_count,
      s2cChain: b64(rc.s2c_chain),
    });
    r.bytes('receipt: D', d, rc.D, 'base64');
    const signature = ed25519Sign(serverIdentity, receiptSignedBytes(d));
    r.bytes('receipt: receipt_signature', signature, rc.receipt_signature, 'base64');
    const countersign = userSign(userEd25519, countersignSignedBytes(d));
    const expected = rc.countersign_signature_ed25519;
    r.bytes('receipt: countersign_signature_ed25519', countersign, expected, 'base64');
    const record = JSON.parse(v.records.at(-1)!.plaintext) as { signature: string };
    r.bytes('receipt: is the receipt record signature', signature, record.signature, 'base64');
  });

  const [zeroKey, flipped, replayed, foreignAuth, tooLarge] = v.must_reject;
  const isCode = (code: string) => (error: unknown) =>
    error instanceof ProtocolError && error.code === code;
  await r.throws(
    `must_reject: ${zeroKey!.what}`,
    () => x25519(serverEphemeral().privateKey, b64(zeroKey!.dh_pub!)),
    isCode('bad_frame'),
    'bad_frame',
  );
  await r.throws(
    `must_reject: ${flipped!.what}`,
    () => new RecordDirection('c2s', b64(hs.c2s_secret), 1).open(b64(flipped!.ciphertext!)),
    (error) => error instanceof RecordAuthenticationError,
    'RecordAuthenticationError',
  );
  await r.guard('must_reject: flipped, raw', () => {
    const nonce = recordNonce(hex(hs.c2s_iv_hex), 1);
    const plaintext = aesGcmOpen(hex(hs.c2s_key_hex), nonce, b64(flipped!.ciphertext!));
    r.holds(
      `must_reject: ${flipped!.what} (aesGcmOpen gives nothing)`,
      plaintext === undefined,
      'aesGcmOpen',
    );
  });
  await r.throws(
    `must_reject: ${replayed!.what}`,
    () =>
      new RecordDirection('c2s', b64(hs.c2s_secret), replayed!.seq).open(
        b64(replayed!.ciphertext!),
      ),
    (error) => error instanceof RecordAuthenticationError,
    'RecordAuthenticationError',
  );
  await r.guard('must_reject: foreign server_auth', async () => {
    const input = serverAuthInput(computeH1(frame1, frame2));
    const serverKey = importServerKey(b64(v.keys.server_key_spki));
    r.holds(
      `must_reject: ${foreignAuth!.what} (ed25519Verify)`,
      !ed25519Verify(serverKey, input, b64(foreignAuth!.signature!)),
      'ed25519Verify',
    );
    const client = new ClientHandshake({
      trust: { fingerprint: v.keys.server_fingerprint },
      credentials: {
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        privateKey: userEd25519,
      },
      randomBytes: () =>
        b64((JSON.parse(frame1.subarray(4).toString('utf8')) as { nonce: string }).nonce),
    });
    client.start();
    await client.receive({ bytes: frame2, body: frame2.subarray(4) });
    const forged = Buffer.from(
      JSON.stringify({ type: 'server_auth', signature: foreignAuth!.signature }),
    );
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(forged.length, 0);
    const step = await client.receive({ bytes: Buffer.concat([prefix, forged]), body: forged });
    const reason = (step.error as { reason?: string } | undefined)?.reason;
    r.holds(
      `must_reject: ${foreignAuth!.what} (ClientHandshake sends nothing)`,
      step.close && step.send.length === 0 && reason === 'bad_server_signature',
      `close=${step.close} sent=${step.send.length} reason=${reason}`,
    );
  });
  await r.throws(
    `must_reject: ${tooLarge!.what}`,
    () => new FrameDecoder({ maxFrame: 65536 }).push(hex(tooLarge!.frame_prefix_hex!)),
    isCode('frame_too_large'),
    'frame_too_large',
  );

  return r.list;
}
