/**
 * The ceilings SecureChat sits under, measured in the same run: the per-message crypto in
 * raw node:crypto (as in libs/protocol/bench/protocol.bench.ts), redis-benchmark for the
 * Redis commands one message costs the distributed deployment, and the argon2id verifications
 * per second a login with the production hash is bound by (bench/argon2-verify.ts).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import Redis from 'ioredis';

import { type Argon2VerifyConfig, type Argon2VerifyResult } from './argon2-verify';
import { spread, type Spread } from './stats';

function seal(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
  const ct = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([ct, cipher.getAuthTag()]);
}

function open(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - 16));
  decipher.final();
  return plaintext;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();

/** How many times per second `op` runs on this thread, timed over `seconds` in steps of `step`. */
function opsPerSecond(op: () => void, seconds: number, step: number): number {
  const budget = seconds * 1e9;
  const start = process.hrtime.bigint();
  let ops = 0;
  let elapsed = 0;
  do {
    for (let i = 0; i < step; i++) op();
    ops += step;
    elapsed = Number(process.hrtime.bigint() - start);
  } while (elapsed < budget);
  return ops / (elapsed / 1e9);
}

/** Record plaintext sizes of one DM around a body of `bodyBytes` (JSON, base64 signature). */
function recordSizes(bodyBytes: number) {
  return { send: bodyBytes + 200, deliver: bodyBytes + 260, ack: 90, delivered: 60 };
}

export interface CryptoCeiling {
  readonly bodyBytes: number;
  /** Messages/s one core manages doing only the gateway's per-message crypto. */
  readonly server: Spread;
  /** Messages/s one core manages doing all per-message crypto of sender, server and recipient. */
  readonly endToEnd: Spread;
}

/**
 * Per message, the gateway opens the `send` record, verifies the Ed25519 message signature,
 * seals `ack` and `deliver`, opens `delivered`, and extends a SHA-256 chain per record; the
 * clients sign, seal `send`, open `ack` and `deliver`, verify the signature and seal
 * `delivered`, with their chains. Timed alternately, `runs` times `seconds` each.
 */
export function measureCryptoCeiling(bodyBytes: number, seconds: number, runs: number) {
  const key = randomBytes(16);
  const nonce = randomBytes(12);
  const author = generateKeyPairSync('ed25519');
  const sizes = recordSizes(bodyBytes);
  const plain = {
    send: randomBytes(sizes.send),
    deliver: randomBytes(sizes.deliver),
    ack: randomBytes(sizes.ack),
    delivered: randomBytes(sizes.delivered),
  };
  const signed = randomBytes(bodyBytes + 100);
  const signature = sign(null, signed, author.privateKey);
  const sealed = {
    send: seal(key, nonce, plain.send),
    delivered: seal(key, nonce, plain.delivered),
    ack: seal(key, nonce, plain.ack),
    deliver: seal(key, nonce, plain.deliver),
  };
  const server = () => {
    sha256(open(key, nonce, sealed.send));
    if (!verify(null, signed, author.publicKey, signature)) throw new Error('verify');
    sha256(plain.ack);
    seal(key, nonce, plain.ack);
    sha256(plain.deliver);
    seal(key, nonce, plain.deliver);
    sha256(open(key, nonce, sealed.delivered));
  };
  const clients = () => {
    sign(null, signed, author.privateKey);
    sha256(plain.send);
    seal(key, nonce, plain.send);
    sha256(open(key, nonce, sealed.ack));
    sha256(open(key, nonce, sealed.deliver));
    if (!verify(null, signed, author.publicKey, signature)) throw new Error('verify');
    sha256(plain.delivered);
    seal(key, nonce, plain.delivered);
  };
  const both = () => {
    server();
    clients();
  };
  const rate = (op: () => void) => opsPerSecond(op, seconds, 50);
  rate(server); // warm-up
  rate(both);
  const serverRates: number[] = [];
  const bothRates: number[] = [];
  for (let r = 0; r < runs; r++) {
    serverRates.push(rate(server));
    bothRates.push(rate(both));
  }
  return { bodyBytes, server: spread(serverRates), endToEnd: spread(bothRates) };
}

/** Logins/s one core manages doing only the server's crypto of one login. */
export interface LoginCryptoCeiling {
  readonly loginsPerSecond: Spread;
}

/** An X25519 key made as libs/protocol makes one: 32 random bytes imported as a JWK. */
function x25519Ephemeral(): {
  privateKey: KeyObject;
  publicJwk: { kty: string; crv: string; x: string };
} {
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: randomBytes(32).toString('base64url'), x: 'A'.repeat(43) },
    format: 'jwk',
  });
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
  return { privateKey, publicJwk: { kty: 'OKP', crv: 'X25519', x: x! } };
}

