/**
 * Known-answer tests: every value of shared/protocol/vectors.json (copied to
 * test/fixtures/vectors.json) reproduced by this library — twice: on node-crypto (Jest project
 * 'unit') and on browser-crypto (project 'protocol-browser-crypto', jest.config.js), which has
 * no synchronous RSA and signs and verifies RSA-PSS through WebCrypto.
 */
import { KeyObject } from 'node:crypto';

import {
  b64,
  clientEphemeral,
  helloRandom,
  hex,
  serverEphemeral,
  serverIdentityKey,
  userEd25519Key,
  userRsaKeyHandle,
  userRsaPublicKey,
  vectors,
} from '../test/vectors';
import { ClientHandshake } from './client-handshake';
import {
  aesGcmOpen,
  ed25519Sign,
  ed25519Verify,
  exportSpki,
  fingerprint,
  importServerKey,
  importUserPublicKey,
  publicKeyOf,
  userSign,
  userSignAsync,
  userVerify,
  userVerifyAsync,
  x25519,
} from './crypto';
import { toBase64 } from './encoding';
import { FrameDecoder } from './frame-decoder';
import { ProtocolError } from './errors/protocol-error';
import { RecordAuthenticationError } from './errors/record-authentication-error';
import {
  clientAuthInput,
  computeH1,
  computeH2,
  derivePrk,
  deriveRecordKeys,
  deriveTrafficSecrets,
  nextTrafficSecret,
  serverAuthInput,
} from './key-schedule';
import { messageInput, messageSignedBytes, signMessage, verifyMessage } from './message-signature';
import { RecordDirection, recordNonce } from './record-layer';
import { type LoginRequest, ServerHandshake } from './server-handshake';
import {
  countersignSignedBytes,
  receiptDigest,
  receiptSignedBytes,
  TranscriptChain,
} from './transcript';

const hs = vectors.handshake;
const frame1 = b64(hs.frame1);
const frame2 = b64(hs.frame2);
const frame3 = b64(hs.frame3);
const frame4 = b64(hs.frame4);
const h2 = b64(hs.H2);

/** node-crypto signs and verifies RSA synchronously too; browser-crypto must refuse to. */
const syncRsa = userRsaPublicKey() instanceof KeyObject;

/** RSA verification both ways the implementation offers: the sync answer must match the async. */
async function verifyRsa(data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const key = userRsaPublicKey();
  const viaAsync = await userVerifyAsync(key, data, signature);
  if (syncRsa) expect(userVerify(key, data, signature)).toBe(viaAsync);
  else expect(() => userVerify(key, data, signature)).toThrow(/async path/);
  return viaAsync;
}

describe('keys', () => {
  it('derives the server identity SPKI and fingerprint from the seed', () => {
    const spki = exportSpki(serverIdentityKey);
    expect(toBase64(spki)).toBe(vectors.keys.server_key_spki);
    expect(fingerprint(spki)).toBe(vectors.keys.server_fingerprint);
  });

  it('derives the user keys SPKI and the RSA fingerprint', async () => {
    expect(toBase64(exportSpki(userEd25519Key))).toBe(vectors.keys.user_ed25519_spki);
    const rsaSpki = exportSpki(await userRsaKeyHandle());
    expect(toBase64(rsaSpki)).toBe(vectors.keys.user_rsa_spki);
    expect(fingerprint(rsaSpki)).toBe(vectors.keys.user_rsa_fingerprint);
    expect(importUserPublicKey(rsaSpki).asymmetricKeyType).toBe('rsa');
  });
});

