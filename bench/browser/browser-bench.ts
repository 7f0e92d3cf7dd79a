/**
 * `npm run bench:browser`: the browser client (one headless Chromium page running libs/protocol
 * bundled for the browser — @noble/* crypto in JavaScript) next to the Node client (the same
 * library on node:crypto / OpenSSL, test/support/protocol-client.ts), in one run, against one
 * embedded server started for the bench:
 *
 * 1. handshakes/s — sequential full logins (client_hello … login_ok, then the socket closed
 *    without `bye`) for S seconds, Ed25519 user keys: Node over TCP, Node over WebSocket, the
 *    page over WebSocket; with the median connect → login_ok latency.
 * 2. messages/s — one sender keeping 32 signed 100-byte sends in flight to one receiver (which
 *    answers every deliver with `delivered`), acks counted over S seconds after a 1 s warm-up:
 *    Node → Node over TCP, Node → Node over WebSocket, page (WebSocket) → Node (TCP); with the
 *    server's CPU time (utime + stime of its one process) in the window per acked message.
 *
 * Clients are interleaved run by run (A, B, C, A, B, C, …) so that drift hits all alike; the
 * table shows the medians of the runs. Progress on stderr, the table on stdout, JSON + markdown
 * in bench/results/browser-<date>.{json,md}.
 *
 *   node -r @swc-node/register bench/browser/browser-bench.ts [--runs N] [--seconds S] [--quick]
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

import { type Ack, type ErrorMessage } from '@securechat/protocol';
import { type Browser, type Page } from 'playwright-core';

import {
  launchChromium,
  openPage,
  servePage,
  type StaticServer,
} from '../../test/browser/browser-harness';
import {
  removeDataDir,
  type RunningServer,
  startEmbeddedServer,
} from '../../test/support/embedded-server';
import { TestClient } from '../../test/support/protocol-client';
import { readCpuSeconds } from '../proc-cpu';
import { median } from '../stats';
import { type BenchPage, type HandshakeResult, type Mark } from './page';

const ROOT = resolve(__dirname, '../..');
const RESULTS_DIR = join(ROOT, 'bench/results');
const execFileAsync = promisify(execFile);

const USAGE = `usage: node -r @swc-node/register bench/browser/browser-bench.ts [--runs N] [--seconds S] [--quick] [--help]
  (npm run bench:browser -- …)

  --runs N      runs per client and workload, interleaved A, B, C, A, B, C, … (default 3)
  --seconds S   length of each measured window (default 5; the messages workload adds a 1 s warm-up)
  --quick       smoke check: --runs 1 --seconds 1
  --help        this text

BENCH_SERVER_LOG=1 prints the embedded server's output at the end (to see why a run went wrong).`;

const PASSWORD = 'benchmark password, not a secret';
const IN_FLIGHT = 32;
const BODY_BYTES = 100;
const WARMUP_S = 1;

type ClientName = 'node-tcp' | 'node-ws' | 'page-ws';
const CLIENTS: readonly ClientName[] = ['node-tcp', 'node-ws', 'page-ws'];
const LABELS: Record<ClientName, { client: string; transport: string; messages: string }> = {
  'node-tcp': { client: 'Node', transport: 'TCP', messages: 'Node → Node, TCP' },
  'node-ws': { client: 'Node', transport: 'WebSocket', messages: 'Node → Node, WebSocket' },
  'page-ws': {
    client: 'Chromium page',
    transport: 'WebSocket',
    messages: 'page (WebSocket) → Node (TCP)',
  },
};

interface Settings {
  readonly runs: number;
  readonly seconds: number;
}

function parseArgs(argv: readonly string[]): Settings {
  let runs = 3;
  let seconds = 5;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${arg} needs a positive number`);
      return n;
    };
    switch (arg) {
      case '--runs':
        runs = Math.round(value());
        break;
      case '--seconds':
        seconds = value();
        break;
      case '--quick':
        runs = 1;
        seconds = 1;
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        console.error(`unknown argument: ${arg}\n${USAGE}`);
        process.exit(2);
    }
  }
  return { runs, seconds };
}

interface HandshakeRun {
  readonly logins: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly serverCpuUsPerLogin: number;
}

interface MessageRun {
  readonly acks: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly serverCpuUsPerMessage: number;
  /** Acked by the server over the whole session (warm-up included) / received by the receiver. */
  readonly sent: number;
  readonly received: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything one bench run holds: the server, the page, the users and their keys. */
