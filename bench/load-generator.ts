/**
 * The load generator of `npm run bench`: a separate process (forked by bench/run.ts) that
 * opens real client connections through libs/client (or the TLS baseline's client) and
 * reports what those clients see, over IPC:
 *
 *   progress  { text }                       while connecting
 *   window    WindowResult                   one per measured window, after the warm-up
 *   ready     { connected, clientRssBytes }  idle workload: all sessions are up; waits for 'stop'
 *   done / failed { message }
 *
 * Bounded in time and count: every workload connects a fixed number of clients, warms up,
 * measures `windows` windows of `seconds`, and exits. Only loopback targets are accepted.
 */
import { type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import {
  type LoadClient,
  type Target,
  type UserKeyType,
  createLoadClient,
  newUserKey,
  newUserKeys,
} from './load-client';
import { LatencyHistogram, type LatencySummary, summarizeMicros } from './stats';

export type Workload =
  'handshake' | 'throughput' | 'rate' | 'idle' | 'room' | 'single' | 'pairs-rate';

export interface GeneratorConfig {
  readonly protocol: 'securechat' | 'tls';
  readonly workload: Workload;
  /** Clients are spread over the targets round-robin (pairs end up on different gateways). */
  readonly targets: readonly Target[];
  /**
   * handshake: concurrent connectors; throughput/rate: clients; idle: sessions; room: members;
   * single, pairs-rate: 2 × pairs (client 2k sends, client 2k + 1 receives).
   */
  readonly clients: number;
  readonly bodyBytes: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly windows: number;
  /** rate, pairs-rate: offered messages per second, in total. */
  readonly rate?: number;
  /** room: members that send (as fast as their acks allow). */
  readonly senders?: number;
  /** single: sends each sender keeps unacknowledged (a new one goes out at each ack). */
  readonly inFlight?: number;
  /** SecureChat: the type of the users' keys (default ed25519; rsa: RSA-2048, signing RSA-PSS). */
  readonly keys?: UserKeyType;
  /** Makes usernames and room names unique per invocation. */
  readonly tag: string;
  readonly caFile?: string;
  /** Connections dialled at once while connecting (under SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS). */
  readonly connectConcurrency?: number;
}

export interface WindowResult {
  readonly window: number;
  readonly seconds: number;
  /** Messages acknowledged by the server. */
  readonly acked: number;
  /** Deliveries received (DM or room fan-out). */
  readonly delivered: number;
  /** Deliveries whose signature did not verify (SecureChat): must be 0. */
  readonly unverified: number;
  /** rate, pairs-rate: offers skipped because a client already had too many unacknowledged sends. */
  readonly skipped: number;
  /** handshake: logins completed. */
  readonly handshakes: number;
  readonly errors: number;
  /** The first error of the window, for the record (absent when there was none). */
  readonly firstError?: string;
  readonly ackLatency: LatencySummary;
  readonly deliveryLatency: LatencySummary;
  readonly handshakeLatency: LatencySummary;
}

export type GeneratorMessage =
  | { readonly type: 'progress'; readonly text: string }
  | { readonly type: 'window'; readonly result: WindowResult }
  | { readonly type: 'ready'; readonly connected: number; readonly clientRssBytes: number }
  | { readonly type: 'done' }
  | { readonly type: 'failed'; readonly message: string };

/** Most unacknowledged sends one client may have in the open-loop `rate` workload. */
const RATE_MAX_OUTSTANDING = 256;

function post(message: GeneratorMessage): void {
  process.send?.(message);
}

const nowMicros = () => performance.now() * 1000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A body of exactly `bytes` UTF-8 bytes carrying its (intended) send time in µs. */
function stampedBody(stampMicros: number, bytes: number): string {
  const head = `${Math.round(stampMicros)}:`;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

function stampOf(body: string): number {
  return Number(body.slice(0, body.indexOf(':')));
}

class Meter {
  measuring = false;
  acked = 0;
  delivered = 0;
  unverified = 0;
  skipped = 0;
  handshakes = 0;
  errors = 0;
  readonly ack = new LatencyHistogram();
  readonly delivery = new LatencyHistogram();
  readonly handshake = new LatencyHistogram();

  reset(): void {
    this.acked = this.delivered = this.unverified = this.skipped = this.handshakes = 0;
    this.errors = 0;
    this.firstError = undefined;
    this.ack.reset();
    this.delivery.reset();
    this.handshake.reset();
  }

  onDeliver = (body: string, verified: boolean): void => {
    if (!this.measuring) return;
    this.delivered++;
    if (!verified) this.unverified++;
    this.delivery.record(nowMicros() - stampOf(body));
  };

  firstError: string | undefined;

  /** Counts a failed send, connection or close, keeping the window's first message. */
  onError = (error?: unknown): void => {
    this.errors++;
    if (this.firstError === undefined && error !== undefined) {
      const text = error instanceof Error ? error.message : JSON.stringify(error);
      this.firstError = text.slice(0, 300);
    }
  };

  result(window: number, seconds: number): WindowResult {
    return {
      window,
      seconds,
      acked: this.acked,
      delivered: this.delivered,
      unverified: this.unverified,
      skipped: this.skipped,
      handshakes: this.handshakes,
      errors: this.errors,
      ...(this.firstError === undefined ? {} : { firstError: this.firstError }),
      ackLatency: summarizeMicros(this.ack),
      deliveryLatency: summarizeMicros(this.delivery),
      handshakeLatency: summarizeMicros(this.handshake),
    };
  }
}

/** Runs `task` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

class Generator {
  readonly meter = new Meter();
  readonly clients: LoadClient[] = [];
  stopped = false;

  constructor(readonly config: GeneratorConfig) {
    for (const target of config.targets) {
      if (target.host !== '127.0.0.1' && target.host !== '::1' && target.host !== 'localhost') {
        throw new Error(`only loopback targets are allowed, not ${target.host}`);
      }
    }
  }

  username(i: number): string {
    return `b${this.config.tag}_${i}`;
  }

  /**
   * The target of client `i`: round-robin, except in the single workload, where pair k's sender
   * goes to target k and its receiver to the next one (mod the targets): with two gateways every
   * pair crosses them and each gateway holds half the senders and half the receivers (one pair:
   * the sender on the first gateway, the receiver on the second, as round-robin would do). The
   * pairs-rate workload places its pairs the same way.
   */
  target(i: number): Target {
    const { targets, workload } = this.config;
    const pairs = workload === 'single' || workload === 'pairs-rate';
    const index = pairs ? (i >> 1) + (i & 1) : i;
    return targets[index % targets.length]!;
  }

  client(i: number, action: 'login' | 'register', key?: KeyObject): LoadClient {
    const { protocol, caFile } = this.config;
    return createLoadClient({
      protocol,
      target: this.target(i),
      username: this.username(i),
      action,
      onDeliver: this.meter.onDeliver,
      onError: this.meter.onError,
      privateKey: key ?? newUserKey(this.config.keys),
      ...(caFile === undefined ? {} : { caFile }),
    });
  }

  /**
   * The users' keys: of config.keys' type for SecureChat (RSA keys made in parallel before
   * anything connects, so that key generation stays out of the connect phase); the TLS
   * baseline has no user keys, and gets throwaway Ed25519 ones it never uses.
   */
  async userKeys(count: number): Promise<KeyObject[]> {
    const type =
      this.config.protocol === 'securechat' ? (this.config.keys ?? 'ed25519') : 'ed25519';
    if (type !== 'ed25519') post({ type: 'progress', text: `generating ${count} ${type} keys` });
    return newUserKeys(count, type);
  }

  /** Registers and connects `count` clients, reporting progress. */
  async connectAll(count: number): Promise<void> {
    const keys = await this.userKeys(count);
    let done = 0;
    const started = Date.now();
    const timer = setInterval(
      () => post({ type: 'progress', text: `connecting ${done}/${count}` }),
      1000,
    );
    try {
      const indexes = Array.from({ length: count }, (_, i) => i);
      await pool(indexes, this.config.connectConcurrency ?? 128, async (i) => {
        const client = this.client(i, 'register', keys[i]);
        await client.connect();
        this.clients[i] = client;
        done++;
      });
    } finally {
      clearInterval(timer);
    }
    post({
      type: 'progress',
      text: `connected ${count} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    });
  }

  /** Warm-up, then the measured windows; `load` runs until `stopped`. */
  async measure(load: () => Promise<void>): Promise<void> {
    const running = load();
    post({ type: 'progress', text: 'warm-up' });
    await sleep(this.config.warmupSeconds * 1000);
    for (let w = 1; w <= this.config.windows; w++) {
      this.meter.reset();
      this.meter.measuring = true;
      post({ type: 'progress', text: `measuring window ${w}/${this.config.windows}` });
      const start = performance.now();
      await sleep(this.config.seconds * 1000);
      this.meter.measuring = false;
      const seconds = (performance.now() - start) / 1000;
      post({ type: 'window', result: this.meter.result(w, seconds) });
    }
    this.stopped = true;
    await Promise.race([running, sleep(5000)]);
  }

  /** One client sending to `to` as fast as its acks allow. */
  async closedLoop(client: LoadClient, to: string): Promise<void> {
    const { bodyBytes } = this.config;
    while (!this.stopped) {
      const start = nowMicros();
      try {
        await client.send(to, stampedBody(start, bodyBytes));
      } catch (error) {
        this.meter.onError(error);
        return;
      }
      if (this.meter.measuring) {
        this.meter.acked++;
        this.meter.ack.record(nowMicros() - start);
      }
    }
  }

  async throughput(): Promise<void> {
    const n = this.config.clients;
    if (n % 2 !== 0) throw new Error('throughput needs an even number of clients');
    await this.connectAll(n);
    await this.measure(async () => {
      await Promise.all(
        this.clients.map((client, i) => this.closedLoop(client, this.username(i ^ 1))),
      );
    });
  }

  /**
   * Open loop at a fixed offered rate, round-robin over the clients. Latency is measured from
   * the intended send time, so that a generator or server falling behind shows in the
   * percentiles instead of being hidden (no coordinated omission); the 1 ms scheduler tick
   * adds up to about a millisecond to every figure.
   */
  async rate(): Promise<void> {
    const n = this.config.clients;
    if (!((this.config.rate ?? 0) > 0)) throw new Error('rate needs a positive rate');
    await this.connectAll(n);
    const everyone = Array.from({ length: n }, (_, i) => i);
    await this.measure(() => this.openLoop(everyone, (i) => this.username(i ^ 1)));
  }

  /**
   * The open loop of `rate` on the shape of `single`: clients in independent pairs, client 2k
   * only sends (to client 2k + 1, placed as in single), client 2k + 1 only receives; the
   * offered total rate is spread round-robin over the senders.
   */
  async pairsRate(): Promise<void> {
    const n = this.config.clients;
    if (n < 2 || n % 2 !== 0) throw new Error('pairs-rate needs an even number of clients (pairs)');
    if (!((this.config.rate ?? 0) > 0)) throw new Error('pairs-rate needs a positive rate');
    await this.connectAll(n);
    const senders = Array.from({ length: n / 2 }, (_, k) => 2 * k);
    await this.measure(() => this.openLoop(senders, (i) => this.username(i + 1)));
  }

  /** Offers config.rate messages per second in total, round-robin over `senders`, until stopped. */
  async openLoop(senders: readonly number[], to: (sender: number) => string): Promise<void> {
    const rate = this.config.rate;
    if (rate === undefined || rate <= 0) throw new Error('an open loop needs a positive rate');
    const outstanding = new Map(senders.map((i) => [i, 0]));
    const start = nowMicros();
    let offered = 0;
    while (!this.stopped) {
      // Message k is due at start + k/rate: k = 0 goes at once, not one interval late.
      const due = Math.floor(((nowMicros() - start) / 1e6) * rate) + 1;
      while (offered < due) {
        const i = senders[offered % senders.length]!;
        const intended = start + (offered * 1e6) / rate;
        offered++;
        if (outstanding.get(i)! >= RATE_MAX_OUTSTANDING) {
          if (this.meter.measuring) this.meter.skipped++;
          continue;
        }
        outstanding.set(i, outstanding.get(i)! + 1);
        this.clients[i]!.send(to(i), stampedBody(intended, this.config.bodyBytes))
          .then(() => {
            if (this.meter.measuring) {
              this.meter.acked++;
              this.meter.ack.record(nowMicros() - intended);
            }
          }, this.meter.onError)
          .finally(() => outstanding.set(i, outstanding.get(i)! - 1));
      }
      await sleep(1);
    }
  }

  /**
   * Connections with a window, in independent pairs: client 2k keeps `inFlight` sends to client
   * 2k + 1 outstanding (each ack lets the next one go), client 2k + 1 only receives. `inFlight`
   * closed loops on one client are exactly that window; libs/client's own cap
   * (maxPendingSends, 1024) is far above it.
   */
  async single(): Promise<void> {
    const inFlight = this.config.inFlight ?? 32;
    const n = this.config.clients;
    if (n < 2 || n % 2 !== 0) throw new Error('single needs an even number of clients (pairs)');
    if (inFlight < 1 || inFlight > 1024) throw new Error('single needs 1 <= inFlight <= 1024');
    await this.connectAll(n);
    await this.measure(async () => {
      const loops: Promise<void>[] = [];
      for (let sender = 0; sender < n; sender += 2) {
        const to = this.username(sender + 1);
        for (let k = 0; k < inFlight; k++) loops.push(this.closedLoop(this.clients[sender]!, to));
      }
      await Promise.all(loops);
    });
  }

  /** Every member joins one room; `senders` of them send to it as fast as their acks allow. */
  async room(): Promise<void> {
    const members = this.config.clients;
    const senders = Math.min(this.config.senders ?? 4, members);
    const room = `#b${this.config.tag}`.slice(0, 33);
    await this.connectAll(members);
    post({ type: 'progress', text: `joining ${room}` });
    await pool(this.clients, 64, (client) => client.join(room));
    await this.measure(async () => {
      await Promise.all(this.clients.slice(0, senders).map((c) => this.closedLoop(c, room)));
    });
  }

  /**
   * Connect + handshake + login per second: `clients` workers, each with its own user
   * (registered first), log in, close in order, and log in again.
   */
  async handshake(): Promise<void> {
    const workers = this.config.clients;
    const keys = await this.userKeys(workers);
    post({ type: 'progress', text: `registering ${workers} users` });
    await pool(
      Array.from({ length: workers }, (_, i) => i),
      32,
      async (i) => {
        const client = this.client(i, 'register', keys[i]);
        await client.connect();
        await client.close();
      },
    );
    await this.measure(async () => {
      await Promise.all(
        keys.map(async (key, i) => {
          while (!this.stopped) {
            const start = nowMicros();
            const client = this.client(i, 'login', key);
            try {
              await client.connect();
            } catch (error) {
              this.meter.onError(error);
              await sleep(10);
              continue;
            }
            if (this.meter.measuring) {
              this.meter.handshakes++;
              this.meter.handshake.record(nowMicros() - start);
            }
            await client.close().catch(this.meter.onError);
          }
        }),
      );
    });
  }

  /** Connects `clients` sessions, reports, and keeps them idle until told to stop. */
  async idle(): Promise<void> {
    await this.connectAll(this.config.clients);
    await sleep(500);
    post({
      type: 'ready',
      connected: this.clients.filter(Boolean).length,
      clientRssBytes: process.memoryUsage().rss,
    });
    await new Promise<void>((resolve) => {
      process.on('message', (message: { type?: string }) => {
        if (message.type === 'stop') resolve();
      });
    });
  }
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: load-generator.ts <config JSON>');
  const config = JSON.parse(raw) as GeneratorConfig;
  const generator = new Generator(config);
  switch (config.workload) {
    case 'handshake':
      await generator.handshake();
      break;
    case 'throughput':
      await generator.throughput();
      break;
    case 'rate':
      await generator.rate();
      break;
    case 'room':
      await generator.room();
      break;
    case 'idle':
      await generator.idle();
      break;
    case 'single':
      await generator.single();
      break;
    case 'pairs-rate':
      await generator.pairsRate();
      break;
  }
  post({ type: 'done' });
}

main().then(
  // Connections are not closed one by one: exiting resets them all, which is quicker and
  // leaves the server's session cleanup out of the next measurement's way.
  () => setTimeout(() => process.exit(0), 100),
  (error: unknown) => {
    post({
      type: 'failed',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    setTimeout(() => process.exit(1), 100);
  },
);