describe('handshake values', () => {
  it('computes H1 and the server_auth signature (deterministic Ed25519)', () => {
    const h1 = computeH1(frame1, frame2);
    expect(toBase64(h1)).toBe(hs.H1);
    expect(toBase64(serverAuthInput(h1))).toBe(hs.server_auth_signed_bytes);
    const signature = ed25519Sign(serverIdentityKey, serverAuthInput(h1));
    expect(toBase64(signature)).toBe(hs.server_auth_signature);
  });

  it('computes the shared secret from both sides, H2, PRK and the traffic secrets', () => {
    expect(toBase64(clientEphemeral().publicRaw)).toBe(hs.client_dh_pub);
    const serverDhPub = serverEphemeral().publicRaw;
    const fromClient = x25519(clientEphemeral().privateKey, serverDhPub);
    const fromServer = x25519(serverEphemeral().privateKey, b64(hs.client_dh_pub));
    expect(toBase64(fromClient)).toBe(hs.shared);
    expect(toBase64(fromServer)).toBe(hs.shared);

    expect(toBase64(computeH2(frame1, frame2, frame3, b64(hs.client_dh_pub)))).toBe(hs.H2);
    const prk = derivePrk(h2, fromClient);
    expect(toBase64(prk)).toBe(hs.PRK);
    const secrets = deriveTrafficSecrets(prk);
    expect(toBase64(secrets.c2s)).toBe(hs.c2s_secret);
    expect(toBase64(secrets.s2c)).toBe(hs.s2c_secret);

    const c2s = deriveRecordKeys(secrets.c2s);
    const s2c = deriveRecordKeys(secrets.s2c);
    expect(c2s.key.toString('hex')).toBe(hs.c2s_key_hex);
    expect(c2s.iv.toString('hex')).toBe(hs.c2s_iv_hex);
    expect(s2c.key.toString('hex')).toBe(hs.s2c_key_hex);
    expect(s2c.iv.toString('hex')).toBe(hs.s2c_iv_hex);
  });

  it('signs the client auth input (Ed25519 exactly; the RSA-PSS sample verifies)', async () => {
    const input = clientAuthInput(h2);
    expect(toBase64(input)).toBe(hs.client_auth_signed_bytes);
    expect(toBase64(userSign(userEd25519Key, input))).toBe(hs.client_auth_signature_ed25519);
    expect(toBase64(await userSignAsync(userEd25519Key, input))).toBe(
      hs.client_auth_signature_ed25519,
    );
    expect(await verifyRsa(input, b64(hs.client_auth_signature_rsa_pss_sample))).toBe(true);
    // Our own RSA-PSS signatures are randomised but must verify the same way.
    const userRsa = await userRsaKeyHandle();
    expect(await verifyRsa(input, await userSignAsync(userRsa, input))).toBe(true);
    if (syncRsa) expect(await verifyRsa(input, userSign(userRsa, input))).toBe(true);
    else expect(() => userSign(userRsa, input)).toThrow(/async path/);
    expect(
      await verifyRsa(
        Buffer.from(input).fill(0, 0, 1),
        b64(hs.client_auth_signature_rsa_pss_sample),
      ),
    ).toBe(false);
  });

  it('seals the login payload with c2s sequence 0', () => {
    const c2s = new RecordDirection('c2s', b64(hs.c2s_secret));
    expect(recordNonce(hex(hs.c2s_iv_hex), 0).toString('hex')).toBe(hs.login_nonce_hex);
    expect(toBase64(c2s.seal(Buffer.from(hs.login_plaintext, 'utf8')))).toBe(hs.login_payload);
  });
});

describe('both state machines reproduce frames 1–4 and login_ok byte for byte', () => {
  it('runs the vectors handshake', async () => {
    const random = helloRandom();
    const requests: LoginRequest[] = [];
    const server = new ServerHandshake({
      identity: { privateKey: serverIdentityKey },
      sessionId: 's-0001',
      now: () => 1764000000001,
      randomBytes: () => random.challenge,
      ephemeral: serverEphemeral(),
      verifyLogin: (request) => {
        requests.push(request);
        return Promise.resolve({ ok: true, publicKey: exportSpki(userEd25519Key) });
      },
    });
    const client = new ClientHandshake({
      trust: { fingerprint: vectors.keys.server_fingerprint },
      credentials: {
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        privateKey: userEd25519Key,
      },
      randomBytes: () => random.nonce,
      ephemeral: clientEphemeral(),
    });
    const toServer = new FrameDecoder();
    const toClient = new FrameDecoder();

    const f1 = client.start();
    expect(f1.equals(frame1)).toBe(true);
    const s1 = await server.receive(toServer.push(f1)[0]!);
    expect(s1.send).toHaveLength(2);
    expect(s1.send[0]!.equals(frame2)).toBe(true);
    expect(s1.send[1]!.equals(frame3)).toBe(true);

    const [r2, r3] = toClient.push(Buffer.concat(s1.send));
    expect((await client.receive(r2!)).send).toEqual([]);
    const c3 = await client.receive(r3!);
    expect(c3.send).toHaveLength(1);
    expect(c3.send[0]!.equals(frame4)).toBe(true);

    const s4 = await server.receive(toServer.push(c3.send[0]!)[0]!);
    expect(s4.error).toBeUndefined();
    expect(requests).toEqual([
      {
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        signature: b64(hs.client_auth_signature_ed25519),
        h2,
      },
    ]);
    const loginOkFrame = JSON.parse(toClient.push(s4.send[0]!)[0]!.body.toString()) as {
      ct: string;
    };
    expect(loginOkFrame.ct).toBe(vectors.records[0]!.ciphertext);

    const c5 = await client.receive({ bytes: s4.send[0]!, body: s4.send[0]!.subarray(4) });
    expect(c5.loginOk).toEqual(JSON.parse(vectors.records[0]!.plaintext));
    expect(toBase64(c5.session!.view().s2cChain)).toBe(vectors.records[0]!.chain_after);
    expect(s4.session!.view()).toEqual(c5.session!.view());
  });
});

