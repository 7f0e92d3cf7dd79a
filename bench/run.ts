/**
 * `npm run bench`: SecureChat end to end — embedded and distributed (TRANSCRIPTS=full and
 * digest) — next to a plain TLS 1.3 relay and the raw ceilings (node:crypto, redis-benchmark),
 * all in one run. A script, not a test. See docs/BENCHMARKS.md for how to read the output.
 *
 *   npm run bench                        every workload, --runs 3
 *   npm run bench -- --quick             smoke check: one short run each, small N
 *   npm run bench -- --only throughput   one workload (handshake, throughput, single, rate, idle,
 *                                        room, ceilings; comma-separated for several)
 *   npm run bench -- --runs 5 --seconds 10 --warmup 2
 *   npm run bench -- --only single --in-flight 1,32 --compare-root /tmp/sc-before --label x
 *                                        one connection with N sends in flight, on this tree's
 *                                        servers and, alternating, on another checkout's
 *   npm run bench -- --only single --pairs 20 --in-flight 32
 *                                        20 such sender → receiver pairs at once (40 clients)
 *   npm run bench -- --only single --keys rsa --setups embedded,distributed-full,distributed-digest
 *                                        the same with RSA-2048 user keys, on the digest
 *                                        deployment too
 *   npm run bench -- --only rate --pairs 20 --rate 1700
 *                                        the open loop on the pairs shape: 1,700 msg/s offered
 *                                        in total (or --rate 50%,90%: shares of the single
 *                                        maximum at that many pairs, from this run)
 *   npm run bench -- --profile [setup]   also profile one setup (default distributed-full) under
 *                                        the throughput workload
 *   npm run bench -- --render bench/results/<date>.json   tables of a stored run, into the docs
 *
 * Each figure is the median of `runs` runs; runs of one comparison are interleaved (setup A,
 * B, C, D, then again), so that drift of the machine hits every setup alike. Every run is a
 * fresh load-generator process (bench/load-generator.ts) driving real clients over loopback.
 * Progress goes to stderr; the markdown table to stdout and, with the JSON,
 * to bench/results/<date>[-<label>].{json,md}; a full run (every workload) also rewrites the
 * table in docs/BENCHMARKS.md.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { TEST_REDIS_URL } from '../test/support/distributed-cluster';
import {
  type Argon2Ceiling,
  type CryptoCeiling,
  type LoginCryptoCeiling,
  type RedisCeiling,
  commandDelta,
  measureArgon2Ceiling,
  measureCryptoCeiling,
  measureLoginCryptoCeiling,
  measureRedisCeiling,
  redisCommandCalls,
} from './ceilings';
import { type UserKeyType } from './load-client';
import { type GeneratorConfig, type GeneratorMessage, type WindowResult } from './load-generator';
import { type DataStoreCpu, dataStoreCpu, readCpuSeconds } from './proc-cpu';
import { summarizeProfile, type ProfileEntry } from './profile-summary';
import {
  type BenchReport,
  type IdleDataStore,
  type Measurement,
  renderMarkdown,
  updateBenchmarksDoc,
} from './report';
import { type RunningSetup, type SetupName, startSetup } from './setups';
import { median } from './stats';
import { Progress } from './support/progress';

const ROOT = path.resolve(__dirname, '..');
const RESULTS_DIR = path.join(ROOT, 'bench/results');

const WORKLOADS = [
  'handshake',
  'throughput',
  'single',
  'rate',
  'idle',
  'room',
  'ceilings',
] as const;
type WorkloadName = (typeof WORKLOADS)[number];

const USAGE = `usage: npm run bench -- [--quick] [--only ${WORKLOADS.join('|')}[,…]] [--runs N] [--seconds S] [--warmup S] [--setups NAME[,…]] [--pairs P[,…]] [--in-flight N[,…]] [--keys ed25519|rsa] [--rate R[,…]] [--compare-root DIR] [--label NAME] [--profile [setup]] [--no-docs] | --render <results.json>

  --only handshake   logins/s and login latency, and the server CPU per login (every node process
                     of the setup; distributed: every PostgreSQL process and redis-server too),
                     with the fast hash and with argon2id; next to the argon2id rows, the
                     argon2id verifications/s this machine does in the same run (@node-rs/argon2,
                     the auth service's parameters and libuv threadpool) and the logins' share
  --only single      one connection keeping N sends in flight (--in-flight, default 32; 100-byte
                     bodies) to one receiver: delivered msg/s, delivery p50/p99, server CPU per
                     message (distributed: PostgreSQL and Redis included); on embedded,
                     distributed (full) and the TLS baseline (--setups for others)
  --pairs P[,…]      single: P independent sender → receiver pairs at once (2P clients, each
                     sender keeping --in-flight sends outstanding); rate with --rate: the same
                     pairs, sending in an open loop; default 1
  --keys TYPE        single, and rate with --rate: the clients' user keys, ed25519 (default) or
                     rsa (RSA-2048, e = 65537, signing RSA-PSS as libs/protocol does)
  --rate R[,…]       the rate workload runs the open loop on the pairs shape of single (--pairs,
                     --keys) instead of 100 clients: R msg/s offered in total (e.g. 1700), or
                     R% of the setup's single maximum at that many pairs and the first
                     --in-flight, from this run's single rows or, without them, a probe run
                     first; delivered msg/s, delivery p50/p99/p999 from the intended send time,
                     server CPU per message; on the single workload's setups
  --setups NAME[,…]  only these of embedded, distributed-full, distributed-digest, tls-baseline;
                     single and the pairs-shaped rate run exactly these (so distributed-digest
                     too when named), the other workloads the named ones of their own
  --compare-root DIR the single workload also runs every SecureChat setup started from DIR (a
                     checkout of another commit, e.g. a git worktree with node_modules linked),
                     alternating with this tree's; load generator and baseline stay this tree's
  --label NAME       appended to the results file names (bench/results/<date>-NAME.json)`;

export interface Settings {
  readonly quick: boolean;
  readonly only: readonly WorkloadName[];
  readonly runs: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** The setup to run under the CPU profiler, or false. */
  readonly profile: string | false;
  readonly updateDocs: boolean;
  /** single: the sender's windows of unacknowledged sends, one row each. */
  readonly inFlight: readonly number[];
  /** single (and rate with --rate): independent sender → receiver pairs, one row each. */
  readonly pairs: readonly number[];
  /** single and the pairs-shaped rate: the type of the clients' user keys. */
  readonly keys: UserKeyType;
  /**
   * rate: when given, the open loop runs on the pairs shape, one row per entry: a number is
   * messages/s offered in total, `N%` a share of the single maximum at that many pairs.
   */
  readonly rates?: readonly (number | string)[];
  /** Setups to run (default: each workload's own); single and the pairs-shaped rate run these. */
  readonly setups?: readonly SetupName[];
  /** single: another checkout whose SecureChat servers are measured alongside this tree's. */
  readonly compareRoot?: string;
  /** Appended to the results file names. */
  readonly label?: string;
  readonly throughputClients: readonly number[];
  readonly bodySizes: readonly number[];
  readonly rateFractions: readonly number[];
  /** Clients of the rate workload; its maximum is the throughput figure at this N. */
  readonly rateClients: number;
  readonly idleSessions: number;
  readonly roomSizes: readonly number[];
  readonly handshakeWorkers: number;
}