class Bench {
  readonly keys = new Map<string, KeyObject>();
  readonly seeds = new Map<string, string>();
  constructor(
    readonly server: RunningServer,
    readonly page: Page,
  ) {}

  get pid(): number {
    return this.server.process.pid!;
  }

  call<K extends keyof BenchPage>(
    name: K,
    ...args: Parameters<BenchPage[K]>
  ): Promise<Awaited<ReturnType<BenchPage[K]>>> {
    return this.page.evaluate(
      ([n, a]) =>
        (
          (
            globalThis as unknown as {
              securechatPage: Record<string, (...x: unknown[]) => unknown>;
            }
          ).securechatPage[n] as (...x: unknown[]) => Promise<Awaited<ReturnType<BenchPage[K]>>>
        )(...a),
      [name, args] as const,
    );
  }

  pageLogin(username: string) {
    return {
      url: `ws://127.0.0.1:${this.server.wsPort}/`,
      fingerprint: this.server.fingerprint,
      username,
      password: PASSWORD,
      seedHex: this.seeds.get(username)!,
    };
  }

  nodeConnect(username: string, transport: 'tcp' | 'websocket', action: 'login' | 'register') {
    return TestClient.connect({
      port: transport === 'tcp' ? this.server.port : this.server.wsPort,
      transport,
      username,
      password: PASSWORD,
      key: this.keys.get(username)!,
      action,
      fingerprint: this.server.fingerprint,
    });
  }

  /** Registers the users of both workloads once: Node's over TCP, the page's from the page. */
  async registerUsers(): Promise<void> {
    for (const name of ['hstcp', 'hsws', 'sndtcp', 'rcvtcp', 'sndws', 'rcvws', 'rcvpage']) {
      this.keys.set(name, generateKeyPairSync('ed25519').privateKey);
      const client = await this.nodeConnect(name, 'tcp', 'register');
      await client.close();
    }
    for (const name of ['hspage', 'sndpage']) {
      this.seeds.set(name, randomBytes(32).toString('hex'));
      await this.call('register', this.pageLogin(name));
    }
  }

  async handshakes(client: ClientName, seconds: number): Promise<HandshakeRun> {
    const cpu0 = readCpuSeconds(this.pid);
    let result: HandshakeResult;
    if (client === 'page-ws') {
      result = await this.call('handshakes', { ...this.pageLogin('hspage'), seconds });
    } else {
      const transport = client === 'node-tcp' ? 'tcp' : 'websocket';
      const username = client === 'node-tcp' ? 'hstcp' : 'hsws';
      const latenciesMs: number[] = [];
      const started = performance.now();
      const end = started + seconds * 1000;
      let now = started;
      while (now < end) {
        const t0 = performance.now();
        const c = await this.nodeConnect(username, transport, 'login');
        now = performance.now();
        latenciesMs.push(now - t0);
        c.destroy(); // no bye: the socket just closes
      }
      result = { count: latenciesMs.length, elapsedMs: now - started, latenciesMs };
    }
    const cpu = readCpuSeconds(this.pid) - cpu0;
    return {
      logins: result.count,
      seconds: result.elapsedMs / 1000,
      perSecond: result.count / (result.elapsedMs / 1000),
      p50Ms: median(result.latenciesMs),
      serverCpuUsPerLogin: (cpu * 1e6) / result.count,
    };
  }