describe('records', () => {
  it('reproduces every record: nonce, ciphertext, chain; key update mid-stream', () => {
    const send = {
      c2s: new RecordDirection('c2s', b64(hs.c2s_secret), 1),
      s2c: new RecordDirection('s2c', b64(hs.s2c_secret)),
    };
    const open = {
      c2s: new RecordDirection('c2s', b64(hs.c2s_secret), 1),
      s2c: new RecordDirection('s2c', b64(hs.s2c_secret)),
    };
    const chains = { c2s: new TranscriptChain(h2), s2c: new TranscriptChain(h2) };

    for (const record of vectors.records) {
      const direction = record.direction as 'c2s' | 's2c';
      const plaintext = Buffer.from(record.plaintext, 'utf8');
      const snapshot = send[direction].snapshotForTests();
      expect(snapshot.sequence).toBe(record.seq);
      expect(snapshot.key.toString('hex')).toBe(record.key);
      expect(recordNonce(snapshot.iv, record.seq).toString('hex')).toBe(record.nonce);

      expect(toBase64(send[direction].seal(plaintext))).toBe(record.ciphertext);
      expect(open[direction].open(b64(record.ciphertext)).equals(plaintext)).toBe(true);

      const type = (JSON.parse(record.plaintext) as { type: string }).type;
      if ('chain_after' in record) {
        chains[direction].append(plaintext);
        expect(toBase64(chains[direction].head)).toBe(record.chain_after);
      } else {
        expect(['bye', 'receipt']).toContain(type);
      }
      if (type === 'key_update') {
        send[direction].update();
        open[direction].update();
      }
    }
    expect(chains.c2s.count).toBe(vectors.receipt.c2s_count);
    expect(chains.s2c.count).toBe(vectors.receipt.s2c_count);
  });

  it('derives the key update secret, key and iv', () => {
    const ku = vectors.key_update;
    expect(ku.old_secret).toBe(b64(hs.c2s_secret).toString('hex'));
    const next = nextTrafficSecret(hex(ku.old_secret));
    expect(next.toString('hex')).toBe(ku.new_secret);
    const keys = deriveRecordKeys(next);
    expect(keys.key.toString('hex')).toBe(ku.new_key);
    expect(keys.iv.toString('hex')).toBe(ku.new_iv);
  });
});

describe('message signature', () => {
  const ms = vectors.message_signature;
  const fields = { from: ms.from, to: ms.to, id: ms.id, ts: ms.ts, body: ms.body };

  it('builds M, its digest and the signed bytes', () => {
    expect(toBase64(messageInput(fields))).toBe(ms.M);
    expect(toBase64(messageSignedBytes(fields).subarray(-32))).toBe(ms.digest);
    expect(toBase64(messageSignedBytes(fields))).toBe(ms.signed_bytes);
  });

  it('signs with Ed25519 exactly and verifies the RSA-PSS sample', async () => {
    expect(signMessage(userEd25519Key, fields)).toBe(ms.sig_ed25519);
    expect(verifyMessage(publicKeyOf(userEd25519Key), fields, ms.sig_ed25519)).toBe(true);
    const rsaSignature = b64(ms.sig_rsa_pss_sample);
    expect(await verifyRsa(messageSignedBytes(fields), rsaSignature)).toBe(true);
    expect(await verifyRsa(messageSignedBytes({ ...fields, body: 'hello' }), rsaSignature)).toBe(
      false,
    );
    if (syncRsa) {
      expect(verifyMessage(userRsaPublicKey(), fields, ms.sig_rsa_pss_sample)).toBe(true);
    }
    expect(
      verifyMessage(publicKeyOf(userEd25519Key), { ...fields, from: 'mallory' }, ms.sig_ed25519),
    ).toBe(false);
  });

  it('is the sig the vectors send record carries', () => {
    const send = JSON.parse(vectors.records[1]!.plaintext) as { sig: string };
    expect(send.sig).toBe(ms.sig_ed25519);
  });
});

