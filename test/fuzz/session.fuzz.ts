/**
 * Target `session`: what a logged-in client can make the gateway do. The harness logs alice in
 * with the project's own ClientHandshake (Ed25519 key, pinned server key, the vectors' nonce and
 * ephemeral key), derives the c2s and s2c keys as the client does, and then seals the records
 * the fuzzer wrote, so inputs reach ServerSession's record checks, the message schemas, the
 * request rules and the gateway's request dispatch (RecordReader, RequestHandler,
 * DeliverySync, the close with receipt and countersign) — not just the AEAD.
 *
 * Input: `control | record (RS record)*`, records separated by RS (0x1e).
 * - control bit 0: pipelined — every record is written at once, then the gateway runs; else the
 *   gateway answers each record before the next is written; bit 1: the relay's fan-out hands
 *   the connection a live message after each record; bit 2: the fan-out channel "comes back"
 *   (resync: every pending message again) after each record;
 * - a record is the plaintext of the next c2s record, sealed under the current key (the harness
 *   follows `key_update`s); one starting with 0x1f is sent as a plaintext frame body instead,
 *   one starting with 0x1d as raw bytes (both outside the record layer);
 * - placeholders: `"SIGN"` in a `send` becomes alice's PROTOCOL.md §6 signature over the send as
 * written;
 *   in a `countersign`, `"C2S_CHAIN"`, `"S2C_CHAIN"`, `"C2S_COUNT"`, `"S2C_COUNT"` become the
 *   values of the server's last receipt and `"SIGN"` alice's countersignature over the view
 *   the record spells.
 *
 * Invariants: the gateway logs no error (an untyped failure behind a request) and no promise
 * goes unhandled; every byte it writes is a PROTOCOL.md §2 frame within max_frame holding a record
 * that authenticates under the next s2c sequence number and parses as a PROTOCOL.md §6 server
 * message; no `internal` error (the in-memory services never fail); at most two records answer one
 * record; a receipt's signature verifies and nothing follows the receipt (PROTOCOL.md §6, §7), on
 * the wire or in the transcript; the transcript it ships matches the view it signs (PROTOCOL.md §7
 * chains recomputed from the shipped records); the connection ends in a defined state (open,
 * closing, or closed with its socket ended) and closes on shutdown without hanging.
 */
import {
  ClientHandshake,
  computeChainOf,
  countersignSignedBytes,
  ed25519Verify,
  FrameDecoder,
  fromBase64,
  parseClientMessage,
  parseFrame,
  parseJsonObject,
  parseServerMessage,
  type RawFrame,
  type Receipt,
  receiptDigest,
  receiptSignedBytes,
  signMessage,
  toBase64,
  userSign,
} from '@securechat/protocol';

import {
  ALICE,
  ALICE_PASSWORD,
  aliceKey,
  clientEphemeral,
  FIXED_NONCE,
  serverFingerprint,
  serverPublicKey,
  SIGN_PLACEHOLDER,
} from './fixtures';
import { GatewayHarness, GATEWAY_MAX_FRAME } from './gateway-harness';
import {
  checkFrameBytes,
  fuzzEntry,
  type FuzzTarget,
  InputReader,
  invariant,
  splitRecords,
  trace,
} from './harness';
import {
  deriveSessionKeys,
  fillPlaceholder,
  openSealed,
  rawFrame,
  sealedFrame,
  type SessionKeys,
} from './records';

const PLAINTEXT_FRAME = 0x1f;
const RAW_BYTES = 0x1d;

/** alice on the gateway, after a real handshake. */
class LoggedIn {
  readonly gateway = new GatewayHarness();
  readonly decoder = new FrameDecoder({ maxFrame: GATEWAY_MAX_FRAME });
  keys!: SessionKeys;
  /** The server's records after login_ok, as read. */
  readonly answers: string[] = [];
  lastReceipt: Receipt | undefined;