/**
 * The server side of one login (connect, handshake, login, orderly close), as raw node:crypto
 * calls, counted from libs/protocol and the login seal: the gateway's ephemeral X25519 key, the
 * agreement with the client's, HKDF, the Ed25519 `server_auth` signature, the login record
 * opened and `login_ok` sealed; the login sealed to auth (a second ephemeral key and
 * agreement, AES-256-GCM) and opened there (a third agreement); the stored Ed25519 user key
 * imported and the H2 signature verified; the reply's HMAC made and checked; the user key
 * imported again at the gateway; and at the end the receipt signed and the countersignature
 * verified. Argon2id and the database are not in it (their own ceilings and the tables).
 */
export function measureLoginCryptoCeiling(seconds: number, runs: number): LoginCryptoCeiling {
  const key16 = randomBytes(16);
  const key32 = randomBytes(32);
  const nonce = randomBytes(12);
  const server = generateKeyPairSync('ed25519');
  const user = generateKeyPairSync('ed25519');
  const userJwk = user.publicKey.export({ format: 'jwk' });
  const sealKey = x25519Ephemeral();
  const client = x25519Ephemeral();
  const h2 = randomBytes(32);
  const userSignature = sign(null, h2, user.privateKey);
  const loginRecord = seal(key16, nonce, randomBytes(300));
  const sealed256 = seal256(key32, nonce, randomBytes(400));
  const countersign = randomBytes(200);
  const countersignature = sign(null, countersign, user.privateKey);
  const agree = (privateKey: KeyObject, publicJwk: JsonWebKey) =>
    diffieHellman({ privateKey, publicKey: createPublicKey({ key: publicJwk, format: 'jwk' }) });
  const hkdf = (ikm: Buffer, length: number) =>
    Buffer.from(hkdfSync('sha256', ikm, h2, 'securechat', length));
  const login = () => {
    // gateway: handshake
    const ephemeral = x25519Ephemeral();
    const shared = agree(ephemeral.privateKey, client.publicJwk);
    hkdf(shared, 32);
    hkdf(shared, 16);
    hkdf(shared, 16);
    sign(null, h2, server.privateKey);
    open(key16, nonce, loginRecord);
    // gateway: the login sealed to auth
    const sealEphemeral = x25519Ephemeral();
    hkdf(agree(sealEphemeral.privateKey, sealKey.publicJwk), 76);
    seal256(key32, nonce, randomBytes(400));
    // auth: opened, the user's key imported, the H2 signature verified, the reply tagged
    hkdf(agree(sealKey.privateKey, sealEphemeral.publicJwk), 76);
    open256(key32, nonce, sealed256);
    const stored = createPublicKey({ key: userJwk, format: 'jwk' });
    if (!verify(null, h2, stored, userSignature)) throw new Error('verify');
    createHmac('sha256', key32).update(h2).digest();
    // gateway: the reply checked, the user's key imported, login_ok sealed
    createHmac('sha256', key32).update(h2).digest();
    createPublicKey({ key: userJwk, format: 'jwk' });
    sha256(seal(key16, nonce, randomBytes(120)));
    // the end: bye opened, receipt signed and sealed, countersign opened and verified
    sha256(open(key16, nonce, loginRecord));
    sign(null, h2, server.privateKey);
    sha256(seal(key16, nonce, randomBytes(300)));
    sha256(open(key16, nonce, loginRecord));
    if (!verify(null, countersign, user.publicKey, countersignature)) throw new Error('verify');
  };
  const rate = () => opsPerSecond(login, seconds, 10);
  rate(); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) rates.push(rate());
  return { loginsPerSecond: spread(rates) };
}

function seal256(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([ct, cipher.getAuthTag()]);
}

function open256(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

// ---------------------------------------------------------------- Redis

/** `INFO commandstats` as command → calls. */
export async function redisCommandCalls(url: string): Promise<Map<string, number>> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('commandstats');
    const calls = new Map<string, number>();
    for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
      calls.set(match[1]!, Number(match[2]));
    }
    return calls;
  } finally {
    redis.disconnect();
  }
}

export function commandDelta(
  before: Map<string, number>,
  after: Map<string, number>,
  messages: number,
): Record<string, number> {
  const perMessage: Record<string, number> = {};
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0);
    // The ceiling below is for what each message costs: ignore the once-per-run commands.
    if (messages > 0 && delta / messages >= 0.05) perMessage[command] = delta / messages;
  }
  return perMessage;
}