function readSettings(argv: readonly string[]): Settings {
  const args = [...argv];
  let quick = false;
  let only: WorkloadName[] = [...WORKLOADS];
  let runs: number | undefined;
  let seconds: number | undefined;
  let warmup: number | undefined;
  let profile: string | false = false;
  let docs: boolean | undefined;
  let inFlight: number[] = [32];
  let pairs: number[] = [1];
  let keys: UserKeyType = 'ed25519';
  let rates: (number | string)[] | undefined;
  let setups: SetupName[] | undefined;
  let compareRoot: string | undefined;
  let label: string | undefined;
  const number = (flag: string, value: string | undefined) => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n <= 0) {
      throw new Error(`${flag} needs a positive number\n${USAGE}`);
    }
    return n;
  };
  while (args.length > 0) {
    const arg = args.shift()!;
    switch (arg) {
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      case '--quick':
        quick = true;
        break;
      case '--only': {
        const names = (args.shift() ?? '').split(',');
        for (const name of names) {
          if (!(WORKLOADS as readonly string[]).includes(name)) {
            throw new Error(`unknown workload "${name}"\n${USAGE}`);
          }
        }
        only = names as WorkloadName[];
        break;
      }
      case '--runs':
        runs = Math.round(number(arg, args.shift()));
        break;
      case '--seconds':
        seconds = number(arg, args.shift());
        break;
      case '--warmup':
        warmup = number(arg, args.shift());
        break;
      case '--profile': {
        const next = args[0];
        profile = next !== undefined && !next.startsWith('--') ? args.shift()! : 'distributed-full';
        break;
      }
      case '--no-docs':
        docs = false;
        break;
      case '--in-flight':
        inFlight = (args.shift() ?? '').split(',').map((v) => Math.round(number(arg, v)));
        if (inFlight.some((n) => n > 1024)) throw new Error(`--in-flight: at most 1024\n${USAGE}`);
        break;
      case '--pairs':
        pairs = (args.shift() ?? '').split(',').map((v) => Math.round(number(arg, v)));
        if (pairs.some((n) => n > 500)) throw new Error(`--pairs: at most 500\n${USAGE}`);
        break;
      case '--keys': {
        const type = args.shift();
        if (type !== 'ed25519' && type !== 'rsa') {
          throw new Error(`--keys needs ed25519 or rsa\n${USAGE}`);
        }
        keys = type;
        break;
      }
      case '--rate':
        rates = (args.shift() ?? '').split(',').map((v) => {
          if (v.endsWith('%')) {
            const share = number(arg, v.slice(0, -1));
            if (share > 1000) throw new Error(`--rate: at most 1000%\n${USAGE}`);
            return `${share}%`;
          }
          return number(arg, v);
        });
        break;
      case '--setups': {
        const names = (args.shift() ?? '').split(',');
        for (const name of names) {
          if (!(MAIN_SETUPS as readonly string[]).includes(name)) {
            throw new Error(`unknown setup "${name}" (${MAIN_SETUPS.join(', ')})\n${USAGE}`);
          }
        }
        setups = [...new Set(names as SetupName[])];
        break;
      }
      case '--compare-root': {
        const dir = args.shift();
        if (dir === undefined || !existsSync(path.join(dir, 'apps/embedded/src/main.ts'))) {
          throw new Error(`--compare-root needs a checkout of this repository\n${USAGE}`);
        }
        compareRoot = path.resolve(dir);
        break;
      }
      case '--label': {
        const name = args.shift() ?? '';
        if (!/^[\w.-]+$/.test(name)) throw new Error(`--label needs [A-Za-z0-9_.-]+\n${USAGE}`);
        label = name;
        break;
      }
      default:
        throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return {
    quick,
    only,
    runs: runs ?? (quick ? 1 : 3),
    seconds: seconds ?? (quick ? 1 : 10),
    warmupSeconds: warmup ?? (quick ? 0.5 : 2),
    profile,
    // Only a run of every workload replaces the tables in the docs.
    updateDocs: docs ?? (!quick && only.length === WORKLOADS.length),
    inFlight,
    pairs,
    keys,
    ...(rates === undefined ? {} : { rates }),
    ...(setups === undefined ? {} : { setups }),
    ...(compareRoot === undefined ? {} : { compareRoot }),
    ...(label === undefined ? {} : { label }),
    throughputClients: quick ? [10] : [10, 100, 1000],
    rateClients: quick ? 10 : 100,
    bodySizes: [100, 4096],
    rateFractions: quick ? [0.5] : [0.1, 0.5, 0.9],
    idleSessions: quick ? 500 : 10_000,
    roomSizes: quick ? [20] : [100, 1000],
    handshakeWorkers: quick ? 8 : 32,
  };
}

// ---------------------------------------------------------------- processes

function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return kb ? Number(kb[1]) * 1024 : Number.NaN;
}

function openFileLimit(): string {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line?.split(/\s{2,}/).slice(1, 3) ?? [];
    return `${soft}/${hard}`;
  } catch {
    return 'unknown';
  }
}

interface GeneratorRun {
  readonly windows: WindowResult[];
  readonly child: ChildProcess;
}

interface GeneratorHooks {
  onReady?: (message: Extract<GeneratorMessage, { type: 'ready' }>) => Promise<void>;
  onMeasuring?: () => Promise<void>;
  onWindow?: (result: WindowResult) => Promise<void>;
}

/** Silence after which a load generator is taken for stuck and killed. */
const GENERATOR_SILENCE_MS = 60_000;