  /** Runs the handshake with the project's client; fails the input if login does not succeed. */
  async logIn(): Promise<void> {
    const own = clientEphemeral();
    const client = new ClientHandshake({
      trust: { fingerprint: serverFingerprint },
      credentials: {
        action: 'login',
        username: ALICE,
        password: ALICE_PASSWORD,
        privateKey: aliceKey,
      },
      randomBytes: () => Buffer.from(FIXED_NONCE),
      ephemeral: own,
      maxFrame: GATEWAY_MAX_FRAME,
    });
    const frame1 = client.start();
    this.gateway.push(frame1);
    await this.gateway.settle('handshake');
    const [hello, auth, ...early] = this.decoder.push(this.gateway.takeOutput());
    invariant(hello && auth && early.length === 0, 'the gateway did not answer client_hello');
    for (const frame of [hello, auth]) {
      const step = await client.receive(frame);
      for (const bytes of step.send) this.gateway.push(bytes);
      invariant(!step.error, 'the project client refused the gateway', step.error);
    }
    const serverHello = parseFrame(hello.body);
    invariant(serverHello.type === 'server_hello', 'no server_hello');
    this.keys = deriveSessionKeys(
      { frame1, frame2: hello.bytes, frame3: auth.bytes },
      own,
      fromBase64(serverHello.dh_pub, 'dh_pub', 32),
      own.publicRaw,
    );
    this.keys.c2s.seal(Buffer.alloc(0)); // c2s sequence 0 was the login record (PROTOCOL.md §3 step 4)
    await this.gateway.settle('login');
    const [loginOk, ...rest] = this.decoder.push(this.gateway.takeOutput());
    invariant(loginOk, 'the gateway did not answer login');
    const step = await client.receive(loginOk);
    invariant(step.session, 'login failed', step.error);
    openSealed(this.keys.s2c, loginOk.body, 'login_ok'); // our copy of s2c moves past it
    this.#read(rest);
  }

  /** Reads what the gateway wrote since the last call. */
  readOutput(): void {
    let frames: RawFrame[];
    try {
      frames = this.decoder.push(this.gateway.takeOutput());
    } catch (error) {
      throw new Error('the gateway wrote bytes that are not §2 frames within max_frame', {
        cause: error,
      });
    }
    this.#read(frames);
  }

