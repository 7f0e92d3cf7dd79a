/**
 * Target `client-handshake`: the client side of PROTOCOL.md §3 and the session after it
 * (libs/protocol's ClientHandshake and ClientSession), fed by a server the fuzzer writes. The
 * client uses the vectors' nonce and ephemeral key, so the vectors' server frames are valid
 * answers.
 *
 * Input: `mode | chunking | data`, mode bits 0–1:
 * - 0 "raw": `data` is the server's byte stream, cut into chunks and decoded as the client
 *   library does (FrameDecoder.push); frames go to the handshake, then to the session;
 * - 1 "hello": `data` is the body of `server_hello`; the harness signs H1 over it with the
 *   vectors' identity key, so the client checks the key, not a signature it cannot meet;
 * - 2, 3 "session": the harness plays the vectors' server; `data` is records separated by
 *   RS (0x1e): the first is the plaintext of the answer to `login`, the others plaintexts of
 *   further records, all sealed under the s2c keys. `"SIGN"` in a record becomes the server's
 *   signature over the receipt the record spells, `"C2S_CHAIN"`/`"S2C_CHAIN"` the client's chains.
 *   Mode 3: the client says `bye` first, so a receipt is in order (and is countersigned).
 * Mode bit 2 pins the server's fingerprint (else trust on first use; bit 3 says yes).
 *
 * Invariants: `receive` never throws; a failed step carries ServerIdentityError, PeerError or
 * a ProtocolError with a PROTOCOL.md §2 code (never `internal`), closes, and leaves the state
 * `failed`; a refused server gets nothing (PROTOCOL.md §3 step 3); every frame the client writes is
 * a well-formed PROTOCOL.md §2 frame; ClientSession throws only ProtocolError and is then closed.
 */
import {
  ClientHandshake,
  type ClientHandshakeStep,
  type ClientSession,
  computeH1,
  ed25519Sign,
  FrameDecoder,
  fromBase64,
  parseFrame,
  parseJsonObject,
  PeerError,
  ProtocolError,
  type RawFrame,
  receiptDigest,
  receiptSignedBytes,
  serverAuthInput,
  ServerIdentityError,
  toBase64,
} from '@securechat/protocol';

import {
  ALICE,
  ALICE_PASSWORD,
  aliceKey,
  clientEphemeral,
  FIXED_NONCE,
  serverEphemeral,
  serverFingerprint,
  serverIdentityKey,
  SIGN_PLACEHOLDER,
  vectorFrames,
} from './fixtures';
import {
  checkFrameBytes,
  checkProtocolError,
  chunk,
  expectTyped,
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
  jsonFrame,
  rawFrame,
  sealedFrame,
  type SessionKeys,
} from './records';

const MAX_FRAME = 65536;

class Client {
  readonly handshake: ClientHandshake;
  readonly decoder = new FrameDecoder({ maxFrame: MAX_FRAME });
  /** Frames the client wrote, in order. */
  readonly sent: Buffer[] = [];
  session: ClientSession | undefined;
  closed = false;

  constructor(trustBits: number) {
    this.handshake = new ClientHandshake({
      trust:
        trustBits & 4
          ? { fingerprint: serverFingerprint }
          : { onFirstUse: () => (trustBits & 8) === 0 },
      credentials: {
        action: 'login',
        username: ALICE,
        password: ALICE_PASSWORD,
        privateKey: aliceKey,
      },
      randomBytes: () => Buffer.from(FIXED_NONCE),
      ephemeral: clientEphemeral(),
      maxFrame: MAX_FRAME,
    });
    this.#write(this.handshake.start());
  }

  #write(bytes: Buffer): void {
    checkFrameBytes(bytes, MAX_FRAME, 'client');
    this.sent.push(bytes);
  }

  /** Bytes from the server, as the client library reads them. */
  async receiveBytes(bytes: Buffer): Promise<void> {
    if (this.closed) return;
    let frames: RawFrame[];
    try {
      frames = this.decoder.push(bytes);
    } catch (error) {
      checkProtocolError(
        expectTyped<ProtocolError>(error, [ProtocolError], 'FrameDecoder'),
        'FrameDecoder',
      );
      this.closed = true;
      return;
    }
    invariant(this.decoder.bufferedBytes < 4 + MAX_FRAME, 'client decoder holds a whole frame');
    for (const frame of frames) {
      if (this.closed) return;
      await this.receiveFrame(frame);
    }
  }

  async receiveFrame(frame: RawFrame): Promise<void> {
    if (this.closed) return;
    if (this.session) {
      this.receiveRecord(frame);
      return;
    }
    const step = await this.handshake.receive(frame);
    trace(
      () =>
        `client handshake: ${this.handshake.state}${step.error ? ` (${String(step.error)})` : ''}`,
    );
    this.#step(step);
  }

  #step(step: ClientHandshakeStep): void {
    const state = this.handshake.state;
    for (const bytes of step.send) {
      this.#write(bytes);
      const type = parseFrame(bytes.subarray(4)).type;
      invariant(type === 'login' || type === 'error', `client sent a ${type} frame`);
    }
    if (step.error) {
      const error = expectTyped<ServerIdentityError | PeerError | ProtocolError>(
        step.error,
        [ServerIdentityError, PeerError, ProtocolError],
        'ClientHandshake.receive',
      );
      if (error instanceof ProtocolError) checkProtocolError(error, 'ClientHandshake.receive');
      if (error instanceof ServerIdentityError) {
        invariant(step.send.length === 0, 'client told a refused server something (§3 step 3)');
      }
      invariant(step.close, 'ClientHandshake failed without closing');
    }
    if (step.close) {
      invariant(state === 'failed', `ClientHandshake closed in state ${state}`);
      this.closed = true;
    } else if (step.session) {
      invariant(state === 'done', `ClientHandshake has a session in state ${state}`);
      this.session = step.session;
    } else {
      invariant(
        state === 'expect_server_auth' || state === 'expect_login_reply',
        `ClientHandshake is waiting in state ${state}`,
      );
    }
  }

  /** A record for the established session: a message, or a typed refusal that closes it. */
  receiveRecord(frame: RawFrame): string | undefined {
    const session = this.session!;
    try {
      const received = session.receive(frame);
      if (received.receipt) {
        invariant(session.state === 'receipt_received', 'receipt read but not noted');
        checkFrameBytes(session.countersign(), MAX_FRAME, 'countersign');
      }
      trace(
        () =>
          `client read ${received.message.type}${received.receipt ? ` (views match: ${received.receipt.viewsMatch}, signature valid: ${received.receipt.signatureValid})` : ''}`,
      );
      return received.message.type;
    } catch (error) {
      trace(() => `client refused a record: ${String(error)}`);
      checkProtocolError(
        expectTyped<ProtocolError>(error, [ProtocolError], 'ClientSession.receive'),
        'ClientSession.receive',
      );
      invariant(session.state === 'closed', `ClientSession failed and is ${session.state}`);
      this.closed = true;
      return undefined;
    }
  }
}

