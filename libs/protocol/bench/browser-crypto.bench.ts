/**
 * What the browser primitives (src/crypto/browser-crypto.ts: noble, synchronous) cost next to
 * node's (src/crypto/node-crypto.ts: OpenSSL), measured in Node on the same protocol code: one
 * full PROTOCOL.md §3 handshake (both roles, Ed25519 user key: RSA-PSS has no synchronous path
 * in a browser) and sealing + opening one 1 KiB record (PROTOCOL.md §5). The protocol is loaded
 * twice, the second time with ./crypto/node-crypto resolved to ./crypto/browser-crypto, as a
 * browser bundle aliases it. A script, not a test:
 *
 *   npx tsx libs/protocol/bench/browser-crypto.bench.ts          (BENCH_SECONDS=1 per run)
 *
 * Prints a markdown table; numbers are the median of 5 runs.
 */
import Module, { createRequire } from 'node:module';
import path from 'node:path';

import type * as ProtocolModule from '../src';

type Protocol = typeof ProtocolModule;

const SRC = path.resolve(__dirname, '../src');
const load = createRequire(__filename);

interface Resolver {
  _resolveFilename: (this: unknown, request: string, parent: unknown, ...rest: unknown[]) => string;
}

/** The protocol with one implementation of ./crypto, from a fresh module cache. */
function loadProtocol(implementation: 'node-crypto' | 'browser-crypto'): Protocol {
  for (const file of Object.keys(load.cache)) {
    if (file.startsWith(SRC)) delete load.cache[file];
  }
  const resolver = Module as unknown as Resolver;
  const original = resolver._resolveFilename;
  resolver._resolveFilename = function (request, parent, ...rest) {
    const aliased = request === './crypto/node-crypto' ? `./crypto/${implementation}` : request;
    return original.call(this, aliased, parent, ...rest);
  };
  try {
    return load(SRC) as Protocol;
  } finally {
    resolver._resolveFilename = original;
  }
}

const PASSWORD = 'correct horse battery staple';

/** One full handshake, both roles, in memory (as protocol.bench.ts runs it). */
function handshakeOf(p: Protocol) {
  const identity = p.ed25519PrivateKeyFromSeed(p.randomBytes(32));
  const userKey = p.ed25519PrivateKeyFromSeed(p.randomBytes(32));
  const userSpki = p.exportSpki(userKey);
  const fingerprint = p.fingerprint(p.exportSpki(identity));
  let counter = 0;
  const frames = (decoder: InstanceType<Protocol['FrameDecoder']>, chunks: Buffer[]) =>
    chunks.flatMap((chunk) => decoder.push(chunk));
  return async function handshake(): Promise<void> {
    const client = new p.ClientHandshake({
      trust: { fingerprint },
      credentials: { action: 'login', username: 'alice', password: PASSWORD, privateKey: userKey },
    });
    const server = new p.ServerHandshake({
      identity: { privateKey: identity },
      sessionId: `s-${++counter}`,
      verifyLogin: (request) =>
        Promise.resolve(
          request.password === PASSWORD &&
            p.userVerify(
              p.importUserPublicKey(userSpki),
              p.clientAuthInput(request.h2),
              request.signature,
            )
            ? { ok: true, publicKey: userSpki }
            : { ok: false, code: 'auth_failed' },
        ),
    });
    const toServer = new p.FrameDecoder();
    const toClient = new p.FrameDecoder();
    const greeting = await server.receive(frames(toServer, [client.start()])[0]!);
    const [hello, auth] = frames(toClient, greeting.send);
    await client.receive(hello!);
    const login = await client.receive(auth!);
    const accepted = await server.receive(frames(toServer, login.send)[0]!);
    const done = await client.receive(frames(toClient, accepted.send)[0]!);
    if (!accepted.session || !done.session) throw new Error('handshake failed');
  };
}

function recordOf(p: Protocol) {
  const secret = p.randomBytes(32);
  const send = new p.RecordDirection('c2s', secret);
  const receive = new p.RecordDirection('c2s', secret);
  const plaintext = p.randomBytes(1024);
  return function record(): void {
    if (receive.open(send.seal(plaintext)).length !== 1024) throw new Error('record failed');
  };
}

/** Median µs per operation over 5 runs of `seconds` each, after one untimed run. */
async function microsPerOp(run: () => unknown, seconds: number): Promise<number> {
  const once = async (budget: number) => {
    const start = process.hrtime.bigint();
    let ops = 0;
    let elapsed = 0;
    do {
      for (let i = 0; i < 10; i++) await run();
      ops += 10;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    } while (elapsed < budget);
    return (elapsed / ops) * 1e6;
  };
  await once(seconds / 3);
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) runs.push(await once(seconds));
  return runs.sort((a, b) => a - b)[2]!;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 1);
  const implementations = {
    'node-crypto': loadProtocol('node-crypto'),
    'browser-crypto': loadProtocol('browser-crypto'),
  };
  // The alias must have taken: browser-crypto refuses synchronous RSA, node-crypto does not.
  if (implementations['browser-crypto'].userSign === implementations['node-crypto'].userSign) {
    throw new Error('browser-crypto was not loaded');
  }
  const rows: string[][] = [];
  for (const [what, make] of [
    ['full handshake, both roles, Ed25519 user key', handshakeOf],
    ['record 1 KiB: RecordDirection seal + open', recordOf],
  ] as const) {
    const [nodeUs, browserUs] = [
      await microsPerOp(make(implementations['node-crypto']), seconds),
      await microsPerOp(make(implementations['browser-crypto']), seconds),
    ];
    rows.push([
      what,
      nodeUs.toFixed(1),
      browserUs.toFixed(1),
      `${(browserUs / nodeUs).toFixed(1)}×`,
    ]);
    console.error(`done: ${what}`);
  }
  console.log(`node ${process.version}, ${seconds} s × 5 runs, median µs per operation\n`);
  console.log(
    '| operation | node-crypto (µs/op) | browser-crypto in Node (µs/op) | browser / node |',
  );
  console.log('| --- | --- | --- | --- |');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
