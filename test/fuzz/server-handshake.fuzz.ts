/**
 * Target `server-handshake`: the server side of PROTOCOL.md §3, fed by a client the fuzzer writes.
 *
 * Every input runs against two servers:
 * - libs/protocol's ServerHandshake behind a FrameDecoder, with the vectors' fixed challenge and
 *   ephemeral key (deterministic; an `internal` error shows its cause);
 * - the gateway's ClientConnection on an in-memory byte stream (FramedSocket bounds, timers,
 *   LoginGate, the early-frame rule), with in-memory auth.
 *
 * Input: `mode | chunking | data`.
 * - mode bit 0 clear, "raw": `data` is the client's byte stream, delivered in chunks;
 * - mode bit 0 set, "login": the harness says the vectors' client_hello, derives the keys from
 *   the server's answer, and seals `data` as the login record's plaintext (PROTOCOL.md §3 step 4),
 *   so the login payload parser, the verifier and login_ok are reached. `"SIGN"` in `data` becomes
 *   alice's valid signature over H2 (and `"SPKI"` her public key).
 * - mode bit 1 (protocol server only): frames of one chunk are handed over without waiting
 *   for the previous one's answer, as a pipelining caller would.
 *
 * Invariants: no untyped error, no `internal` error, every frame the server writes is a
 * well-formed PROTOCOL.md §2 frame of the expected kind, at most 4 KiB written before login
 * completes (no amplification), the decoder holds less than one frame, and the state machine is
 * either waiting for its next frame or closed with an error (a silent close only for a record that
 * failed to authenticate).
 */
import {
  closesConnection,
  exportSpki,
  FrameDecoder,
  fromBase64,
  isErrorCode,
  type LoginDecision,
  type LoginRequest,
  MAX_HANDSHAKE_FRAME,
  parseFrame,
  parseServerMessage,
  PeerError,
  ProtocolError,
  type RawFrame,
  RecordAuthenticationError,
  ServerHandshake,
  type ServerHandshakeStep,
  toBase64,
} from '@securechat/protocol';

import {
  aliceKey,
  clientAuthSignature,
  clientEphemeral,
  FIXED_CHALLENGE,
  SERVER_TIME,
  SESSION_ID,
  serverEphemeral,
  serverIdentityKey,
  SIGN_PLACEHOLDER,
  vectorFrames,
} from './fixtures';
import { fakeAuthLogin, GatewayHarness, GATEWAY_MAX_FRAME } from './gateway-harness';
import {
  checkProtocolError,
  chunk,
  expectTyped,
  type FuzzTarget,
  fuzzEntry,
  InputReader,
  invariant,
} from './harness';
import {
  deriveSessionKeys,
  fillPlaceholder,
  jsonFrame,
  openSealed,
  parseLoginReply,
} from './records';

/** Most a server may write before login completes: hello, auth, login_ok or an error. */
const MAX_HANDSHAKE_OUTPUT = 4096;
const PROTOCOL_MAX_FRAME = 65536;
const SPKI_PLACEHOLDER = 'SPKI';

/** The verifier both servers consult, on the in-memory auth. */
async function verifyLogin(request: LoginRequest): Promise<LoginDecision> {
  const result = await fakeAuthLogin({
    action: request.action,
    username: request.username,
    password: request.password,
    signature: toBase64(request.signature),
    ...(request.publicKey ? { publicKey: toBase64(request.publicKey) } : {}),
    h2: toBase64(request.h2),
    sourceAddress: '192.0.2.1',
  });
  if (!result.ok) {
    return {
      ok: false,
      code: result.code,
      ...(result.retryAfter ? { retryAfter: result.retryAfter } : {}),
    };
  }
  return { ok: true, publicKey: Buffer.from(result.publicKey, 'base64') };
}

interface ServerUnderTest {
  readonly name: string;
  /** The client sends these bytes; resolves once the server is quiet again. */
  send(chunks: readonly Buffer[]): Promise<void>;
  /** Bytes the server wrote since the last call. */
  output(): Buffer;
  readonly closed: boolean;
  /** Final checks and teardown. */
  finish(): Promise<void>;
}