/** Mode "hello": the server_hello the fuzzer wrote, with a server_auth the harness signs. */
async function runHello(client: Client, body: Buffer): Promise<void> {
  const hello = rawFrame(body);
  const h1 = computeH1(vectorFrames.clientHello, hello);
  const auth = jsonFrame({
    type: 'server_auth',
    signature: toBase64(ed25519Sign(serverIdentityKey, serverAuthInput(h1))),
  });
  await client.receiveBytes(Buffer.concat([hello, auth]));
}

/** Fills a receipt's placeholders from the client's own view, and signs it as the server. */
function fillReceipt(plaintext: Buffer, session: ClientSession): Buffer {
  const view = session.view();
  let text = fillPlaceholder(plaintext, 'C2S_CHAIN', toBase64(view.c2sChain));
  text = fillPlaceholder(text, 'S2C_CHAIN', toBase64(view.s2cChain));
  if (!text.includes(`"${SIGN_PLACEHOLDER}"`)) return text;
  try {
    const receipt = parseJsonObject(text);
    const d = receiptDigest({
      sessionId: receipt.session_id as string,
      c2sCount: receipt.c2s_count as number,
      c2sChain: fromBase64(receipt.c2s_chain as string, 'c2s_chain', 32),
      s2cCount: receipt.s2c_count as number,
      s2cChain: fromBase64(receipt.s2c_chain as string, 's2c_chain', 32),
    });
    const signature = toBase64(ed25519Sign(serverIdentityKey, receiptSignedBytes(d)));
    return fillPlaceholder(text, SIGN_PLACEHOLDER, signature);
  } catch {
    return text; // not a receipt the harness can sign: the client sees it as written
  }
}

/** Mode "session": the vectors' server, then records the fuzzer wrote. */
async function runSession(client: Client, data: Buffer, byeFirst: boolean): Promise<void> {
  await client.receiveBytes(Buffer.concat([vectorFrames.serverHello, vectorFrames.serverAuth]));
  if (client.closed) return;
  const login = parseFrame(client.sent.at(-1)!.subarray(4));
  invariant(login.type === 'login', 'client did not log in after a valid server_auth');
  const clientDhPub = fromBase64(login.dh_pub, 'dh_pub', 32);
  const keys: SessionKeys = deriveSessionKeys(
    {
      frame1: vectorFrames.clientHello,
      frame2: vectorFrames.serverHello,
      frame3: vectorFrames.serverAuth,
    },
    serverEphemeral(),
    clientDhPub,
    clientDhPub,
  );
  const [reply, ...records] = splitRecords(data);
  await client.receiveFrame(frameOf(sealedFrame(keys.s2c, reply!)));
  if (!client.session || client.closed) return;
  if (byeFirst) checkFrameBytes(client.session.bye(), MAX_FRAME, 'bye');
  for (const record of records) {
    if (client.closed) return;
    const type = client.receiveRecord(
      frameOf(sealedFrame(keys.s2c, fillReceipt(record, client.session))),
    );
    if (type === 'key_update') keys.s2c.update(); // the client moved to the next s2c key (PROTOCOL.md §4)
  }
}

function frameOf(bytes: Buffer): RawFrame {
  return { bytes, body: bytes.subarray(4) };
}

export const target: FuzzTarget = {
  name: 'client-handshake',
  async run(data: Buffer): Promise<void> {
    const input = new InputReader(data);
    const mode = input.byte();
    const chunking = input.byte();
    const rest = input.rest();
    const client = new Client(mode);
    switch (mode & 3) {
      case 0:
        for (const piece of chunk(rest, chunking)) await client.receiveBytes(piece);
        break;
      case 1:
        await runHello(client, rest);
        break;
      default:
        await runSession(client, rest, (mode & 3) === 3);
    }
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