/** Forks one load generator and collects its windows. */
function runGenerator(
  config: GeneratorConfig,
  progress: Progress,
  hooks: GeneratorHooks = {},
): Promise<GeneratorRun> {
  const child = fork(path.join(__dirname, 'load-generator.ts'), [JSON.stringify(config)], {
    cwd: ROOT,
    execArgv: ['-r', '@swc-node/register'],
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const windows: WindowResult[] = [];
  let failure: string | undefined;
  let pending: Promise<void> = Promise.resolve();
  let lastHeard = Date.now();
  let waitingOnParent = false;
  child.on('message', (message: GeneratorMessage) => {
    lastHeard = Date.now();
    switch (message.type) {
      case 'progress':
        progress.show(message.text);
        if (message.text.startsWith('measuring') && hooks.onMeasuring) {
          pending = pending.then(hooks.onMeasuring);
        }
        break;
      case 'window':
        windows.push(message.result);
        if (hooks.onWindow) pending = pending.then(() => hooks.onWindow!(message.result));
        break;
      case 'ready':
        waitingOnParent = true;
        pending = pending.then(async () => {
          await hooks.onReady?.(message);
          child.send({ type: 'stop' });
          waitingOnParent = false;
          lastHeard = Date.now();
        });
        break;
      case 'failed':
        failure = message.message;
        break;
      case 'done':
        break;
    }
  });
  const timeoutMs =
    (config.warmupSeconds + config.seconds * config.windows) * 1000 + 10 * 60 * 1000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // A generator reports at least once a second while connecting and once per window; one
    // silent for a minute is stuck (seen rarely while connecting 1,000 clients): give up on
    // it rather than wait out the whole timeout.
    // Silent on purpose: a measured window, and the parent's own measuring after `ready`.
    const silenceMs =
      GENERATOR_SILENCE_MS +
      (config.warmupSeconds + config.seconds) * 1000 +
      2 * config.seconds * 1000;
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > silenceMs && !waitingOnParent) {
        failure = `no word from the load generator for ${Math.round(silenceMs / 1000)} s`;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      void pending.then(() => {
        if (code === 0 && failure === undefined) resolve({ windows, child });
        else reject(new Error(`load generator failed (${code}): ${failure ?? stderr}`));
      });
    });
  });
}

// ---------------------------------------------------------------- the run

class Bench {
  /** Running setups by name; `name@root` for those started from another checkout. */
  readonly setups = new Map<string, RunningSetup>();
  readonly measurements: Measurement[] = [];
  readonly failures: string[] = [];
  crypto: CryptoCeiling[] = [];
  loginCrypto: LoginCryptoCeiling | undefined;
  redis: RedisCeiling[] = [];
  argon2: Argon2Ceiling | undefined;
  profile: { setup: string; processes: Record<string, ProfileEntry[]> } | undefined;
  idleDataStore: IdleDataStore | undefined;
  readonly redisCalls = new Map<number, Record<string, number>>();

  constructor(
    readonly settings: Settings,
    readonly progress: Progress,
  ) {}

  /** The running setup `name`, started on first use (from `serverRoot` when given). */
  async setup(name: SetupName, serverRoot?: string): Promise<RunningSetup> {
    const key = serverRoot === undefined ? name : `${name}@${serverRoot}`;
    let setup = this.setups.get(key);
    if (setup === undefined) {
      this.progress.step(`starting ${key}`);
      const root = serverRoot ?? ROOT;
      const before = describeTree(root);
      setup = await startSetup(name, undefined, serverRoot);
      this.setups.set(key, setup);
      // The servers load their code as they start: a tree edited or committed to since the run
      // began (others work in it) is no longer the commit the report names them by.
      const now = readTree(root);
      if (now.commit !== before.commit) {
        this.fail(
          `${key}: ${root} is at ${now.commit} now, not ${before.commit} as when the run began: its servers may run either`,
        );
      }
    }
    return setup;
  }

  /** Stops setup `key` (a name, or `name@root`). */
  async stop(key: string): Promise<void> {
    const setup = this.setups.get(key);
    this.setups.delete(key);
    await setup?.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.setups.keys()].map((key) => this.stop(key)));
  }

  /** A workload's own setups, less those --setups leaves out. */
  chosen(defaults: readonly SetupName[]): SetupName[] {
    const only = this.settings.setups;
    return only === undefined ? [...defaults] : defaults.filter((name) => only.includes(name));
  }

  /** The setups of single and the pairs-shaped rate: --setups as given, else SINGLE_SETUPS. */
  singleSetups(): readonly SetupName[] {
    return this.settings.setups ?? SINGLE_SETUPS;
  }

  config(
    setup: RunningSetup,
    partial: Partial<GeneratorConfig> & Pick<GeneratorConfig, 'workload' | 'clients'>,
  ): GeneratorConfig {
    return {
      protocol: setup.protocol,
      targets: setup.targets,
      bodyBytes: 100,
      warmupSeconds: this.settings.warmupSeconds,
      seconds: this.settings.seconds,
      windows: 1,
      tag: randomBytes(4).toString('hex'),
      ...(setup.caFile === undefined ? {} : { caFile: setup.caFile }),
      ...partial,
    };
  }

  /**
   * One comparison: `runs` rounds, each round one generator run per setup in turn; the
   * median of the rounds is what the report shows. `serverCpu`: also the server CPU of each
   * run's measured window (WindowCpu), into the measurement.
   */
  async compare(
    workload: string,
    params: Record<string, number | string>,
    setups: readonly SetupName[],
    make: (setup: RunningSetup) => GeneratorConfig | Promise<GeneratorConfig>,
    hooks: (setup: RunningSetup) => GeneratorHooks = () => ({}),
    options: {
      serverCpu?: boolean;
      /** Extra fields for the measurement of a setup (e.g. the rate it was offered). */
      annotate?: (setup: SetupName) => Partial<Measurement>;
    } = {},
  ): Promise<void> {
    const collected = new Map<SetupName, WindowResult[]>();
    const cpu = new Map<SetupName, CpuColumns>();
    const label = `${workload} ${Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`;
    for (let run = 1; run <= this.settings.runs; run++) {
      for (const name of setups) {
        let setup: RunningSetup;
        try {
          setup = await this.setup(name);
        } catch (error) {
          this.fail(`${name}: could not start: ${(error as Error).message.slice(0, 500)}`);
          continue;
        }
        this.progress.step(`${label} · ${name} · run ${run}/${this.settings.runs}`);
        const config = await make(setup);
        const meter = options.serverCpu ? new WindowCpu(setup) : undefined;
        try {
          const result = await runGenerator(
            config,
            this.progress,
            meter === undefined ? hooks(setup) : combineHooks(meter.hooks(), hooks(setup)),
          );
          collected.set(name, [...(collected.get(name) ?? []), ...result.windows]);
          if (meter !== undefined) {
            const columns = cpu.get(name) ?? meter.emptyColumns();
            meter.addTo(columns);
            cpu.set(name, columns);
          }
        } catch (error) {
          this.fail(`${label} on ${name}: ${(error as Error).message.slice(0, 800)}`);
        }
        this.progress.advance(estimateSeconds(config));
        await new Promise((r) => setTimeout(r, 500)); // the server closes the sessions
      }
    }
    for (const [setup, windows] of collected) {
      this.measurements.push({
        workload,
        params,
        setup,
        windows,
        ...cpu.get(setup),
        ...options.annotate?.(setup),
      });
    }
  }

  fail(message: string): void {
    this.failures.push(message);
    this.progress.log(`! ${message}`);
  }

  medianOf(
    workload: string,
    setup: SetupName,
    match: Record<string, number | string>,
    pick: (w: WindowResult) => number,
  ): number {
    const m = this.measurements.find(
      (x) =>
        x.workload === workload &&
        x.setup === setup &&
        Object.entries(match).every(([k, v]) => x.params[k] === v),
    );
    return m ? median(m.windows.map(pick)) : Number.NaN;
  }
}