/** libs/protocol's ServerHandshake behind a FrameDecoder: the state machine itself. */
class ProtocolServer implements ServerUnderTest {
  readonly name = 'ServerHandshake';
  readonly #decoder = new FrameDecoder({ maxFrame: MAX_HANDSHAKE_FRAME });
  readonly #handshake = new ServerHandshake({
    identity: { privateKey: serverIdentityKey },
    verifyLogin,
    sessionId: SESSION_ID,
    now: () => SERVER_TIME,
    randomBytes: () => Buffer.from(FIXED_CHALLENGE),
    ephemeral: serverEphemeral(),
    maxFrame: PROTOCOL_MAX_FRAME,
  });
  readonly #out: Buffer[] = [];
  #closed = false;
  #done = false;

  constructor(private readonly pipelined: boolean) {}

  get closed(): boolean {
    return this.#closed;
  }

  async send(chunks: readonly Buffer[]): Promise<void> {
    for (const bytes of chunks) {
      if (this.#closed || this.#done) return; // after login_ok, frames belong to the session
      const frames: RawFrame[] = [];
      try {
        this.#decoder.append(bytes);
        for (let frame = this.#decoder.next(); frame; frame = this.#decoder.next())
          frames.push(frame);
      } catch (error) {
        const failure = expectTyped<ProtocolError>(error, [ProtocolError], 'FrameDecoder');
        checkProtocolError(failure, 'FrameDecoder');
        this.#step(this.#handshake.abort(failure.code, failure.message), 'abort');
      }
      invariant(
        this.#decoder.bufferedBytes < 4 + MAX_HANDSHAKE_FRAME,
        `decoder holds ${this.#decoder.bufferedBytes} bytes, more than one handshake frame`,
      );
      if (this.pipelined) {
        // The state seen after each step is the one after the last call, not after that step.
        const steps = frames.map((frame) => this.#handshake.receive(frame));
        for (const step of steps) this.#step(await step, 'receive', false);
      } else {
        for (const frame of frames) {
          if (this.#closed || this.#done) break;
          this.#step(await this.#handshake.receive(frame), 'receive');
        }
      }
    }
  }

  #step(step: ServerHandshakeStep, where: string, checkState = true): void {
    const state = this.#handshake.state;
    for (const bytes of step.send) this.#out.push(bytes);
    if (step.error) {
      const error = expectTyped<ProtocolError | PeerError>(
        step.error,
        [ProtocolError, PeerError],
        `ServerHandshake.${where}`,
      );
      invariant(step.close, `ServerHandshake.${where}: an error that does not close`);
      if (error instanceof ProtocolError) {
        // A frame that arrives while the verifier decides fails the handshake; the verifier's
        // own step then closes with nothing to say (see ServerHandshake #onLogin).
        const abortedWhileVerifying =
          error.code === 'internal' &&
          error.message === 'handshake aborted' &&
          step.send.length === 0;
        if (!abortedWhileVerifying) checkProtocolError(error, `ServerHandshake.${where}`);
        invariant(
          step.send.length > 0 || error.silent || this.#closed || abortedWhileVerifying,
          `ServerHandshake.${where}: closed without telling the client (${error.code})`,
        );
      } else {
        invariant(step.send.length === 0, 'ServerHandshake answered a client error frame');
      }
    }
    if (step.close) {
      invariant(state === 'failed', `ServerHandshake closed in state ${state}`);
      this.#closed = true;
    } else if (step.session) {
      invariant(!checkState || state === 'done', `ServerHandshake has a session in state ${state}`);
      this.#done = true;
    } else if (checkState) {
      invariant(
        state === 'expect_login' || state === 'verifying',
        `ServerHandshake is waiting in state ${state} after a step`,
      );
    }
  }

  output(): Buffer {
    return Buffer.concat(this.#out.splice(0));
  }

  finish(): Promise<void> {
    const state = this.#handshake.state;
    invariant(state !== 'verifying', 'ServerHandshake still verifying after the verifier answered');
    return Promise.resolve();
  }
}

/** The gateway's connection: FramedSocket, ConnectionHandshake, LoginGate, ServerHandshake. */
class GatewayServer implements ServerUnderTest {
  readonly name = 'ClientConnection';
  readonly #gateway = new GatewayHarness();

  get closed(): boolean {
    return this.#gateway.connection.phase === 'closed';
  }

  async send(chunks: readonly Buffer[]): Promise<void> {
    for (const bytes of chunks) this.#gateway.push(bytes);
    await this.#gateway.settle('gateway handshake');
    this.#gateway.checkState('gateway handshake');
  }

  output(): Buffer {
    return this.#gateway.takeOutput();
  }

  finish(): Promise<void> {
    return this.#gateway.dispose('gateway handshake');
  }
}

interface Seen {
  hello?: RawFrame;
  auth?: RawFrame;
  records: RawFrame[];
  /** Plaintext `error` frames (before keys exist, or for a frame the decoder refused). */
  errors: number;
}

/**
 * Checks everything a server wrote before keys exist: plaintext frames of the PROTOCOL.md §3 kinds.
 */
function checkPlaintextFrames(server: ServerUnderTest, frames: readonly RawFrame[]): Seen {
  const seen: Seen = { records: [], errors: 0 };
  for (const frame of frames) {
    const parsed = (() => {
      try {
        return parseFrame(frame.body);
      } catch (error) {
        throw new Error(`${server.name} wrote a frame that does not parse`, { cause: error });
      }
    })();
    switch (parsed.type) {
      case 'server_hello':
        invariant(!seen.hello, `${server.name} said server_hello twice`);
        seen.hello = frame;
        break;
      case 'server_auth':
        invariant(seen.hello && !seen.auth, `${server.name} said server_auth out of order`);
        seen.auth = frame;
        break;
      case 'error':
        invariant(isErrorCode(parsed.code), `${server.name} sent an unknown error code`);
        invariant(parsed.code !== 'internal', `${server.name} answered internal`);
        invariant(closesConnection(parsed.code), `${server.name} sent a non-fatal handshake error`);
        seen.errors += 1;
        break;
      case 'enc':
        seen.records.push(frame);
        break;
      case 'client_hello':
      case 'login':
        throw new Error(`${server.name} sent a client frame (${parsed.type})`);
    }
  }
  return seen;
}

function decodeAll(server: ServerUnderTest, bytes: Buffer, maxFrame: number): RawFrame[] {
  invariant(
    bytes.length <= MAX_HANDSHAKE_OUTPUT,
    `${server.name} wrote ${bytes.length} bytes during a handshake (amplification)`,
  );
  const decoder = new FrameDecoder({ maxFrame });
  try {
    const frames = decoder.push(bytes);
    decoder.end();
    return frames;
  } catch (error) {
    throw new Error(`${server.name} wrote bytes that are not whole §2 frames`, { cause: error });
  }
}

async function runRaw(server: ServerUnderTest, chunks: Buffer[], maxFrame: number): Promise<void> {
  await server.send(chunks);
  checkPlaintextFrames(server, decodeAll(server, server.output(), maxFrame));
  await server.finish();
}

async function runLogin(server: ServerUnderTest, payload: Buffer, maxFrame: number): Promise<void> {
  const own = clientEphemeral();
  await server.send([vectorFrames.clientHello]);
  const hello = checkPlaintextFrames(server, decodeAll(server, server.output(), maxFrame));
  invariant(hello.hello && hello.auth, `${server.name} did not answer client_hello`);
  const serverHello = parseFrame(hello.hello.body);
  invariant(serverHello.type === 'server_hello', 'server_hello');
  const keys = deriveSessionKeys(
    { frame1: vectorFrames.clientHello, frame2: hello.hello.bytes, frame3: hello.auth.bytes },
    own,
    fromBase64(serverHello.dh_pub, 'dh_pub', 32),
    own.publicRaw,
  );
  const plaintext = fillPlaceholder(
    fillPlaceholder(payload, SIGN_PLACEHOLDER, clientAuthSignature(keys.h2)),
    SPKI_PLACEHOLDER,
    toBase64(exportSpki(aliceKey)),
  );
  await server.send([
    jsonFrame({
      type: 'login',
      dh_pub: toBase64(own.publicRaw),
      payload: toBase64(keys.c2s.seal(plaintext)),
    }),
  ]);
  // After the login frame every answer is a record (PROTOCOL.md §2): login_ok, or an error, then
  // close.
  const answer = checkPlaintextFrames(server, decodeAll(server, server.output(), maxFrame));
  const [reply, ...after] = answer.records;
  if (reply) {
    const message = parseLoginReply(openSealed(keys.s2c, reply.body, server.name));
    invariant(
      message.type === 'login_ok' || message.type === 'error',
      `${server.name} answered login with ${message.type}`,
    );
    if (message.type === 'error') {
      invariant(message.code !== 'internal', `${server.name} answered login with internal`);
      invariant(server.closed, `${server.name} refused the login and stayed open`);
      invariant(after.length === 0, `${server.name} went on after refusing the login`);
    } else {
      invariant(!server.closed, `${server.name} said login_ok and closed`);
    }
    // The gateway then sends the backlog (PROTOCOL.md §6): session records, readable as such.
    for (const record of after) parseServerMessage(openSealed(keys.s2c, record.body, server.name));
  }
  if (answer.records.length === 0 && answer.errors === 0) {
    // Silence is only for a login record that does not authenticate: ours always does.
    invariant(!server.closed, `${server.name} closed without answering the login`);
  }
  await server.finish();
}

export const target: FuzzTarget = {
  name: 'server-handshake',
  async run(data: Buffer): Promise<void> {
    const input = new InputReader(data);
    const mode = input.byte();
    const chunking = input.byte();
    const rest = input.rest();
    const servers: [ServerUnderTest, number][] = [
      [new ProtocolServer((mode & 2) !== 0), PROTOCOL_MAX_FRAME],
      [new GatewayServer(), GATEWAY_MAX_FRAME],
    ];
    for (const [server, maxFrame] of servers) {
      try {
        if ((mode & 1) === 0) await runRaw(server, chunk(rest, chunking), maxFrame);
        else await runLogin(server, rest, maxFrame);
      } catch (error) {
        if (error instanceof RecordAuthenticationError || error instanceof ProtocolError) {
          // The harness's own reading of the server's output failed: the server wrote
          // something its peer cannot read.
          throw new Error(`${server.name}: its output does not read back`, { cause: error });
        }
        throw error;
      }
    }
  },
};

/** jsfuzz's entry point. */
export const fuzz = fuzzEntry(target);