  async messages(client: ClientName, seconds: number): Promise<MessageRun> {
    const [sender, receiver] =
      client === 'node-tcp'
        ? ['sndtcp', 'rcvtcp']
        : client === 'node-ws'
          ? ['sndws', 'rcvws']
          : ['sndpage', 'rcvpage'];
    const transport = client === 'node-ws' ? 'websocket' : 'tcp';
    const rx = new Receiver(await this.nodeConnect(receiver, transport, 'login'));
    let start: Mark;
    let end: Mark;
    let cpu0: number;
    let cpu1: number;
    let sent: number;
    if (client === 'page-ws') {
      await this.call('startSending', {
        ...this.pageLogin(sender),
        to: receiver,
        inFlight: IN_FLIGHT,
        bodyBytes: BODY_BYTES,
      });
      await sleep(WARMUP_S * 1000);
      cpu0 = readCpuSeconds(this.pid);
      start = await this.call('mark');
      await sleep(seconds * 1000);
      cpu1 = readCpuSeconds(this.pid);
      end = await this.call('mark');
      const stopped = await this.call('stopSending');
      if (stopped.failure) throw new Error(`page sender failed: ${stopped.failure}`);
      sent = stopped.acks;
    } else {
      const tx = new NodeSender(await this.nodeConnect(sender, transport, 'login'), receiver);
      tx.start();
      await sleep(WARMUP_S * 1000);
      cpu0 = readCpuSeconds(this.pid);
      start = tx.mark();
      await sleep(seconds * 1000);
      cpu1 = readCpuSeconds(this.pid);
      end = tx.mark();
      await tx.stop();
      if (tx.failure) throw new Error(`node sender failed: ${tx.failure}`);
      sent = tx.acks;
    }
    // Every acked message reaches the receiver before the next run (else the next login of this
    // receiver would start with a backlog).
    const received = await rx.drain(sent);
    const acks = end.acks - start.acks;
    const windowS = (end.t - start.t) / 1000;
    return {
      acks,
      errors: end.errors - start.errors,
      seconds: windowS,
      perSecond: acks / windowS,
      serverCpuUsPerMessage: ((cpu1 - cpu0) * 1e6) / acks,
      sent,
      received,
    };
  }
}

/** A Node receiver: answers every deliver with `delivered`, counts them. */
class Receiver {
  count = 0;
  lastError: string | undefined;
  #stopped = false;
  readonly #loop: Promise<void>;
  constructor(readonly client: TestClient) {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        const deliver = await this.client.next('deliver', () => true, 500);
        this.client.write({ type: 'delivered', msg_id: deliver.msg_id });
        this.count++;
      } catch (error) {
        // no deliver within 500 ms: look at #stopped again
        this.lastError = error instanceof Error ? error.message : String(error);
      }
    }
  }

  /** Waits (up to 10 s) until `expected` delivers arrived, then drops the connection. */
  async drain(expected: number): Promise<number> {
    const until = Date.now() + 10_000;
    while (this.count < expected && Date.now() < until) await sleep(20);
    this.#stopped = true;
    await this.#loop;
    if (this.count < expected) {
      process.stderr.write(
        `  warning: receiver got ${this.count} of ${expected} acked messages ` +
          `(socket ${this.client.socket.destroyed ? 'closed' : 'open'}; inbox ${this.client.inbox.length}; ${this.lastError ?? ''})\n`,
      );
    }
    // The orderly close: every `delivered` is through before the next run's login.
    await this.client.close().catch(() => this.client.destroy());
    return this.count;
  }
}

/** A Node sender keeping IN_FLIGHT sends unacknowledged. */
class NodeSender {
  acks = 0;
  errors = 0;
  failure: string | undefined;
  #stopping = false;
  #workers: Promise<void>[] = [];
  readonly #body = 'x'.repeat(BODY_BYTES);
  constructor(
    readonly client: TestClient,
    readonly to: string,
  ) {}