function estimateSeconds(config: GeneratorConfig): number {
  const connect = config.workload === 'handshake' ? 1 : config.clients / 300;
  return 2 + connect + config.warmupSeconds + config.seconds * config.windows;
}

const MAIN_SETUPS: readonly SetupName[] = [
  'embedded',
  'distributed-full',
  'distributed-digest',
  'tls-baseline',
];

/** The single workload: one sender, on the setups it is cheap to compare. */
const SINGLE_SETUPS: readonly SetupName[] = ['embedded', 'distributed-full', 'tls-baseline'];

export interface TreeInfo {
  readonly root: string;
  /** Short commit id of HEAD, `+changes` when tracked files of apps/ or libs/ differ from it. */
  readonly commit: string;
}

const trees = new Map<string, TreeInfo>();

/** The commit a checkout's servers come from (what the report names them by), as of now. */
function readTree(root: string): TreeInfo {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: 'pipe' }).trim();
  let commit: string;
  try {
    commit = git('rev-parse', '--short=7', 'HEAD');
    if (git('diff', '--name-only', 'HEAD', '--', 'apps', 'libs') !== '') commit += '+changes';
  } catch {
    commit = 'unknown';
  }
  return { root, commit };
}

/** readTree as of the first call for `root` in this run. */
function describeTree(root: string): TreeInfo {
  let info = trees.get(root);
  if (info === undefined) {
    info = readTree(root);
    trees.set(root, info);
  }
  return info;
}