export interface RedisCeiling {
  readonly bodyBytes: number;
  /** Redis commands per delivered message, from INFO commandstats around a measured window. */
  readonly commandsPerMessage: Record<string, number>;
  /** redis-benchmark requests/s per command (50 clients, no pipelining). */
  readonly commandRates: Record<string, number>;
  /** 1 / Σ (commands per message / rate): messages/s Redis could carry if it did nothing else. */
  readonly messagesPerSecond: number;
  /** Commands stood in for by a similar one, as `command → stand-in`. */
  readonly standIns: Record<string, string>;
}

/** A redis-benchmark command line (after the options) for `command`, on the scratch keys. */
function benchmarkArgs(command: string, prefix: string, payload: string): [string[], string?] {
  const stream = `${prefix}stream`;
  switch (command) {
    case 'xadd':
      return [['XADD', stream, 'MAXLEN', '~', '10000', '*', 'm', payload]];
    case 'publish':
      return [['PUBLISH', `${prefix}channel`, payload]];
    case 'xreadgroup':
      return [['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', stream, '>']];
    case 'xack':
      return [['XACK', stream, 'g', '0-1']];
    case 'set':
      return [['SET', `${prefix}key`, payload.slice(0, 64)]];
    case 'get':
      return [['GET', `${prefix}key`]];
    case 'hget':
      return [['HGET', `${prefix}hash`, 'f']];
    case 'hset':
      return [['HSET', `${prefix}hash`, 'f', 'v']];
    case 'sadd':
      return [['SADD', `${prefix}set`, 'm']];
    case 'smembers':
      return [['SMEMBERS', `${prefix}set`]];
    case 'del':
      return [['DEL', `${prefix}scratch`]];
    case 'expire':
    case 'pexpire':
      return [['PEXPIRE', `${prefix}key`, '60000']];
    default:
      return [['PING'], 'PING'];
  }
}

export async function measureRedisCeiling(
  url: string,
  commandsPerMessage: Record<string, number>,
  bodyBytes: number,
  requests: number,
  prefix: string,
): Promise<RedisCeiling> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const { hostname, port } = new URL(url);
  const commandRates: Record<string, number> = {};
  const standIns: Record<string, string> = {};
  try {
    await redis.xgroup('CREATE', `${prefix}stream`, 'g', '$', 'MKSTREAM').catch(() => undefined);
    const payload = 'x'.repeat(bodyBytes + 300);
    for (const command of Object.keys(commandsPerMessage)) {
      const [args, standIn] = benchmarkArgs(command, prefix, payload);
      if (standIn !== undefined) standIns[command] = standIn;
      const output = execFileSync(
        'redis-benchmark',
        [
          '-h',
          hostname,
          '-p',
          port || '6379',
          '-n',
          String(requests),
          '-c',
          '50',
          '--csv',
          ...args,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 24 },
      );
      const line = output.trim().split('\n').at(-1) ?? '';
      commandRates[command] = Number(line.split('","')[1]?.replace(/"/g, ''));
    }
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
  let secondsPerMessage = 0;
  for (const [command, count] of Object.entries(commandsPerMessage)) {
    secondsPerMessage += count / commandRates[command]!;
  }
  return {
    bodyBytes,
    commandsPerMessage,
    commandRates,
    messagesPerSecond: secondsPerMessage > 0 ? 1 / secondsPerMessage : Number.NaN,
    standIns,
  };
}

// ---------------------------------------------------------------- argon2id

export interface Argon2Ceiling extends Argon2VerifyResult {
  /** Where the parameters come from. */
  readonly source: string;
  /** Verifications per second, one per window (parallel to `windows`). */
  readonly verifiesPerSecond: number[];
  /** CPU milliseconds per verification, one per window. */
  readonly cpuMsPerVerify: number[];
}

/**
 * argon2id verifications per second on this machine with the auth service's library and
 * parameters, in a fresh node process with the environment the bench gives the auth process
 * (test/support spawns it with this process's environment and NODE_OPTIONS cleared), so with
 * the same libuv threadpool, kept as busy as the auth process keeps it under the handshake
 * workload: min(threadpool, handshake workers) verifications in flight. `windows` windows of
 * `seconds` after `warmupSeconds`.
 */
export async function measureArgon2Ceiling(config: Argon2VerifyConfig): Promise<Argon2Ceiling> {
  const root = path.resolve(__dirname, '..');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['-r', '@swc-node/register', path.join(__dirname, 'argon2-verify.ts'), JSON.stringify(config)],
    {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: (config.warmupSeconds + config.seconds * config.windows) * 1000 + 120_000,
    },
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Argon2VerifyResult;
  return {
    ...result,
    source: 'ARGON2_PARAMETERS, apps/auth/src/password-hasher.repository.ts',
    verifiesPerSecond: result.windows.map((w) => w.verifies / w.seconds),
    cpuMsPerVerify: result.windows.map((w) => (w.cpuSeconds / w.verifies) * 1000),
  };
}
