/**
 * Throughput of libs/protocol next to raw node:crypto doing the same primitives, in one process
 * and one run: full handshakes (both roles, in memory) and records (Session API and
 * RecordDirection). A script, not a test:
 *
 *   npm run bench:protocol                      5 runs of ~1.5 s per measurement
 *   BENCH_SECONDS=3 npm run bench:protocol      longer runs
 *   npm run bench:protocol -- --quick           smoke check with very short runs
 *
 * Progress goes to stderr; the markdown table to stdout; the full results, as JSON, to
 * bench/results/protocol-<date>.json at the repository root.
 */
import {
  type KeyObject,
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  type ClientCredentials,
  type ClientSession,
  type LoginDecision,
  type LoginRequest,
  type LoginVerifier,
  type RawFrame,
  type SendMessage,
  type ServerSession,
  ClientHandshake,
  DEFAULT_KEY_UPDATE_INTERVAL,
  FrameDecoder,
  LABELS,
  ProtocolError,
  RecordDirection,
  ServerHandshake,
  clientAuthInput,
  exportSpki,
  fingerprint,
  importServerKey,
  importUserPublicKey,
  serializeJson,
  userVerify,
} from '../src';

// The statistics and progress display of `npm run bench`, so that both benches report alike.
import { spread, type Spread } from '../../../bench/stats';
import { Progress } from '../../../bench/support/progress';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench/results');

// ---------------------------------------------------------------- settings

interface Settings {
  readonly mode: 'default' | 'quick';
  /** Length of one timed run, in seconds. */
  readonly seconds: number;
  /** Untimed run before the timed ones (JIT, caches, batch size calibration). */
  readonly warmupSeconds: number;
  readonly runs: number;
}

const USAGE = 'usage: tsx libs/protocol/bench/protocol.bench.ts [--quick]  (env BENCH_SECONDS=1.5)';