  start(): void {
    for (let i = 0; i < IN_FLIGHT; i++) this.#workers.push(this.#worker());
  }

  async #worker(): Promise<void> {
    while (!this.#stopping) {
      let answer: Ack | ErrorMessage;
      try {
        answer = await this.client.sendAndAck(this.to, this.#body);
      } catch (error) {
        this.failure ??= error instanceof Error ? error.message : String(error);
        return;
      }
      if (answer.type === 'ack') this.acks++;
      else this.errors++;
    }
  }

  mark(): Mark {
    return { acks: this.acks, errors: this.errors, t: performance.now() };
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#workers);
    this.client.destroy();
  }
}

async function buildBenchPage(dir: string) {
  const script = join(dir, 'page.js');
  const { stdout } = await execFileAsync(
    process.execPath,
    ['scripts/build-web.mjs', '--json', 'bench/browser/page.ts', script],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const { inputs } = JSON.parse(stdout) as { inputs: string[] };
  return { inputs, script };
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '—';

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const buildDir = mkdtempSync(join(tmpdir(), 'securechat-browser-bench-'));
  let pages: StaticServer | undefined;
  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  const cleanup = async () => {
    await browser?.close().catch(() => undefined);
    await pages?.close().catch(() => undefined);
    if (server) {
      await server.stop();
      removeDataDir(server);
    }
    rmSync(buildDir, { recursive: true, force: true });
  };
  const interrupted = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    pages = await servePage(await buildBenchPage(buildDir));
    server = await startEmbeddedServer({
      ALLOW_REGISTRATION: 'true',
      // Benchmarks only: cheap password hashing, so that a login costs the protocol alone.
      SECURECHAT_INSECURE_FAST_HASH: 'true',
      SECURECHAT_WS_ORIGINS: pages.origin,
      SECURECHAT_LOG_LEVEL: 'warn',
      // One address logs in hundreds of times a second (as bench/setups.ts allows).
      SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: '4096',
      SECURECHAT_MAX_HANDSHAKES_PER_56: '4096',
      SECURECHAT_MAX_HANDSHAKES_PER_48: '4096',
      SECURECHAT_ACCEPT_RATE_PER_ADDRESS: '1000000',
      SECURECHAT_ACCEPT_BURST_PER_ADDRESS: '1000000',
      THROTTLE_ADDRESS_FAILURES: '1000000',
      THROTTLE_USER_FAILURES: '1000',
      // Sockets closed without `bye` may still hold a slot for a moment.
      SECURECHAT_MAX_SESSIONS_PER_USER: '100000',
      // 32 in flight goes far past a chat user's sending quota: raised out of reach.
      SECURECHAT_SEND_RATE: '1000000',
      SECURECHAT_SEND_BURST: '10000000',
      SECURECHAT_SEND_BYTES_PER_DAY: String(Number.MAX_SAFE_INTEGER),
    });
    browser = await launchChromium();
    const { page, log } = await openPage(browser, pages.origin);
    const bench = new Bench(server, page);
    await bench.registerUsers();

    const machine = {
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      chromium: browser.version(),
      /** 1-minute load average when the runs started and when they ended (others' work shows). */
      loadAverage: [loadavg()[0] ?? Number.NaN, Number.NaN] as [number, number],
    };
    process.stderr.write(
      `browser bench: ${settings.runs} run(s) × ${settings.seconds} s, embedded server pid ${bench.pid}, ` +
        `${machine.cores} cores, node ${machine.node}, Chromium ${machine.chromium}\n` +
        'SECURECHAT_INSECURE_FAST_HASH=true (benchmarks only): logins cost the protocol, not argon2id\n',
    );

    const handshakes: Record<ClientName, HandshakeRun[]> = {
      'node-tcp': [],
      'node-ws': [],
      'page-ws': [],
    };
    const messages: Record<ClientName, MessageRun[]> = {
      'node-tcp': [],
      'node-ws': [],
      'page-ws': [],
    };
    for (let run = 1; run <= settings.runs; run++) {
      const parts: string[] = [];
      for (const client of CLIENTS) {
        const r = await bench.handshakes(client, settings.seconds);
        handshakes[client].push(r);
        parts.push(`${client} ${fmt(r.perSecond)} hs/s p50 ${fmt(r.p50Ms, 2)} ms`);
      }
      for (const client of CLIENTS) {
        const r = await bench.messages(client, settings.seconds);
        messages[client].push(r);
        parts.push(`${client} ${fmt(r.perSecond)} msg/s ${fmt(r.serverCpuUsPerMessage)} µs/msg`);
      }
      process.stderr.write(`run ${run}/${settings.runs}: ${parts.join('; ')}\n`);
    }
    machine.loadAverage[1] = loadavg()[0] ?? Number.NaN;
    if (log.length > 0) process.stderr.write(`page log:\n${log.join('\n')}\n`);
    if (process.env.BENCH_SERVER_LOG === '1') process.stderr.write(server.output());

    const rows = CLIENTS.map((client) => ({
      client,
      label: LABELS[client],
      handshakesPerSecond: median(handshakes[client].map((r) => r.perSecond)),
      loginP50Ms: median(handshakes[client].map((r) => r.p50Ms)),
      serverCpuUsPerLogin: median(handshakes[client].map((r) => r.serverCpuUsPerLogin)),
      messagesPerSecond: median(messages[client].map((r) => r.perSecond)),
      serverCpuUsPerMessage: median(messages[client].map((r) => r.serverCpuUsPerMessage)),
    }));

    const table = [
      '| client | transport | handshakes/s | login p50 ms | msgs/s | server CPU µs/msg |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows.map(
        (r) =>
          `| ${r.label.client} | ${r.label.transport} | ${fmt(r.handshakesPerSecond)} | ` +
          `${fmt(r.loginP50Ms, 2)} | ${fmt(r.messagesPerSecond)} | ${fmt(r.serverCpuUsPerMessage)} |`,
      ),
    ].join('\n');
    const notes = [
      `Medians of ${settings.runs} run(s), ${settings.seconds} s windows (messages: after a ${WARMUP_S} s warm-up), ` +
        'clients interleaved run by run, one embedded server. ' +
        'Messages: one sender, 32 signed 100-byte sends in flight, one receiver answering `delivered`; ' +
        'the Chromium row sends from the page (WebSocket) to a Node receiver (TCP).',
      'Server run with SECURECHAT_INSECURE_FAST_HASH=true (benchmarks only: cheap password hashing, ' +
        'so that a login costs the protocol, not argon2id). Ed25519 user keys.',
      `Machine: ${machine.cores} cores (${machine.cpu}), node ${machine.node}, Chromium ${machine.chromium}; ` +
        'the Node clients, the page and the server share these cores; ' +
        `1-minute load average ${fmt(machine.loadAverage[0], 2)} at the start, ${fmt(machine.loadAverage[1], 2)} at the end.`,
    ];
    const markdown = `${table}\n\n${notes.join('\n\n')}\n`;
    console.log(markdown);

    const stamp = startedAt
      .toISOString()
      .replace(/\.\d+Z$/, 'Z')
      .replaceAll(':', '-');
    const base = join(RESULTS_DIR, `browser-${stamp}`);
    writeFileSync(
      `${base}.json`,
      `${JSON.stringify(
        {
          date: startedAt.toISOString(),
          settings: {
            ...settings,
            warmupSeconds: WARMUP_S,
            inFlight: IN_FLIGHT,
            bodyBytes: BODY_BYTES,
          },
          machine,
          insecureFastHash: true,
          rows,
          runs: { handshakes, messages },
        },
        null,
        2,
      )}\n`,
    );
    writeFileSync(`${base}.md`, `# Browser client next to the Node client\n\n${markdown}`);
    process.stderr.write(`results: ${relative(process.cwd(), base)}.{json,md}\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