/** User + system CPU seconds of each process of a setup so far, by role (NaN if gone). */
function setupCpuByProcess(setup: RunningSetup): Record<string, number> {
  return Object.fromEntries(
    Object.entries(setup.pids).map(([role, pid]) => {
      try {
        return [role, readCpuSeconds(pid)];
      } catch {
        return [role, Number.NaN];
      }
    }),
  );
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/** The server CPU columns of a measurement (parallel to its windows). */
interface CpuColumns {
  serverCpuSeconds: number[];
  dataStoreCpuSeconds?: number[];
  dataStoreProcesses?: { postgres: number; redis: number }[];
  processCpuSeconds?: Record<string, number>[];
}

/**
 * The server CPU of one generator run's measured window, sampled as the window starts and
 * ends (its hooks): utime + stime of every process of the setup, and for the distributed
 * setups also of every PostgreSQL process and redis-server (dataStoreCpu). The single
 * workload's accounting, shared by the handshake and the pairs-shaped rate workloads.
 */
class WindowCpu {
  readonly #stores: boolean;
  #nodeAtStart: Record<string, number> = {};
  #storesAtStart: DataStoreCpu | undefined;
  /** CPU seconds of the setup's own processes in the window. */
  node = Number.NaN;
  /** CPU seconds of PostgreSQL and Redis in the window (distributed only). */
  stores = Number.NaN;
  storeProcesses: DataStoreCpu['processes'] | undefined;
  /** The window's CPU seconds by process role (`gateway-3`, …), and `postgres` and `redis`. */
  byProcess: Record<string, number> = {};

  constructor(readonly setup: RunningSetup) {
    this.#stores = setup.name.startsWith('distributed');
  }

  hooks(): GeneratorHooks {
    return {
      onMeasuring: () => {
        this.#nodeAtStart = setupCpuByProcess(this.setup);
        if (this.#stores) this.#storesAtStart = dataStoreCpu();
        return Promise.resolve();
      },
      onWindow: () => {
        const end = setupCpuByProcess(this.setup);
        this.byProcess = Object.fromEntries(
          Object.entries(end).map(([role, seconds]) => [
            role,
            seconds - (this.#nodeAtStart[role] ?? Number.NaN),
          ]),
        );
        this.node = sum(Object.values(this.byProcess));
        if (this.#storesAtStart !== undefined) {
          const stores = dataStoreCpu();
          this.stores = stores.seconds - this.#storesAtStart.seconds;
          this.storeProcesses = stores.processes;
          this.byProcess.postgres = stores.byStore.postgres - this.#storesAtStart.byStore.postgres;
          this.byProcess.redis = stores.byStore.redis - this.#storesAtStart.byStore.redis;
        }
        return Promise.resolve();
      },
    };
  }

  emptyColumns(): CpuColumns {
    return {
      serverCpuSeconds: [],
      processCpuSeconds: [],
      ...(this.#stores ? { dataStoreCpuSeconds: [], dataStoreProcesses: [] } : {}),
    };
  }

  addTo(columns: CpuColumns): void {
    columns.serverCpuSeconds.push(this.node);
    columns.processCpuSeconds?.push(this.byProcess);
    columns.dataStoreCpuSeconds?.push(this.stores);
    if (this.storeProcesses !== undefined) columns.dataStoreProcesses?.push(this.storeProcesses);
  }
}

/** Both sets of hooks, `first`'s before `second`'s at each step. */
function combineHooks(first: GeneratorHooks, second: GeneratorHooks): GeneratorHooks {
  return {
    onReady: async (message) => {
      await first.onReady?.(message);
      await second.onReady?.(message);
    },
    onMeasuring: async () => {
      await first.onMeasuring?.();
      await second.onMeasuring?.();
    },
    onWindow: async (result) => {
      await first.onWindow?.(result);
      await second.onWindow?.(result);
    },
  };
}

/**
 * Connections with a window, in pairs: each of `pairs` senders keeps `inFlight` sends (100 B)
 * unacknowledged, to its own receiver (on the other gateway when distributed). Besides what the
 * clients see, the CPU the server spent in the measured window, per delivered message: all
 * processes of the setup, and for the distributed setups also every PostgreSQL and Redis
 * process (dataStoreCpu). With --compare-root, each SecureChat setup runs on both trees in every
 * round, the order of the two flipped from round to round. Clients use --keys user keys; the
 * setups are --setups (distributed-digest included when named), else SINGLE_SETUPS.
 */
async function runSingle(bench: Bench): Promise<void> {
  const { runs, compareRoot } = bench.settings;
  const here = describeTree(ROOT);
  const there = compareRoot === undefined ? undefined : describeTree(compareRoot);
  for (const pairs of bench.settings.pairs) {
    for (const inFlight of bench.settings.inFlight) {
      const params = { pairs, inFlight, bytes: 100, keys: bench.settings.keys };
      const collected = new Map<string, Measurement & CpuColumns>();
      for (let run = 1; run <= runs; run++) {
        for (const name of bench.singleSetups()) {
          const order: (TreeInfo | undefined)[] =
            name === 'tls-baseline' ? [undefined] : there === undefined ? [here] : [here, there];
          if (run % 2 === 0) order.reverse();
          for (const tree of order) {
            const server = tree?.commit;
            const text = `single pairs=${pairs} inFlight=${inFlight} · ${name}${server ? ` (${server})` : ''}`;
            let setup: RunningSetup;
            try {
              setup = await bench.setup(name, tree === there ? compareRoot : undefined);
            } catch (error) {
              bench.fail(`${text}: could not start: ${(error as Error).message.slice(0, 500)}`);
              continue;
            }
            bench.progress.step(`${text} · run ${run}/${runs}`);
            const config = bench.config(setup, {
              workload: 'single',
              clients: 2 * pairs,
              inFlight,
              keys: bench.settings.keys,
            });
            const meter = new WindowCpu(setup);
            try {
              const result = await runGenerator(config, bench.progress, meter.hooks());
              const key = `${name}@${server ?? ''}`;
              let m = collected.get(key);
              if (m === undefined) {
                m = {
                  workload: 'single',
                  params,
                  setup: name,
                  ...(server === undefined ? {} : { server }),
                  windows: [],
                  ...meter.emptyColumns(),
                };
                collected.set(key, m);
              }
              m.windows.push(...result.windows);
              meter.addTo(m);
            } catch (error) {
              bench.fail(`${text}: ${(error as Error).message.slice(0, 800)}`);
            }
            bench.progress.advance(estimateSeconds(config));
            await new Promise((r) => setTimeout(r, 500)); // the server closes the sessions
          }
        }
      }
      bench.measurements.push(...collected.values());
    }
  }
  await measureIdleDataStore(bench);
  // The other checkout's servers are of no use to the workloads that follow.
  if (compareRoot !== undefined) {
    for (const name of bench.singleSetups()) await bench.stop(`${name}@${compareRoot}`);
  }
}

/**
 * The background the data-store figure includes: PostgreSQL + Redis CPU per second while the
 * distributed setups of the single workload are still running but have no clients (their
 * pollers, timers and idle connections), over a few seconds.
 */
async function measureIdleDataStore(bench: Bench): Promise<void> {
  const running = [...bench.setups.keys()].filter((key) => key.startsWith('distributed'));
  if (running.length === 0) return;
  bench.progress.step('single: PostgreSQL + Redis CPU with no clients');
  await new Promise((r) => setTimeout(r, 2000));
  const start = dataStoreCpu();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 5000));
  const end = dataStoreCpu();
  const seconds = (performance.now() - t0) / 1000;
  bench.idleDataStore = {
    setups: running,
    seconds,
    cpuSecondsPerSecond: (end.seconds - start.seconds) / seconds,
    processes: end.processes,
  };
}

/** `--render <results.json>`: the tables of a stored run again, into docs/BENCHMARKS.md. */
async function render(jsonFile: string): Promise<void> {
  const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchReport;
  const markdown = renderMarkdown(report);
  writeFileSync(jsonFile.replace(/\.json$/, '.md'), `${markdown}\n`);
  await updateBenchmarksDoc(
    path.join(ROOT, 'docs/BENCHMARKS.md'),
    markdown,
    path.relative(ROOT, path.resolve(jsonFile)),
  );
  console.log(markdown);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--render' && process.argv[3] !== undefined) {
    await render(process.argv[3]);
    return;
  }
  const settings = readSettings(process.argv.slice(2));
  const started = new Date();
  const progress = new Progress();
  const bench = new Bench(settings, progress);
  const wants = (w: WorkloadName) => settings.only.includes(w);
  const s = settings;
  const per = 2 + s.warmupSeconds + s.seconds;
  const setupsN = bench.chosen(MAIN_SETUPS).length;
  const pairSetups = bench.singleSetups();
  const singleSetupsN =
    pairSetups.length +
    (s.compareRoot === undefined ? 0 : pairSetups.filter((n) => n !== 'tls-baseline').length);
  progress.plan(
    s.runs *
      ((wants('handshake') ? (setupsN + 3) * per : 0) +
        (wants('single') ? s.pairs.length * s.inFlight.length * singleSetupsN * per : 0) +
        (wants('throughput')
          ? s.throughputClients.length * s.bodySizes.length * setupsN * (per + 2)
          : 0) +
        (wants('rate')
          ? s.rates === undefined
            ? s.rateFractions.length * s.bodySizes.length * setupsN * per
            : s.pairs.length * s.rates.length * pairSetups.length * per
          : 0) +
        (wants('room') ? s.roomSizes.length * s.bodySizes.length * setupsN * (per + 3) : 0)) +
      (wants('idle') ? 3 * (s.idleSessions / 400 + 45) : 0) +
      (wants('ceilings') ? 30 : 0) +
      60,
  );

  const interrupted = () => {
    progress.end();
    process.stderr.write('interrupted: stopping the servers\n');
    void bench.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const stamp = started
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replaceAll(':', '-');
  const baseName = settings.label === undefined ? stamp : `${stamp}-${settings.label}`;
  const jsonFile = path.join(RESULTS_DIR, `${baseName}.json`);
  /** Written after every workload, so that an interrupted run keeps what it measured. */
  const save = (): string => {
    const report: BenchReport = {
      benchmark: 'securechat',
      date: started.toISOString(),
      durationSeconds: (Date.now() - started.getTime()) / 1000,
      settings,
      environment: {
        node: process.version,
        openssl: process.versions.openssl,
        platform: `${process.platform} ${process.arch}`,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        cores: os.cpus().length,
        memoryBytes: os.totalmem(),
        openFiles: openFileLimit(),
        loadAverageAtStart,
        note: 'the load generator runs on the same cores as the servers',
        serverCpu:
          'single, handshake and the pairs-shaped rate: utime + stime from /proc/<pid>/stat of every node process of the setup; for the distributed setups also of every PostgreSQL process (postmaster and children, plus the postmaster’s reaped children) and of redis-server, which serve nothing else during a bench run',
        servers: {
          this: describeTree(ROOT),
          ...(settings.compareRoot === undefined
            ? {}
            : { compared: describeTree(settings.compareRoot) }),
        },
      },
      measurements: bench.measurements,
      ceilings: {
        crypto: bench.crypto,
        ...(bench.loginCrypto === undefined ? {} : { loginCrypto: bench.loginCrypto }),
        redis: bench.redis,
        ...(bench.argon2 === undefined ? {} : { argon2: bench.argon2 }),
      },
      ...(bench.profile === undefined ? {} : { profile: bench.profile }),
      ...(bench.idleDataStore === undefined ? {} : { idleDataStore: bench.idleDataStore }),
      failures: bench.failures,
    };
    const markdown = renderMarkdown(report);
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(RESULTS_DIR, `${baseName}.md`), `${markdown}\n`);
    return markdown;
  };
  const loadAverageAtStart = os.loadavg();

  const steps: [WorkloadName, (bench: Bench) => Promise<void>][] = [
    ['handshake', runHandshakes],
    ['throughput', runThroughput],
    ['single', runSingle],
    ['rate', runRate],
    ['room', runRooms],
    ['idle', runIdle],
    ['ceilings', runCeilings],
  ];
  try {
    for (const [name, step] of steps) {
      if (!wants(name)) continue;
      await step(bench).catch((error: Error) => bench.fail(`${name}: ${error.message}`));
      save();
    }
  } finally {
    await bench.stopAll();
  }
  if (settings.profile) {
    await runProfile(bench).catch((error: Error) => bench.fail(`profile: ${error.message}`));
  }
  progress.end();
  const markdown = save();
  if (settings.updateDocs) {
    await updateBenchmarksDoc(
      path.join(ROOT, 'docs/BENCHMARKS.md'),
      markdown,
      path.relative(ROOT, jsonFile),
    );
  }
  console.log(markdown);
  console.log(`\nresults: ${path.relative(process.cwd(), jsonFile)}`);
  if (bench.failures.length > 0) process.exitCode = 1;
}

// ---------------------------------------------------------------- workloads

/**
 * Logins per second and their latency, with the server CPU per login (WindowCpu, as single
 * counts it), with the fast hash on the main setups and with argon2id on extra instances; then
 * the argon2id verify ceiling of this machine (measureArgon2Ceiling), with the auth's library,
 * parameters and threadpool, as busy as the handshake workers keep it.
 */
async function runHandshakes(bench: Bench): Promise<void> {
  const workers = bench.settings.handshakeWorkers;
  const options = { serverCpu: true };
  const none = () => ({});
  await bench.compare(
    'handshake',
    { hash: 'fast' },
    bench.chosen(MAIN_SETUPS),
    (setup) => bench.config(setup, { workload: 'handshake', clients: workers }),
    none,
    options,
  );
  const chosen = bench.chosen(MAIN_SETUPS);
  const argon2Setups: SetupName[] = [
    ...(chosen.includes('embedded') ? (['embedded-argon2'] as const) : []),
    ...(chosen.some((name) => name.startsWith('distributed'))
      ? (['distributed-argon2'] as const)
      : []),
    ...(chosen.includes('tls-baseline') ? (['tls-baseline'] as const) : []),
  ];
  await bench.compare(
    'handshake',
    { hash: 'argon2id' },
    argon2Setups,
    (setup) => bench.config(setup, { workload: 'handshake', clients: workers }),
    none,
    options,
  );
  await bench.stop('embedded-argon2');
  await bench.stop('distributed-argon2');
  if (!argon2Setups.some((name) => name !== 'tls-baseline')) return;
  bench.progress.step('handshake: argon2id verifications per second (the ceiling)');
  const { runs, seconds, warmupSeconds } = bench.settings;
  try {
    bench.argon2 = await measureArgon2Ceiling({
      maxConcurrency: workers,
      warmupSeconds,
      seconds,
      windows: runs,
    });
  } catch (error) {
    bench.fail(`argon2id verify ceiling: ${(error as Error).message.slice(0, 500)}`);
  }
  bench.progress.advance(2 + warmupSeconds + runs * seconds);
}

async function runThroughput(bench: Bench): Promise<void> {
  for (const bytes of bench.settings.bodySizes) {
    for (const clients of bench.settings.throughputClients) {
      await bench.compare(
        'throughput',
        { clients, bytes },
        bench.chosen(MAIN_SETUPS),
        (setup) => bench.config(setup, { workload: 'throughput', clients, bodyBytes: bytes }),
        (setup) => redisHooks(bench, setup, bytes, clients),
      );
    }
  }
}

/** Redis commands per message, counted around the distributed throughput windows (N=100). */
function redisHooks(
  bench: Bench,
  setup: RunningSetup,
  bytes: number,
  clients: number,
): GeneratorHooks {
  if (setup.name !== 'distributed-full' || clients !== 100 || bench.redisCalls.has(bytes))
    return {};
  let before: Map<string, number> | undefined;
  return {
    onMeasuring: async () => {
      before = await redisCommandCalls(TEST_REDIS_URL);
    },
    onWindow: async (result) => {
      if (before === undefined) return;
      const after = await redisCommandCalls(TEST_REDIS_URL);
      bench.redisCalls.set(bytes, commandDelta(before, after, result.delivered));
    },
  };
}

async function runRate(bench: Bench): Promise<void> {
  if (bench.settings.rates !== undefined) {
    await runPairsRate(bench, bench.settings.rates);
    return;
  }
  const clients = bench.settings.rateClients;
  for (const bytes of bench.settings.bodySizes) {
    const max = new Map<SetupName, number>();
    for (const name of bench.chosen(MAIN_SETUPS)) {
      let value = bench.medianOf(
        'throughput',
        name,
        { clients, bytes },
        (w) => w.delivered / w.seconds,
      );
      if (!Number.isFinite(value)) {
        // No throughput figure in this run (--only rate): measure the maximum first.
        const setup = await bench.setup(name);
        bench.progress.step(`rate: maximum of ${name} at ${bytes} B`);
        const probe = await runGenerator(
          bench.config(setup, { workload: 'throughput', clients, bodyBytes: bytes }),
          bench.progress,
        ).catch(() => undefined);
        const window = probe?.windows[0];
        value = window ? window.delivered / window.seconds : Number.NaN;
      }
      max.set(name, value);
    }
    for (const fraction of bench.settings.rateFractions) {
      await bench.compare(
        'rate',
        { clients, bytes, load: `${Math.round(fraction * 100)}%` },
        bench.chosen(MAIN_SETUPS).filter((name) => Number.isFinite(max.get(name))),
        (setup) =>
          bench.config(setup, {
            workload: 'rate',
            clients,
            bodyBytes: bytes,
            rate: Math.max(1, Math.round(fraction * max.get(setup.name)!)),
          }),
      );
    }
  }
}

/**
 * The open loop of the rate workload on the pairs shape of single: `pairs` sender → receiver
 * pairs (--pairs, placed as in single, --keys user keys), 100-byte bodies, an offered total
 * rate spread round-robin over the senders; delivery latency from the intended send time and
 * the server CPU per message (WindowCpu). A rate `N%` is that share of the setup's single
 * maximum at that many pairs and the first --in-flight: this run's single figure (this tree's
 * servers), else one probe run of single first.
 */
async function runPairsRate(bench: Bench, rates: readonly (number | string)[]): Promise<void> {
  const { keys } = bench.settings;
  const inFlight = bench.settings.inFlight[0] ?? 32;
  const here = describeTree(ROOT).commit;
  const setups = bench.singleSetups();
  for (const pairs of bench.settings.pairs) {
    const maximum = new Map<SetupName, { perSecond: number; from: string }>();
    if (rates.some((r) => typeof r === 'string')) {
      for (const name of setups) {
        const params = { pairs, inFlight, bytes: 100, keys };
        const single = bench.measurements.find(
          (m) =>
            m.workload === 'single' &&
            m.setup === name &&
            (m.server === undefined || m.server === here) &&
            Object.entries(params).every(([k, v]) => m.params[k] === v),
        );
        let perSecond = single ? median(single.windows.map((w) => w.delivered / w.seconds)) : NaN;
        let from = `single, ${pairs} pair(s) x ${inFlight} in flight, this run`;
        if (!Number.isFinite(perSecond)) {
          // No single figure in this run (--only rate): measure the maximum first.
          from = `probe run of single, ${pairs} pair(s) x ${inFlight} in flight`;
          try {
            const setup = await bench.setup(name);
            bench.progress.step(`rate: single maximum of ${name} at ${pairs} pair(s)`);
            const probe = await runGenerator(
              bench.config(setup, { workload: 'single', clients: 2 * pairs, inFlight, keys }),
              bench.progress,
            );
            const window = probe.windows[0];
            perSecond = window ? window.delivered / window.seconds : Number.NaN;
          } catch (error) {
            bench.fail(
              `rate: single maximum of ${name}: ${(error as Error).message.slice(0, 500)}`,
            );
          }
        }
        if (Number.isFinite(perSecond)) maximum.set(name, { perSecond, from });
      }
    }
    for (const rate of rates) {
      const share = typeof rate === 'string' ? Number(rate.slice(0, -1)) / 100 : undefined;
      const offered = (name: SetupName) =>
        share === undefined
          ? (rate as number)
          : Math.max(1, Math.round(share * (maximum.get(name)?.perSecond ?? Number.NaN)));
      await bench.compare(
        'pairs-rate',
        { pairs, bytes: 100, keys, load: share === undefined ? `${rate} msg/s` : String(rate) },
        setups.filter((name) => Number.isFinite(offered(name))),
        (setup) =>
          bench.config(setup, {
            workload: 'pairs-rate',
            clients: 2 * pairs,
            rate: offered(setup.name),
            keys,
          }),
        () => ({}),
        {
          serverCpu: true,
          annotate: (name) => ({
            offeredPerSecond: offered(name),
            ...(share === undefined ? {} : { maximum: maximum.get(name) }),
          }),
        },
      );
    }
  } // The background in its PostgreSQL + Redis column, unless single measured it already.
  if (bench.idleDataStore === undefined) await measureIdleDataStore(bench);
}

async function runRooms(bench: Bench): Promise<void> {
  for (const bytes of bench.settings.bodySizes) {
    for (const members of bench.settings.roomSizes) {
      await bench.compare('room', { members, bytes }, bench.chosen(MAIN_SETUPS), (setup) =>
        bench.config(setup, {
          workload: 'room',
          clients: members,
          bodyBytes: bytes,
          senders: 4,
          connectConcurrency: 128,
        }),
      );
    }
  }
}

/** How long the idle workload leaves its sessions idle before its second RSS reading. */
const IDLE_SETTLE_SECONDS = 30;

/**
 * N idle logged-in sessions on one gateway: its RSS before and after (per connection), and
 * its CPU over the measured seconds while they sit idle. One run per setup: connecting
 * 10,000 sessions is the expensive part; the CPU figure is the median of 1-second samples.
 */
async function runIdle(bench: Bench): Promise<void> {
  const sessions = bench.settings.idleSessions;
  for (const name of bench.chosen(['embedded', 'distributed-full', 'tls-baseline'])) {
    const setup = await bench.setup(name);
    bench.progress.step(`idle ${sessions} sessions · ${name}`);
    const config = bench.config(setup, {
      workload: 'idle',
      clients: sessions,
      connectConcurrency: 256,
    });
    const single = { ...config, targets: [setup.targets[0]!] };
    await new Promise((r) => setTimeout(r, 1000));
    const rssBefore = readRss(setup.gatewayPid);
    let measured: Record<string, number> = {};
    try {
      await runGenerator(single, bench.progress, {
        onReady: async (ready) => {
          await new Promise((r) => setTimeout(r, 2000));
          const rssAfter = readRss(setup.gatewayPid);
          const samples: number[] = [];
          const seconds = Math.max(3, Math.round(bench.settings.seconds));
          for (let i = 0; i < seconds; i++) {
            const cpu0 = readCpuSeconds(setup.gatewayPid);
            const t0 = performance.now();
            await new Promise((r) => setTimeout(r, 1000));
            samples.push(
              (readCpuSeconds(setup.gatewayPid) - cpu0) / ((performance.now() - t0) / 1000),
            );
            bench.progress.show(`idle CPU sample ${i + 1}/${seconds}`);
          }
          // Connecting leaves garbage (handshakes, the services' answers) that V8 collects and
          // gives back only once the process has been idle a while (its memory reducer): the
          // RSS again after IDLE_SETTLE_SECONDS of idleness is what the sessions themselves hold.
          for (let i = 2 + seconds; i < IDLE_SETTLE_SECONDS; i++) {
            await new Promise((r) => setTimeout(r, 1000));
            bench.progress.show(`idle: letting memory settle ${i + 1}/${IDLE_SETTLE_SECONDS} s`);
          }
          const rssSettled = readRss(setup.gatewayPid);
          measured = {
            connected: ready.connected,
            rssBeforeBytes: rssBefore,
            rssAfterBytes: rssAfter,
            bytesPerConnection: (rssAfter - rssBefore) / ready.connected,
            rssSettledBytes: rssSettled,
            settledBytesPerConnection: (rssSettled - rssBefore) / ready.connected,
            idleCpuPercent: median(samples) * 100,
            idleCpuMaxPercent: Math.max(...samples) * 100,
            clientBytesPerConnection: ready.clientRssBytes / ready.connected,
          };
        },
      });
    } catch (error) {
      bench.fail(`idle on ${name}: ${(error as Error).message.slice(0, 800)}`);
    }
    bench.progress.advance(sessions / 400 + 15 + IDLE_SETTLE_SECONDS);
    if (measured.connected !== undefined) {
      bench.measurements.push({
        workload: 'idle',
        params: { sessions },
        setup: name,
        windows: [],
        idle: measured,
      });
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function runCeilings(bench: Bench): Promise<void> {
  const { runs, quick } = bench.settings;
  for (const bytes of bench.settings.bodySizes) {
    bench.progress.step(`ceiling: per-message crypto, ${bytes} B`);
    bench.crypto.push(measureCryptoCeiling(bytes, quick ? 0.2 : 1, Math.max(3, runs)));
  }
  bench.progress.step('ceiling: the server crypto of one login');
  bench.loginCrypto = measureLoginCryptoCeiling(quick ? 0.2 : 1, Math.max(3, runs));
  for (const bytes of bench.settings.bodySizes) {
    let perMessage = bench.redisCalls.get(bytes);
    if (perMessage === undefined) {
      // No distributed throughput in this run: count them on a short one.
      const setup = await bench.setup('distributed-full');
      bench.progress.step(`ceiling: Redis commands per message, ${bytes} B`);
      await runGenerator(
        bench.config(setup, {
          workload: 'throughput',
          clients: 100,
          bodyBytes: bytes,
          seconds: 2,
          warmupSeconds: 1,
        }),
        bench.progress,
        redisHooks(bench, setup, bytes, 100),
      ).catch((error: Error) => bench.fail(`redis count: ${error.message.slice(0, 500)}`));
      perMessage = bench.redisCalls.get(bytes);
    }
    if (perMessage === undefined) continue;
    bench.progress.step(`ceiling: redis-benchmark, ${bytes} B`);
    try {
      bench.redis.push(
        await measureRedisCeiling(
          TEST_REDIS_URL,
          perMessage,
          bytes,
          quick ? 5_000 : 50_000,
          `benchceil${randomBytes(4).toString('hex')}:`,
        ),
      );
    } catch (error) {
      bench.fail(`redis-benchmark: ${(error as Error).message.slice(0, 500)}`);
    }
  }
  await bench.stop('distributed-full');
}

/**
 * The hottest setup (the distributed deployment under the throughput workload) once more with
 * every service under --cpu-prof; the top self-time functions of each process go to the report.
 */
async function runProfile(bench: Bench): Promise<void> {
  const name = bench.settings.profile as SetupName;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'securechat-bench-prof-'));
  bench.progress.step(`profile: ${name} under the CPU profiler`);
  const setup = await startSetup(name, dir);
  const seconds = Math.max(5, bench.settings.seconds);
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  let windowStart = 0;
  let windowEnd = 0;
  // With --only single (or handshake), the profile follows that workload (single: its first
  // --pairs and --in-flight).
  const single = bench.settings.only.length === 1 && bench.settings.only[0] === 'single';
  const handshake = bench.settings.only.length === 1 && bench.settings.only[0] === 'handshake';
  const pairs = bench.settings.pairs[0] ?? 1;
  const inFlight = bench.settings.inFlight[0] ?? 32;
  try {
    await runGenerator(
      bench.config(
        setup,
        single
          ? { workload: 'single', clients: 2 * pairs, inFlight, seconds, keys: bench.settings.keys }
          : handshake
            ? { workload: 'handshake', clients: bench.settings.handshakeWorkers, seconds }
            : { workload: 'throughput', clients: 100, bodyBytes: 100, seconds },
      ),
      bench.progress,
      {
        onMeasuring: () => {
          windowStart = micros();
          return Promise.resolve();
        },
        onWindow: () => {
          windowEnd = micros();
          return Promise.resolve();
        },
      },
    );
  } finally {
    await setup.stop();
  }
  const window =
    windowStart > 0 && windowEnd > windowStart
      ? { fromMicros: windowStart, toMicros: windowEnd }
      : undefined;
  const processes: Record<string, ProfileEntry[]> = {};
  const byPid = new Map(Object.entries(setup.pids).map(([role, pid]) => [pid, role]));
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    // Named like --cpu-prof's files: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
    const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(file)?.[1]);
    processes[byPid.get(pid) ?? file] = summarizeProfile(path.join(dir, file), 15, window);
  }
  const workload = single
    ? `single, ${pairs} pair(s) x ${inFlight} in flight`
    : handshake
      ? `handshake, ${bench.settings.handshakeWorkers} workers`
      : 'throughput N=100, 100 B';
  bench.profile = { setup: `${name}, ${workload}, measured ${seconds} s`, processes };
  bench.progress.log(`profiles kept in ${dir}`);
}

main().catch((error: unknown) => {
  process.stderr.write('\n');
  console.error(error);
  process.exitCode = 1;
});