function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  const unknown = argv.filter((arg) => arg !== '--quick');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]}\n${USAGE}`);
  const quick = argv.includes('--quick');
  let seconds = quick ? 0.1 : 1.5;
  const fromEnv = env.BENCH_SECONDS;
  if (fromEnv !== undefined && fromEnv !== '') {
    seconds = Number(fromEnv);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new Error(`BENCH_SECONDS must be a positive number of seconds, not "${fromEnv}"`);
    }
  }
  return {
    mode: quick ? 'quick' : 'default',
    seconds,
    warmupSeconds: Math.min(0.5, Math.max(0.02, seconds / 5)),
    runs: quick ? 3 : 5,
  };
}

// ---------------------------------------------------------------- timing

type Operation =
  | { readonly kind: 'sync'; readonly run: () => void }
  | { readonly kind: 'async'; readonly run: () => Promise<void> };

interface Measurement {
  /** Stable key in the JSON results. */
  readonly id: string;
  /** What the progress line shows. */
  readonly label: string;
  readonly side: 'ours' | 'raw';
  /** Plaintext size, for record workloads. */
  readonly plaintextBytes?: number;
  readonly operation: Operation;
}

interface RunResult {
  readonly ops: number;
  readonly seconds: number;
}

/** Runs `operation` in batches of `batch` until `seconds` have passed. */
async function timeRun(operation: Operation, seconds: number, batch: number): Promise<RunResult> {
  const budget = seconds * 1e9;
  const start = process.hrtime.bigint();
  let ops = 0;
  let elapsed = 0;
  do {
    if (operation.kind === 'sync') {
      for (let i = 0; i < batch; i++) operation.run();
    } else {
      for (let i = 0; i < batch; i++) await operation.run();
    }
    ops += batch;
    elapsed = Number(process.hrtime.bigint() - start);
  } while (elapsed < budget);
  return { ops, seconds: elapsed / 1e9 };
}

/** Operations per batch so that a batch takes about 2 ms: the clock is read once per batch. */
function batchSize(warmup: RunResult): number {
  return Math.max(1, Math.floor((warmup.ops / warmup.seconds) * 0.002));
}

interface MeasurementResult extends Spread {
  readonly id: string;
  readonly label: string;
  readonly side: 'ours' | 'raw';
  readonly plaintextBytes?: number;
  readonly unit: 'ops/s';
  /** ops/s of each timed run, in run order. */
  readonly runs: number[];
  readonly opsPerRun: number[];
  readonly batch: number;
}

/**
 * Measures the measurements of one comparison together: each is warmed up, then their timed
 * runs alternate (ours, raw, ours, raw, …) so that drift in the machine's speed hits both.
 */
async function measureGroup(
  group: readonly Measurement[],
  numbers: readonly number[],
  total: number,
  settings: Settings,
  progress: Progress,
): Promise<MeasurementResult[]> {
  const batches: number[] = [];
  for (const [i, measurement] of group.entries()) {
    progress.show(`[${numbers[i]}/${total}] ${measurement.label} warm-up`);
    batches.push(batchSize(await timeRun(measurement.operation, settings.warmupSeconds, 1)));
  }
  const runs = group.map((): RunResult[] => []);
  for (let run = 1; run <= settings.runs; run++) {
    for (const [i, measurement] of group.entries()) {
      progress.show(`[${numbers[i]}/${total}] ${measurement.label} run ${run}/${settings.runs}`);
      runs[i]!.push(await timeRun(measurement.operation, settings.seconds, batches[i]!));
    }
  }
  return group.map((measurement, i) => {
    const rates = runs[i]!.map((r) => r.ops / r.seconds);
    return {
      id: measurement.id,
      label: measurement.label,
      side: measurement.side,
      ...(measurement.plaintextBytes === undefined
        ? {}
        : { plaintextBytes: measurement.plaintextBytes }),
      unit: 'ops/s',
      ...spread(rates),
      runs: rates,
      opsPerRun: runs[i]!.map((r) => r.ops),
      batch: batches[i]!,
    };
  });
}

// ---------------------------------------------------------------- handshakes through the library

const PASSWORD = 'correct horse battery staple';

interface Deployment {
  readonly identity: KeyObject;
  readonly fingerprint: string;
  readonly verifyLogin: LoginVerifier;
}

/**
 * A verifier doing what the auth service will, minus password hashing: look the user up, check
 * the password, import the stored SPKI and verify the signature over clientAuthInput(H2).
 */
function deployment(users: ReadonlyMap<string, KeyObject>): Deployment {
  const stored = new Map([...users].map(([name, key]) => [name, exportSpki(key)]));
  const identity = generateKeyPairSync('ed25519').privateKey;
  const verifyLogin = (request: LoginRequest): Promise<LoginDecision> => {
    const spki = stored.get(request.username);
    if (
      request.action === 'login' &&
      spki !== undefined &&
      request.password === PASSWORD &&
      userVerify(importUserPublicKey(spki), clientAuthInput(request.h2), request.signature)
    ) {
      return Promise.resolve({ ok: true, publicKey: spki });
    }
    return Promise.resolve({ ok: false, code: 'auth_failed' });
  };
  return { identity, fingerprint: fingerprint(exportSpki(identity)), verifyLogin };
}

class HandshakeFailure extends Error {
  override readonly name = 'HandshakeFailure';
}

/** Feeds `chunks` to the peer's decoder, as a socket would, and expects `count` frames. */
function deliver(decoder: FrameDecoder, chunks: readonly Buffer[], count: 1): [RawFrame];
function deliver(decoder: FrameDecoder, chunks: readonly Buffer[], count: 2): [RawFrame, RawFrame];
function deliver(decoder: FrameDecoder, chunks: readonly Buffer[], count: number): RawFrame[] {
  const frames = chunks.flatMap((chunk) => decoder.push(chunk));
  if (frames.length !== count) {
    throw new HandshakeFailure(`expected ${count} frame(s), got ${frames.length}`);
  }
  return frames;
}

function proceed<T extends { readonly close: boolean; readonly error?: Error }>(
  step: T,
  what: string,
): T {
  if (step.close || step.error !== undefined) {
    throw new HandshakeFailure(`${what} failed`, { cause: step.error });
  }
  return step;
}

let sessionCounter = 0;

/** One full PROTOCOL.md §3 handshake, both roles, fresh ephemeral keys, through FrameDecoders. */
async function libraryHandshake(
  site: Deployment,
  credentials: ClientCredentials,
): Promise<{ client: ClientSession; server: ServerSession }> {
  const client = new ClientHandshake({ trust: { fingerprint: site.fingerprint }, credentials });
  const server = new ServerHandshake({
    identity: { privateKey: site.identity },
    verifyLogin: site.verifyLogin,
    sessionId: `s-${++sessionCounter}`,
  });
  const toServer = new FrameDecoder();
  const toClient = new FrameDecoder();

  const [hello] = deliver(toServer, [client.start()], 1);
  const greeting = proceed(await server.receive(hello), 'server: client_hello');
  const [serverHello, serverAuth] = deliver(toClient, greeting.send, 2);
  proceed(await client.receive(serverHello), 'client: server_hello');
  const login = proceed(await client.receive(serverAuth), 'client: server_auth');
  const [loginFrame] = deliver(toServer, login.send, 1);
  const accepted = proceed(await server.receive(loginFrame), 'server: login');
  const [loginOk] = deliver(toClient, accepted.send, 1);
  const done = proceed(await client.receive(loginOk), 'client: login_ok');
  if (accepted.session === undefined || done.session === undefined) {
    throw new HandshakeFailure('handshake ended without sessions');
  }
  return { client: done.session, server: accepted.session };
}

/** Sanity checks before timing: a handshake completes, and a wrong user key is refused. */
async function checkHandshakes(site: Deployment, good: ClientCredentials, wrongKey: KeyObject) {
  const { client, server } = await libraryHandshake(site, good);
  const [ours, theirs] = [client.view(), server.view()];
  if (
    ours.sessionId !== theirs.sessionId ||
    Buffer.compare(ours.c2sChain, theirs.c2sChain) !== 0 ||
    Buffer.compare(ours.s2cChain, theirs.s2cChain) !== 0
  ) {
    throw new Error('sanity check: client and server views differ after the handshake');
  }
  try {
    await libraryHandshake(site, { ...good, privateKey: wrongKey });
  } catch (error) {
    const cause = error instanceof HandshakeFailure ? error.cause : undefined;
    if (cause instanceof ProtocolError && cause.code === 'auth_failed') return;
    throw error;
  }
  throw new Error('sanity check: the verifier accepted a signature by the wrong key');
}

// ---------------------------------------------------------------- handshakes in raw node:crypto

function sha256(...parts: Buffer[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** `info || 0x01`: HKDF-Expand to at most 32 bytes is one HMAC over this (RFC 5869 §2.3). */
const expandInfo = (label: string) => Buffer.concat([Buffer.from(label, 'ascii'), Buffer.of(1)]);
const INFO = {
  c2s: expandInfo(LABELS.c2s),
  s2c: expandInfo(LABELS.s2c),
  key: expandInfo(LABELS.key),
  iv: expandInfo(LABELS.iv),
};
const SERVER_AUTH_LABEL = Buffer.from(`${LABELS.serverAuth}\0`, 'ascii');
const CLIENT_AUTH_LABEL = Buffer.from(`${LABELS.clientAuth}\0`, 'ascii');

interface RawKeys {
  readonly c2sKey: Buffer;
  readonly c2sIv: Buffer;
  readonly s2cKey: Buffer;
  readonly s2cIv: Buffer;
}

/** PRK, both traffic secrets, and key and iv of both directions: 7 HMACs. */
function rawKeySchedule(h2: Buffer, shared: Buffer): RawKeys {
  const prk = hmac(h2, shared);
  const c2s = hmac(prk, INFO.c2s);
  const s2c = hmac(prk, INFO.s2c);
  return {
    c2sKey: hmac(c2s, INFO.key).subarray(0, 16),
    c2sIv: hmac(c2s, INFO.iv).subarray(0, 12),
    s2cKey: hmac(s2c, INFO.key).subarray(0, 16),
    s2cIv: hmac(s2c, INFO.iv).subarray(0, 12),
  };
}

interface Sealed {
  readonly ct: Buffer;
  readonly tag: Buffer;
}

function rawSeal(key: Buffer, nonce: Buffer, plaintext: Buffer): Sealed {
  const cipher = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
  const ct = cipher.update(plaintext);
  cipher.final();
  return { ct, tag: cipher.getAuthTag() };
}

function rawOpen(key: Buffer, nonce: Buffer, sealed: Sealed): Buffer {
  const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
  decipher.setAuthTag(sealed.tag);
  const plaintext = decipher.update(sealed.ct);
  decipher.final(); // throws when the tag does not verify
  return plaintext;
}

interface RawUserKey {
  sign(data: Buffer): Buffer;
  verify(data: Buffer, signature: Buffer): boolean;
}

function rawUserKey(privateKey: KeyObject, publicKey: KeyObject): RawUserKey {
  if (privateKey.asymmetricKeyType === 'ed25519') {
    return {
      sign: (data) => sign(null, data, privateKey),
      verify: (data, signature) => verify(null, data, publicKey, signature),
    };
  }
  const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  return {
    sign: (data) => sign('sha256', data, { key: privateKey, ...pss }),
    verify: (data, signature) => verify('sha256', data, { key: publicKey, ...pss }, signature),
  };
}

interface RawHandshakeInput {
  readonly identity: KeyObject;
  readonly identityPublic: KeyObject;
  readonly identitySpki: Buffer;
  readonly user: RawUserKey;
  /** Frame-sized stand-ins for what H1 and H2 hash. */
  readonly frame1: Buffer;
  readonly frame2: Buffer;
  readonly frame3: Buffer;
  readonly clientDhPub: Buffer;
  /** Plaintexts as long as the real login payload and login_ok. */
  readonly loginPlaintext: Buffer;
  readonly loginOkPlaintext: Buffer;
}

/**
 * The primitives of one handshake, both sides, with nothing around them: 2 X25519 key pairs and
 * 2 derivations, Ed25519 sign and verify (server_auth), the user's sign and verify (login),
 * SHA-256 for H1, H2, the fingerprint and the first chain link, 14 HMACs of HKDF, AES-GCM seal
 * and open of the login record and of login_ok.
 */
function rawHandshake(input: RawHandshakeInput): void {
  const nonce = randomBytes(32);
  const challenge = randomBytes(32);
  const serverDh = generateKeyPairSync('x25519');
  // server: server_hello, server_auth
  const serverH1 = sha256(input.frame1, nonce, input.frame2, challenge);
  const serverAuth = sign(null, Buffer.concat([SERVER_AUTH_LABEL, serverH1]), input.identity);
  // client: checks the server, then login
  sha256(input.identitySpki);
  const clientH1 = sha256(input.frame1, nonce, input.frame2, challenge);
  const trusted = Buffer.concat([SERVER_AUTH_LABEL, clientH1]);
  if (!verify(null, trusted, input.identityPublic, serverAuth)) throw new Error('raw: server_auth');
  const clientDh = generateKeyPairSync('x25519');
  const clientShared = diffieHellman({
    privateKey: clientDh.privateKey,
    publicKey: serverDh.publicKey,
  });
  const clientH2 = sha256(input.frame1, input.frame2, input.frame3, input.clientDhPub);
  const clientKeys = rawKeySchedule(clientH2, clientShared);
  const userSignature = input.user.sign(Buffer.concat([CLIENT_AUTH_LABEL, clientH2]));
  const login = rawSeal(clientKeys.c2sKey, clientKeys.c2sIv, input.loginPlaintext);
  // server: opens the login, verifies the user, answers login_ok
  const serverShared = diffieHellman({
    privateKey: serverDh.privateKey,
    publicKey: clientDh.publicKey,
  });
  const serverH2 = sha256(input.frame1, input.frame2, input.frame3, input.clientDhPub);
  const serverKeys = rawKeySchedule(serverH2, serverShared);
  rawOpen(serverKeys.c2sKey, serverKeys.c2sIv, login);
  if (!input.user.verify(Buffer.concat([CLIENT_AUTH_LABEL, serverH2]), userSignature)) {
    throw new Error('raw: user signature');
  }
  const loginOk = rawSeal(serverKeys.s2cKey, serverKeys.s2cIv, input.loginOkPlaintext);
  sha256(serverH2, sha256(input.loginOkPlaintext));
  // client: opens login_ok
  const opened = rawOpen(clientKeys.s2cKey, clientKeys.s2cIv, loginOk);
  sha256(clientH2, sha256(opened));
}

function rawHandshakeInput(identity: KeyObject, userKey: KeyObject): RawHandshakeInput {
  const user = rawUserKey(userKey, importUserPublicKey(exportSpki(userKey)));
  const signatureLength = user.sign(Buffer.alloc(32)).length;
  const loginPlaintext = serializeJson({
    action: 'login',
    username: 'alice',
    password: PASSWORD,
    signature: randomBytes(signatureLength).toString('base64'),
  });
  const loginOkPlaintext = serializeJson({
    type: 'login_ok',
    username: 'alice',
    session_id: 's-1',
    server_time: Date.now(),
  });
  const identitySpki = exportSpki(identity);
  return {
    identity,
    identityPublic: importServerKey(identitySpki),
    identitySpki,
    user,
    frame1: randomBytes(100),
    frame2: randomBytes(210),
    frame3: randomBytes(125),
    clientDhPub: randomBytes(32),
    loginPlaintext,
    loginOkPlaintext,
  };
}

// ---------------------------------------------------------------- records

/** A `send` whose plaintext JSON is exactly `bytes` long; `sig` is a 3-byte placeholder. */
function sendMessageOfSize(bytes: number): SendMessage {
  const base: SendMessage = {
    type: 'send',
    id: 'm1',
    to: 'bob',
    body: '',
    ts: 1764000000000,
    sig: 'AAAA',
  };
  const overhead = serializeJson(base).length;
  if (overhead > bytes) throw new Error(`a send message is at least ${overhead} bytes`);
  const message = { ...base, body: 'x'.repeat(bytes - overhead) };
  if (serializeJson(message).length !== bytes) throw new Error('sendMessageOfSize: wrong size');
  return message;
}

/** ClientSession.send → FrameDecoder → ServerSession.receive, i.e. what two real peers do. */
function sessionRecords(
  client: ClientSession,
  server: ServerSession,
  message: SendMessage,
): Operation {
  const decoder = new FrameDecoder();
  const check = decoder.push(client.send(message));
  const received = check.map((frame) => server.receive(frame));
  if (received.length !== 1 || received[0]?.message.type !== 'send') {
    throw new Error('sanity check: the session did not deliver the send message');
  }
  return {
    kind: 'sync',
    run: function sessionRecord() {
      for (const frame of decoder.push(client.send(message))) server.receive(frame);
    },
  };
}

/** RecordDirection seal, then open by the peer's RecordDirection: AES-GCM and nonces only. */
function recordDirectionRecords(plaintext: Buffer): Operation {
  const secret = randomBytes(32);
  const sender = new RecordDirection('c2s', secret);
  const receiver = new RecordDirection('c2s', secret);
  if (!receiver.open(sender.seal(plaintext)).equals(plaintext)) {
    throw new Error('sanity check: RecordDirection round trip');
  }
  return {
    kind: 'sync',
    run: function recordDirectionRecord() {
      if (sender.sequence >= DEFAULT_KEY_UPDATE_INTERVAL) {
        sender.update(); // as a session would (PROTOCOL.md §4); only reached with a very long BENCH_SECONDS
        receiver.update();
      }
      receiver.open(sender.seal(plaintext));
    },
  };
}

/** createCipheriv/createDecipheriv AES-128-GCM seal and open, and SHA-256 of the plaintext. */
function rawRecords(plaintext: Buffer, chain: boolean): Operation {
  const key = randomBytes(16);
  const nonce = randomBytes(12);
  let sequence = 0;
  if (!rawOpen(key, nonce, rawSeal(key, nonce, plaintext)).equals(plaintext)) {
    throw new Error('sanity check: raw AES-GCM round trip');
  }
  return {
    kind: 'sync',
    run: chain
      ? function rawRecordChained() {
          nonce.writeUInt32BE(++sequence >>> 0, 8);
          rawOpen(key, nonce, rawSeal(key, nonce, plaintext));
          sha256(plaintext);
        }
      : function rawRecord() {
          nonce.writeUInt32BE(++sequence >>> 0, 8);
          rawOpen(key, nonce, rawSeal(key, nonce, plaintext));
        },
  };
}

// ---------------------------------------------------------------- report

interface Comparison {
  readonly workload: string;
  readonly ours: Measurement;
  readonly raw: Measurement;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

function formatRate(value: number): string {
  return (value < 100 ? decimal : integer).format(value);
}

function formatCell(result: Spread): string {
  return `${formatRate(result.median)} (${formatRate(result.min)}–${formatRate(result.max)})`;
}

function formatMicros(seconds: number): string {
  const micros = seconds * 1e6;
  return micros >= 100 ? integer.format(micros) : micros.toPrecision(2);
}

/** ours/raw of the medians, as "N× slower (P% of raw, +T µs/op)". */
function formatRatio(ours: Spread, raw: Spread): string {
  const ratio = ours.median / raw.median;
  const percent = `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}% of raw`;
  const extra = 1 / ours.median - 1 / raw.median;
  if (ratio >= 1) return `${ratio.toFixed(2)}× raw (${percent})`;
  return `${(1 / ratio).toFixed(2)}× slower (${percent}, +${formatMicros(extra)} µs/op)`;
}

function markdownTable(rows: readonly (readonly string[])[]): string {
  const [header, ...body] = rows;
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header!), line(header!.map(() => '---')), ...body.map(line)].join('\n');
}

function isoStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2), process.env);
  const started = new Date();
  const environment = {
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    platform: `${process.platform} ${process.arch}`,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
  };
  console.log('# securechat/1 protocol benchmark\n');
  console.log(`- ${started.toISOString()}, mode ${settings.mode}`);
  console.log(
    `- node ${environment.node} (V8 ${environment.v8}, OpenSSL ${environment.openssl}), ${environment.platform}`,
  );
  console.log(`- CPU: ${environment.cpuModel}, ${environment.cores} cores`);
  console.log(
    `- each measurement: ${settings.warmupSeconds} s warm-up, then ${settings.runs} runs of ${settings.seconds} s (BENCH_SECONDS); median (min–max) of the runs`,
  );

  const progress = new Progress();
  progress.show('setup: generating keys, sanity checks');
  const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ed25519Key = generateKeyPairSync('ed25519').privateKey;
  const site = deployment(
    new Map([
      ['alice', rsaKey],
      ['bob', ed25519Key],
    ]),
  );
  const alice: ClientCredentials = {
    action: 'login',
    username: 'alice',
    password: PASSWORD,
    privateKey: rsaKey,
  };
  const bob: ClientCredentials = { ...alice, username: 'bob', privateKey: ed25519Key };
  await checkHandshakes(site, alice, ed25519Key);
  await checkHandshakes(site, bob, rsaKey);

  const comparisons: Comparison[] = [];
  for (const [credentials, name] of [
    [alice, 'RSA-2048'],
    [bob, 'Ed25519'],
  ] as const) {
    const key = name.toLowerCase().replace('-', '');
    const input = rawHandshakeInput(site.identity, credentials.privateKey);
    comparisons.push({
      workload: `handshake, ${name} user key (handshakes/s)`,
      ours: {
        id: `handshake-${key}-ours`,
        label: `handshake ${name} ours`,
        side: 'ours',
        operation: {
          kind: 'async',
          run: async function libraryHandshakeOp() {
            await libraryHandshake(site, credentials);
          },
        },
      },
      raw: {
        id: `handshake-${key}-raw`,
        label: `handshake ${name} raw`,
        side: 'raw',
        operation: { kind: 'sync', run: () => rawHandshake(input) },
      },
    });
  }
  for (const [bytes, size] of [
    [100, '100B'],
    [4096, '4KiB'],
  ] as const) {
    const message = sendMessageOfSize(bytes);
    const plaintext = serializeJson(message);
    const { client, server } = await libraryHandshake(site, bob);
    comparisons.push(
      {
        workload: `record ${size}: Session send → receive vs raw seal+open+SHA-256 (records/s)`,
        ours: {
          id: `records-${size}-session`,
          label: `records ${size} session`,
          side: 'ours',
          plaintextBytes: bytes,
          operation: sessionRecords(client, server, message),
        },
        raw: {
          id: `records-${size}-raw-chained`,
          label: `records ${size} raw seal+open+sha256`,
          side: 'raw',
          plaintextBytes: bytes,
          operation: rawRecords(plaintext, true),
        },
      },
      {
        workload: `record ${size}: RecordDirection seal+open vs raw seal+open (records/s)`,
        ours: {
          id: `records-${size}-record-direction`,
          label: `records ${size} RecordDirection`,
          side: 'ours',
          plaintextBytes: bytes,
          operation: recordDirectionRecords(plaintext),
        },
        raw: {
          id: `records-${size}-raw`,
          label: `records ${size} raw seal+open`,
          side: 'raw',
          plaintextBytes: bytes,
          operation: rawRecords(plaintext, false),
        },
      },
    );
  }

  const total = comparisons.length * 2;
  const results = new Map<string, MeasurementResult>();
  for (const [i, comparison] of comparisons.entries()) {
    const measured = await measureGroup(
      [comparison.ours, comparison.raw],
      [2 * i + 1, 2 * i + 2],
      total,
      settings,
      progress,
    );
    for (const result of measured) results.set(result.id, result);
  }
  progress.end();

  const rows = comparisons.map((comparison) => {
    const ours = results.get(comparison.ours.id)!;
    const raw = results.get(comparison.raw.id)!;
    return { comparison, ours, raw, ratio: ours.median / raw.median };
  });
  console.log('');
  console.log(
    markdownTable([
      ['workload', 'ours (ops/s)', 'raw node:crypto (ops/s)', 'ratio (ours/raw)'],
      ...rows.map(({ comparison, ours, raw }) => [
        comparison.workload,
        formatCell(ours),
        formatCell(raw),
        formatRatio(ours, raw),
      ]),
    ]),
  );

  const file = path.join(RESULTS_DIR, `protocol-${isoStamp(started)}.json`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = {
    benchmark: 'protocol',
    date: started.toISOString(),
    durationSeconds: (Date.now() - started.getTime()) / 1000,
    settings,
    environment,
    comparisons: rows.map(({ comparison, ratio }) => ({
      workload: comparison.workload,
      ours: comparison.ours.id,
      raw: comparison.raw.id,
      ratio,
    })),
    measurements: [...results.values()],
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
}

main().catch((error: unknown) => {
  process.stderr.write('\n');
  console.error(error);
  process.exitCode = 1;
});