describe('receipt', () => {
  const rc = vectors.receipt;
  const view = {
    sessionId: rc.session_id,
    c2sCount: rc.c2s_count,
    c2sChain: b64(rc.c2s_chain),
    s2cCount: rc.s2c_count,
    s2cChain: b64(rc.s2c_chain),
  };

  it('computes D and both signatures', () => {
    const d = receiptDigest(view);
    expect(toBase64(d)).toBe(rc.D);
    expect(toBase64(ed25519Sign(serverIdentityKey, receiptSignedBytes(d)))).toBe(
      rc.receipt_signature,
    );
    expect(toBase64(userSign(userEd25519Key, countersignSignedBytes(d)))).toBe(
      rc.countersign_signature_ed25519,
    );
    const receiptRecord = JSON.parse(vectors.records.at(-1)!.plaintext) as { signature: string };
    expect(receiptRecord.signature).toBe(rc.receipt_signature);
  });
});

describe('must_reject', () => {
  const [zeroKey, flipped, replayed, foreignAuth, tooLarge] = vectors.must_reject;

  it(`rejects: ${zeroKey!.what}`, () => {
    expect(() => x25519(serverEphemeral().privateKey, b64(zeroKey!.dh_pub!))).toThrow(
      expect.objectContaining({ code: 'bad_frame' }),
    );
  });

  it(`rejects: ${flipped!.what}`, () => {
    const c2s = new RecordDirection('c2s', b64(hs.c2s_secret), 1);
    expect(() => c2s.open(b64(flipped!.ciphertext!))).toThrow(RecordAuthenticationError);
    // and the raw primitive agrees: no plaintext at all
    expect(
      aesGcmOpen(hex(hs.c2s_key_hex), hex('77a447b00affa007cf4fdd63'), b64(flipped!.ciphertext!)),
    ).toBeUndefined();
  });

  it(`rejects: ${replayed!.what}`, () => {
    const c2s = new RecordDirection('c2s', b64(hs.c2s_secret), replayed!.seq);
    expect(() => c2s.open(b64(replayed!.ciphertext!))).toThrow(RecordAuthenticationError);
  });

  it(`rejects: ${foreignAuth!.what}`, async () => {
    const serverKey = importServerKey(b64(vectors.keys.server_key_spki));
    const input = serverAuthInput(computeH1(frame1, frame2));
    expect(ed25519Verify(serverKey, input, b64(foreignAuth!.signature!))).toBe(false);

    // And the client role refuses it before sending a login.
    const random = helloRandom();
    const client = new ClientHandshake({
      trust: { fingerprint: vectors.keys.server_fingerprint },
      credentials: {
        action: 'login',
        username: 'alice',
        password: 'correct horse battery staple',
        privateKey: userEd25519Key,
      },
      randomBytes: () => random.nonce,
    });
    client.start();
    await client.receive({ bytes: frame2, body: frame2.subarray(4) });
    const forged = Buffer.from(
      JSON.stringify({ type: 'server_auth', signature: foreignAuth!.signature }),
    );
    const step = await client.receive({
      bytes: Buffer.concat([Buffer.from([0, 0, 0, forged.length]), forged]),
      body: forged,
    });
    expect(step.send).toEqual([]);
    expect(step.close).toBe(true);
    expect(step.error).toMatchObject({
      name: 'ServerIdentityError',
      reason: 'bad_server_signature',
    });
  });

  it(`rejects: ${tooLarge!.what}`, () => {
    const decoder = new FrameDecoder({ maxFrame: 65536 });
    let error: unknown;
    try {
      decoder.push(hex(tooLarge!.frame_prefix_hex!));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe('frame_too_large');
    expect(decoder.bufferedBytes).toBe(0);
  });
});