  #read(frames: readonly RawFrame[]): void {
    for (const frame of frames) {
      checkFrameBytes(frame.bytes, GATEWAY_MAX_FRAME, 'gateway');
      let plaintext: Buffer;
      try {
        plaintext = openSealed(this.keys.s2c, frame.body, 'gateway record');
      } catch (error) {
        throw new Error('a gateway record does not open under the next s2c key', { cause: error });
      }
      const message = (() => {
        try {
          return parseServerMessage(plaintext);
        } catch (error) {
          throw new Error(
            `the gateway sent a message its client cannot read: ${plaintext.toString()}`,
            {
              cause: error,
            },
          );
        }
      })();
      // PROTOCOL.md §6, §7: the server sends nothing after its receipt (a failure then closes
      // silently).
      invariant(
        !this.lastReceipt,
        `the gateway sent a record after its receipt: ${plaintext.toString()}`,
      );
      this.answers.push(message.type);
      trace(() => `gateway: ${plaintext.toString().slice(0, 160)}`);
      switch (message.type) {
        case 'key_update':
          this.keys.s2c.update();
          break;
        case 'error':
          invariant(
            message.code !== 'internal',
            `the gateway answered internal: ${message.message}`,
          );
          break;
        case 'receipt': {
          const view = {
            sessionId: message.session_id,
            c2sCount: message.c2s_count,
            c2sChain: fromBase64(message.c2s_chain, 'c2s_chain', 32),
            s2cCount: message.s2c_count,
            s2cChain: fromBase64(message.s2c_chain, 's2c_chain', 32),
          };
          invariant(
            ed25519Verify(
              serverPublicKey,
              receiptSignedBytes(receiptDigest(view)),
              fromBase64(message.signature, 'signature', 64),
            ),
            'the receipt signature does not verify',
          );
          this.lastReceipt = message;
          break;
        }
        default:
          break;
      }
    }
  }

  /** The bytes that carry one fuzzer record to the gateway. */
  encode(record: Buffer): Buffer {
    if (record[0] === RAW_BYTES) return record.subarray(1);
    if (record[0] === PLAINTEXT_FRAME) return rawFrame(record.subarray(1));
    const plaintext = this.#fill(record);
    const frame = sealedFrame(this.keys.c2s, plaintext);
    let type: string | undefined;
    try {
      type = parseClientMessage(plaintext).type;
    } catch {
      type = undefined; // the gateway refuses it and closes: nothing more to follow
    }
    if (type === 'key_update') this.keys.c2s.update(); // PROTOCOL.md §4: records after it use the next key
    return frame;
  }

  /** Placeholders: signatures the fuzzer cannot make, over the fields it wrote. */
  #fill(record: Buffer): Buffer {
    const receipt = this.lastReceipt;
    let text = record;
    if (receipt) {
      text = fillPlaceholder(text, 'C2S_CHAIN', receipt.c2s_chain);
      text = fillPlaceholder(text, 'S2C_CHAIN', receipt.s2c_chain);
      text = fillPlaceholder(text, 'C2S_COUNT', receipt.c2s_count);
      text = fillPlaceholder(text, 'S2C_COUNT', receipt.s2c_count);
    }
    if (!text.includes(`"${SIGN_PLACEHOLDER}"`)) return text;
    try {
      const message = parseJsonObject(text);
      let signature: string;
      if (message.type === 'send') {
        signature = signMessage(aliceKey, {
          from: ALICE,
          to: message.to as string,
          id: message.id as string,
          ts: message.ts as number,
          body: message.body as string,
        });
      } else if (message.type === 'countersign' && receipt) {
        const d = receiptDigest({
          sessionId: receipt.session_id,
          c2sCount: message.c2s_count as number,
          c2sChain: fromBase64(message.c2s_chain as string, 'c2s_chain', 32),
          s2cCount: message.s2c_count as number,
          s2cChain: fromBase64(message.s2c_chain as string, 's2c_chain', 32),
        });
        signature = toBase64(userSign(aliceKey, countersignSignedBytes(d)));
      } else {
        return text;
      }
      return fillPlaceholder(text, SIGN_PLACEHOLDER, signature);
    } catch {
      return text; // fields the signature cannot cover: the gateway sees the record as written
    }
  }

  /** PROTOCOL.md §7: the transcript the gateway shipped recomputes to the view it closed with. */
  checkTranscript(): void {
    const { opened, records, closed } = this.gateway.transcript;
    if (!opened) return;
    invariant(closed, 'the gateway never closed the transcript it opened');
    records.forEach((record, i) => invariant(record.position === i, 'transcript positions skip'));
    const h2 = Buffer.from(opened.h2, 'base64');
    // Only a request the gateway refused goes by digest (docs/PROTOCOL.md §10 item 25): a
    // chained c2s record, 32 bytes.
    for (const record of records) {
      if (record.digest === undefined) continue;
      invariant(
        record.direction === 'c2s' && record.chained && record.digest.length === 32,
        `a ${record.direction} record shipped by digest`,
      );
    }
    const receiptAt = records.findIndex(
      (r) =>
        r.direction === 's2c' &&
        r.plaintext !== undefined &&
        parseJsonObject(r.plaintext).type === 'receipt',
    );
    const afterReceipt = receiptAt === -1 ? [] : records.slice(receiptAt + 1);
    const recompute = (direction: 'c2s' | 's2c') =>
      computeChainOf(
        h2,
        records.filter((r) => r.direction === direction && r.chained),
      );
    const view = closed.serverView;
    const matches = (direction: 'c2s' | 's2c') => {
      const { count, chain } = recompute(direction);
      return direction === 'c2s'
        ? count === view.c2sCount && toBase64(chain) === view.c2sChain
        : count === view.s2cCount && toBase64(chain) === view.s2cChain;
    };
    invariant(matches('c2s'), 'the shipped c2s records do not recompute the view');
    invariant(
      matches('s2c'),
      'the shipped s2c records do not recompute the view the gateway closed with',
    );
    const s2cAfter = afterReceipt.filter((r) => r.direction === 's2c');
    invariant(
      s2cAfter.length === 0,
      `s2c record(s) shipped after the receipt: ${s2cAfter.map((r) => String(r.plaintext)).join(' ')}`,
    );
  }
}

export const target: FuzzTarget = {
  name: 'session',
  async run(data: Buffer): Promise<void> {
    const input = new InputReader(data);
    const control = input.byte();
    const records = splitRecords(input.rest());
    const alice = new LoggedIn();
    await alice.logIn();
    const pipelined = (control & 1) !== 0;
    let written = 0;
    let fannedOut = 0;
    for (const record of records) {
      if (alice.gateway.connection.phase === 'closed') break;
      alice.gateway.push(alice.encode(record));
      written += 1;
      if (control & 2) alice.gateway.deliverLive(fannedOut++);
      if (control & 4) void alice.gateway.connection.resync();
      if (!pipelined) {
        await alice.gateway.settle('session');
        alice.readOutput();
      }
    }
    await alice.gateway.settle('session');
    alice.readOutput();
    alice.gateway.checkState('session');
    // The backlog (the one message waiting at login and the live ones, again on each resync),
    // at most an answer and a key_update per record, the receipt and a final error.
    const backlog = (1 + fannedOut) * (control & 4 ? written + 1 : 1);
    invariant(
      alice.answers.length <= 2 * written + backlog + fannedOut + 2,
      `the gateway wrote ${alice.answers.length} records for ${written} (amplification)`,
    );
    const phase = alice.gateway.connection.phase;
    await alice.gateway.dispose('session');
    alice.readOutput();
    alice.checkTranscript();
    trace(() => `session was ${phase}; records read: ${alice.answers.join(' ')}`);
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
