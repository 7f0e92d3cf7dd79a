/**
 * The report of `npm run bench`: the JSON kept in bench/results/, and the markdown tables
 * printed at the end and kept in docs/BENCHMARKS.md (between its bench:begin/end markers).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { format, resolveConfig } from 'prettier';

import {
  type Argon2Ceiling,
  type CryptoCeiling,
  type LoginCryptoCeiling,
  type RedisCeiling,
} from './ceilings';
import { type WindowResult } from './load-generator';
import { type ProfileEntry } from './profile-summary';
import { SETUP_LABELS, type SetupName } from './setups';
import { median } from './stats';

export interface Measurement {
  readonly workload: string;
  readonly params: Record<string, number | string>;
  readonly setup: SetupName;
  /** One per run (each run is a separate load-generator process). */
  readonly windows: WindowResult[];
  /** The idle workload's figures. */
  readonly idle?: Record<string, number>;
  /** The commit the SecureChat servers were started from, when runs compare two trees. */
  readonly server?: string;
  /**
   * CPU seconds of the setup's own processes (node: gateways, relay, auth; the embedded server;
   * the TLS relay) in each run's measured window (parallel to windows).
   */
  readonly serverCpuSeconds?: number[];
  /**
   * Distributed setups, single workload: CPU seconds of every PostgreSQL process and of
   * redis-server in the same windows (parallel to windows; absent in older results).
   */
  readonly dataStoreCpuSeconds?: number[];
  /**
   * The same windows' CPU seconds by process: the setup's roles (`gateway-3`, `relay-2`,
   * `embedded`, …) and, for the distributed setups, `postgres` and `redis` (absent in older
   * results).
   */
  readonly processCpuSeconds?: Record<string, number>[];
  /** How many PostgreSQL and Redis processes were counted at the end of each window. */
  readonly dataStoreProcesses?: { postgres: number; redis: number }[];
  /** pairs-rate: the total rate offered to this setup, messages/s. */
  readonly offeredPerSecond?: number;
  /** pairs-rate at a share: the single maximum the share is of, and where it came from. */
  readonly maximum?: { perSecond: number; from: string };
}

export interface IdleDataStore {
  /** The distributed setups running meanwhile (`name` or `name@root`). */
  readonly setups: string[];
  readonly seconds: number;
  readonly cpuSecondsPerSecond: number;
  readonly processes: { postgres: number; redis: number };
}

export interface BenchReport {
  readonly benchmark: 'securechat';
  readonly date: string;
  readonly durationSeconds: number;
  readonly settings: object;
  readonly environment: Record<string, unknown>;
  readonly measurements: Measurement[];
  readonly ceilings: {
    readonly crypto: CryptoCeiling[];
    /** The server's crypto of one login (absent in older results). */
    readonly loginCrypto?: LoginCryptoCeiling;
    readonly redis: RedisCeiling[];
    /** handshake: argon2id verifications per second (absent in older results). */
    readonly argon2?: Argon2Ceiling;
  };
  readonly profile?: { setup: string; processes: Record<string, ProfileEntry[]> };
  /** single: PostgreSQL + Redis CPU with the distributed setups running but no clients. */
  readonly idleDataStore?: IdleDataStore;
  readonly failures: string[];
  /** Set when parts were taken from a follow-up run (says which, and why). */
  readonly merged?: string;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function rate(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value < 100 ? value.toFixed(1) : integer.format(value);
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : integer.format(value);
}

function micros(value: number): string {
  return Number.isFinite(value) ? `${integer.format(value)} µs` : '–';
}

/** Median over runs, with (min–max) when there were several. */
function cell(values: readonly number[], format: (v: number) => string = rate): string {
  if (values.length === 0) return '–';
  const m = median(values);
  if (values.length === 1) return format(m);
  return `${format(m)} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

function table(rows: readonly (readonly string[])[]): string {
  const [header, ...body] = rows;
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header!), line(header!.map(() => '---')), ...body.map(line)].join('\n');
}

const perSecond = (w: WindowResult) => w.delivered / w.seconds;

function find(
  report: BenchReport,
  workload: string,
  setup: SetupName,
  params: Record<string, number | string>,
) {
  return report.measurements.find(
    (m) =>
      m.workload === workload &&
      m.setup === setup &&
      Object.entries(params).every(([k, v]) => m.params[k] === v),
  );
}

function ratio(ours: number, baseline: number): string {
  return Number.isFinite(ours) && Number.isFinite(baseline) && baseline > 0
    ? `${((ours / baseline) * 100).toFixed(0)} %`
    : '–';
}

function latencies(
  windows: readonly WindowResult[],
  pick: (w: WindowResult) => WindowResult['ackLatency'],
): string {
  const p = (k: 'p50' | 'p99' | 'p999') => ms(median(windows.map((w) => pick(w)[k])));
  return `${p('p50')} / ${p('p99')} / ${p('p999')}`;
}

/**
 * Server CPU in µs per unit of work (a delivered message, a login: `count` of a window), as
 * three cells: the setup's node processes, PostgreSQL + Redis (distributed setups; '' for the
 * others), and their total; '–' where a window's figure is missing.
 */
function cpuCells(m: Measurement, count: (w: WindowResult) => number): [string, string, string] {
  const perUnit = (seconds: readonly number[] | undefined) =>
    seconds === undefined ? undefined : seconds.map((c, i) => (c / count(m.windows[i]!)) * 1e6);
  const cpuCell = (values: readonly number[] | undefined) =>
    values !== undefined && values.length > 0 && values.every(Number.isFinite)
      ? cell(values, micros)
      : '–';
  const node = perUnit(m.serverCpuSeconds);
  const stores = perUnit(m.dataStoreCpuSeconds);
  const distributed = m.setup.startsWith('distributed');
  const total =
    node === undefined || (distributed && stores === undefined)
      ? undefined
      : node.map((c, i) => c + (stores?.[i] ?? 0));
  return [cpuCell(node), distributed ? cpuCell(stores) : '', cpuCell(total)];
}

/** A process role without its instance number: `gateway-3` → `gateway`. */
const roleKind = (role: string) => role.replace(/-\d+$/, '');
const ROLE_LABELS: Readonly<Record<string, string>> = {
  gateway: 'gateways',
  relay: 'relay',
  auth: 'auth',
  embedded: 'embedded server',
  postgres: 'PostgreSQL',
  redis: 'Redis',
};
const ROLE_ORDER = ['embedded', 'gateway', 'relay', 'auth', 'postgres', 'redis'];

/**
 * Where the server CPU per unit went, by process kind (the gateways summed), median of the runs
 * in µs — the split behind the tables' "CPU" columns. Empty without per-process figures.
 */
function cpuByProcessTable(
  measurements: readonly Measurement[],
  label: (m: Measurement) => string,
  unit: string,
  count: (w: WindowResult) => number,
): string[] {
  const withSplit = measurements.filter(
    (m) => m.setup !== 'tls-baseline' && (m.processCpuSeconds?.length ?? 0) > 0,
  );
  if (withSplit.length === 0) return [];
  const kinds = ROLE_ORDER.filter((kind) =>
    withSplit.some((m) =>
      m.processCpuSeconds!.some((p) => Object.keys(p).some((r) => roleKind(r) === kind)),
    ),
  );
  const rows: string[][] = [['', ...kinds.map((k) => ROLE_LABELS[k] ?? k)]];
  for (const m of withSplit) {
    const split = m.processCpuSeconds!;
    rows.push([
      label(m),
      ...kinds.map((kind) => {
        const perUnit = split.map((byRole, i) => {
          const roles = Object.keys(byRole).filter((r) => roleKind(r) === kind);
          if (roles.length === 0) return Number.NaN;
          const seconds = roles.reduce((n, r) => n + byRole[r]!, 0);
          return (seconds / count(m.windows[i]!)) * 1e6;
        });
        return perUnit.every(Number.isFinite) ? cell(perUnit, micros) : '';
      }),
    ]);
  }
  return [
    `
Server CPU per ${unit} by process (µs, median (min–max) of the runs):
`,
    table(rows),
  ];
}

/** The PostgreSQL + Redis background measured with no clients, as a paragraph (or none). */
function idleDataStoreNote(report: BenchReport): string[] {
  const idle = report.idleDataStore;
  if (idle === undefined) return [];
  return [
    `\nWith no clients (${idle.setups.join(', ')} running; ${idle.processes.postgres} PostgreSQL processes and ${idle.processes.redis} redis-server), PostgreSQL + Redis used ${ms(idle.cpuSecondsPerSecond * 1000)} ms of CPU per second over ${idle.seconds.toFixed(1)} s: the background in the PostgreSQL + Redis column.`,
  ];
}

/** Parameter combinations of a workload, in the order they were measured. */
function combos(report: BenchReport, workload: string): Record<string, number | string>[] {
  const seen = new Map<string, Record<string, number | string>>();
  for (const m of report.measurements) {
    if (m.workload === workload) seen.set(JSON.stringify(m.params), m.params);
  }
  return [...seen.values()];
}

function setupsOf(report: BenchReport, workload: string): SetupName[] {
  return [
    ...new Set(report.measurements.filter((m) => m.workload === workload).map((m) => m.setup)),
  ];
}

export function renderMarkdown(report: BenchReport): string {
  const env = report.environment;
  const out: string[] = [];
  const settings = report.settings as {
    runs: number;
    seconds: number;
    warmupSeconds: number;
    quick: boolean;
  };
  out.push(
    `Run ${report.date} (${Math.round(report.durationSeconds / 60)} min${settings.quick ? ', --quick' : ''}): node ${String(env.node)}, ${String(env.cpuModel)}, ${String(env.cores)} cores shared by servers and load generator; ` +
      `${settings.runs} run(s) per figure, each ${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured; median (min–max) of the runs. Latencies in ms.`,
  );

  const handshakeCombos = combos(report, 'handshake');
  if (handshakeCombos.length > 0) {
    out.push('\n### Handshakes (connect + handshake + login, then orderly close)\n');
    const argon2 = report.ceilings.argon2;
    const verifies = argon2 === undefined ? Number.NaN : median(argon2.verifiesPerSecond);
    // Older results have no CPU per login: their table stays as it was.
    const withCpu = report.measurements.some(
      (m) => m.workload === 'handshake' && m.serverCpuSeconds !== undefined,
    );
    if (withCpu) {
      out.push(
        'Server CPU per login, from /proc in the measured window (as in the single table below): "node" is the setup’s own processes, "PostgreSQL + Redis" every PostgreSQL process and redis-server (distributed only), "total" the sum; a login here is connect + handshake + login + orderly close.\n',
      );
    }
    const rows: string[][] = [
      [
        'password hash',
        'setup',
        'logins/s',
        'vs TLS baseline',
        ...(argon2 === undefined ? [] : ['logins/s as a share of argon2id verifies/s']),
        'login latency p50 / p99 / p999',
        ...(withCpu
          ? ['CPU/login: node', 'CPU/login: PostgreSQL + Redis', 'CPU/login: total']
          : []),
      ],
    ];
    for (const params of handshakeCombos) {
      const baseline = find(report, 'handshake', 'tls-baseline', params);
      const base = baseline
        ? median(baseline.windows.map((w) => w.handshakes / w.seconds))
        : Number.NaN;
      for (const setup of setupsOf(report, 'handshake')) {
        const m = find(report, 'handshake', setup, params);
        if (!m) continue;
        const values = m.windows.map((w) => w.handshakes / w.seconds);
        rows.push([
          String(params.hash),
          SETUP_LABELS[setup],
          cell(values),
          setup === 'tls-baseline' ? '' : ratio(median(values), base),
          ...(argon2 === undefined
            ? []
            : [
                params.hash === 'argon2id' && setup !== 'tls-baseline'
                  ? ratio(median(values), verifies)
                  : '',
              ]),
          latencies(m.windows, (w) => w.handshakeLatency),
          ...(withCpu ? cpuCells(m, (w) => w.handshakes) : []),
        ]);
      }
    }
    out.push(table(rows));
    out.push(
      ...cpuByProcessTable(
        report.measurements.filter((m) => m.workload === 'handshake'),
        (m) => `${String(m.params.hash)}, ${SETUP_LABELS[m.setup]}`,
        'login',
        (w) => w.handshakes,
      ),
    );
    if (argon2 !== undefined) {
      const p = argon2.parameters;
      out.push(
        `\nargon2id verify ceiling, same run: ${cell(argon2.verifiesPerSecond)} verifies/s (${cell(argon2.cpuMsPerVerify, ms)} ms of CPU each) — ${argon2.library}, ${p.algorithm} m=${p.memoryCost} t=${p.timeCost} p=${p.parallelism} (${argon2.source}), ${argon2.concurrency} in flight on a libuv threadpool of ${argon2.threadpoolSize} (${argon2.threadpoolSource}), as the auth process runs them; ${argon2.errors} failed.`,
      );
    }
  }

  const throughputCombos = combos(report, 'throughput');
  if (throughputCombos.length > 0) {
    out.push('\n### Throughput (clients in pairs, each sending as fast as its acks allow)\n');
    const rows: string[][] = [
      [
        'clients',
        'body',
        'setup',
        'delivered msg/s',
        'vs TLS baseline',
        'ack p50 / p99 / p999',
        'delivery p50 / p99 / p999',
        'errors',
      ],
    ];
    for (const params of throughputCombos) {
      const baseline = find(report, 'throughput', 'tls-baseline', params);
      const base = baseline ? median(baseline.windows.map(perSecond)) : Number.NaN;
      for (const setup of setupsOf(report, 'throughput')) {
        const m = find(report, 'throughput', setup, params);
        if (!m) continue;
        const values = m.windows.map(perSecond);
        rows.push([
          integer.format(Number(params.clients)),
          `${params.bytes} B`,
          SETUP_LABELS[setup],
          cell(values),
          setup === 'tls-baseline' ? '' : ratio(median(values), base),
          latencies(m.windows, (w) => w.ackLatency),
          latencies(m.windows, (w) => w.deliveryLatency),
          String(m.windows.reduce((n, w) => n + w.errors + w.unverified, 0)),
        ]);
      }
    }
    out.push(table(rows));
  }

  const singleCombos = combos(report, 'single');
  if (singleCombos.length > 0) {
    out.push(
      '\n### Connections with sends in flight (pairs: each sender keeps N sends unacknowledged to its own receiver)\n',
    );
    out.push(
      'Server CPU per delivered message, from /proc in the measured window: "node" is the setup’s own processes (gateways, relay and auth; the embedded server; the TLS relay), "PostgreSQL + Redis" every PostgreSQL process and redis-server (distributed only), "total" the sum.\n',
    );
    // Results from before --keys have no key type: their table stays as it was (Ed25519).
    const withKeys = report.measurements.some(
      (m) => m.workload === 'single' && m.params.keys !== undefined,
    );
    const rows: string[][] = [
      [
        'pairs',
        'in flight',
        'body',
        ...(withKeys ? ['keys'] : []),
        'setup',
        'server',
        'delivered msg/s',
        'vs TLS baseline',
        'delivery p50',
        'delivery p99',
        'CPU/msg: node',
        'CPU/msg: PostgreSQL + Redis',
        'CPU/msg: total',
        'errors',
      ],
    ];
    const same = (m: Measurement, params: Record<string, number | string>) =>
      m.workload === 'single' && Object.entries(params).every(([k, v]) => m.params[k] === v);
    for (const params of singleCombos) {
      const baseline = find(report, 'single', 'tls-baseline', params);
      const base = baseline ? median(baseline.windows.map(perSecond)) : Number.NaN;
      for (const m of report.measurements.filter((x) => same(x, params))) {
        const values = m.windows.map(perSecond);
        rows.push([
          String(params.pairs ?? 1),
          String(params.inFlight),
          `${params.bytes} B`,
          ...(withKeys ? [String(params.keys ?? 'ed25519')] : []),
          SETUP_LABELS[m.setup],
          m.server ?? '',
          cell(values),
          m.setup === 'tls-baseline' ? '' : ratio(median(values), base),
          cell(
            m.windows.map((w) => w.deliveryLatency.p50),
            ms,
          ),
          cell(
            m.windows.map((w) => w.deliveryLatency.p99),
            ms,
          ),
          ...cpuCells(m, (w) => w.delivered),
          String(m.windows.reduce((n, w) => n + w.errors + w.unverified, 0)),
        ]);
      }
    }
    out.push(table(rows));
    out.push(
      ...cpuByProcessTable(
        report.measurements.filter((m) => m.workload === 'single'),
        (m) =>
          `${String(m.params.pairs ?? 1)} × ${String(m.params.inFlight)}, ${String(m.params.keys ?? 'ed25519')}, ${SETUP_LABELS[m.setup]}${m.server ? ` (${m.server})` : ''}`,
        'delivered message',
        (w) => w.delivered,
      ),
    );
    out.push(...idleDataStoreNote(report));
  }

  const rateCombos = combos(report, 'rate');
  if (rateCombos.length > 0) {
    out.push(
      '\n### Latency under load (open loop at a share of each setup’s own maximum from the throughput table)\n',
    );
    const rows: string[][] = [
      [
        'clients',
        'body',
        'load',
        'setup',
        'acked msg/s',
        'delivered msg/s',
        'delivery p50 / p99 / p999',
        'skipped offers',
      ],
    ];
    for (const params of rateCombos) {
      for (const setup of setupsOf(report, 'rate')) {
        const m = find(report, 'rate', setup, params);
        if (!m) continue;
        const offered = m.windows.map((w) => w.acked / w.seconds);
        rows.push([
          String(params.clients),
          `${params.bytes} B`,
          String(params.load),
          SETUP_LABELS[setup],
          cell(offered),
          cell(m.windows.map(perSecond)),
          latencies(m.windows, (w) => w.deliveryLatency),
          String(m.windows.reduce((n, w) => n + w.skipped, 0)),
        ]);
      }
    }
    out.push(table(rows));
  }

  const pairsRateCombos = combos(report, 'pairs-rate');
  if (pairsRateCombos.length > 0) {
    out.push(
      '\n### Open loop in pairs (senders → their own receivers, as in the single workload; an offered total rate)\n',
    );
    out.push(
      'Delivery latency from the intended send time (no coordinated omission); server CPU per delivered message as in the single table. A load given as a share is of the setup’s single maximum (offered msg/s shows the rate it came to).\n',
    );
    const rows: string[][] = [
      [
        'pairs',
        'body',
        'keys',
        'load',
        'setup',
        'offered msg/s',
        'acked msg/s',
        'delivered msg/s',
        'delivery p50 / p99 / p999',
        'CPU/msg: node',
        'CPU/msg: PostgreSQL + Redis',
        'CPU/msg: total',
        'skipped offers',
        'errors',
      ],
    ];
    for (const params of pairsRateCombos) {
      for (const setup of setupsOf(report, 'pairs-rate')) {
        const m = find(report, 'pairs-rate', setup, params);
        if (!m) continue;
        rows.push([
          String(params.pairs),
          `${params.bytes} B`,
          String(params.keys),
          String(params.load),
          SETUP_LABELS[setup],
          m.offeredPerSecond === undefined ? '–' : rate(m.offeredPerSecond),
          cell(m.windows.map((w) => w.acked / w.seconds)),
          cell(m.windows.map(perSecond)),
          latencies(m.windows, (w) => w.deliveryLatency),
          ...cpuCells(m, (w) => w.delivered),
          String(m.windows.reduce((n, w) => n + w.skipped, 0)),
          String(m.windows.reduce((n, w) => n + w.errors + w.unverified, 0)),
        ]);
      }
    }
    out.push(table(rows));
    out.push(
      ...cpuByProcessTable(
        report.measurements.filter((m) => m.workload === 'pairs-rate'),
        (m) =>
          `${String(m.params.pairs)} pairs at ${String(m.params.load)}, ${String(m.params.keys)}, ${SETUP_LABELS[m.setup]}`,
        'delivered message',
        (w) => w.delivered,
      ),
    );
    // Said once, under the single table when there is one.
    if (singleCombos.length === 0) out.push(...idleDataStoreNote(report));
  }

  const roomCombos = combos(report, 'room');
  if (roomCombos.length > 0) {
    out.push('\n### Rooms (4 members send as fast as their acks allow; every member receives)\n');
    const rows: string[][] = [
      [
        'members',
        'body',
        'setup',
        'deliveries/s',
        'vs TLS baseline',
        'messages/s',
        'delivery p50 / p99 / p999',
        'errors',
      ],
    ];
    for (const params of roomCombos) {
      const baseline = find(report, 'room', 'tls-baseline', params);
      const base = baseline ? median(baseline.windows.map(perSecond)) : Number.NaN;
      for (const setup of setupsOf(report, 'room')) {
        const m = find(report, 'room', setup, params);
        if (!m) continue;
        const values = m.windows.map(perSecond);
        rows.push([
          integer.format(Number(params.members)),
          `${params.bytes} B`,
          SETUP_LABELS[setup],
          cell(values),
          setup === 'tls-baseline' ? '' : ratio(median(values), base),
          cell(m.windows.map((w) => w.acked / w.seconds)),
          latencies(m.windows, (w) => w.deliveryLatency),
          String(m.windows.reduce((n, w) => n + w.errors + w.unverified, 0)),
        ]);
      }
    }
    out.push(table(rows));
  }

  const idle = report.measurements.filter((m) => m.workload === 'idle' && m.idle);
  if (idle.length > 0) {
    out.push('\n### Idle sessions on one gateway\n');
    // Older results have one RSS reading, 2 s after the last session connected.
    const settled = idle.some((m) => m.idle!.settledBytesPerConnection !== undefined);
    if (settled) {
      out.push(
        'Gateway RSS read 2 s after the last session connected, and again after 30 s of idleness (V8 collects what connecting left behind once the process idles, and may return the memory then).\n',
      );
    }
    const rows: string[][] = [
      [
        'setup',
        'sessions',
        settled ? 'gateway RSS before → 2 s after → settled' : 'gateway RSS before → after',
        settled ? 'KiB per connection: 2 s after / settled' : 'KiB per connection',
        'idle CPU (median / max of 1 s samples)',
        'client KiB per connection',
      ],
    ];
    for (const m of idle) {
      const i = m.idle!;
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
      rows.push([
        SETUP_LABELS[m.setup],
        integer.format(i.connected!),
        `${mib(i.rssBeforeBytes!)} → ${mib(i.rssAfterBytes!)}${i.rssSettledBytes === undefined ? '' : ` → ${mib(i.rssSettledBytes)}`}`,
        `${(i.bytesPerConnection! / 1024).toFixed(1)}${i.settledBytesPerConnection === undefined ? '' : ` / ${(i.settledBytesPerConnection / 1024).toFixed(1)}`}`,
        `${i.idleCpuPercent!.toFixed(1)} % / ${i.idleCpuMaxPercent!.toFixed(1)} %`,
        (i.clientBytesPerConnection! / 1024).toFixed(1),
      ]);
    }
    out.push(table(rows));
  }

  if (
    report.ceilings.crypto.length > 0 ||
    report.ceilings.redis.length > 0 ||
    report.ceilings.loginCrypto !== undefined
  ) {
    out.push('\n### Ceilings (raw node:crypto and redis-benchmark, same run)\n');
    const rows: string[][] = [
      [
        'ceiling',
        'body',
        'per second (one core)',
        'µs each',
        'embedded, 100 clients: share',
        'distributed full, 100 clients: share',
      ],
    ];
    const ours = (setup: SetupName, bytes: number) => {
      const m = find(report, 'throughput', setup, { clients: 100, bytes });
      return m ? median(m.windows.map(perSecond)) : Number.NaN;
    };
    for (const c of report.ceilings.crypto) {
      rows.push([
        'gateway per-message crypto',
        `${c.bodyBytes} B`,
        cell([c.server.median]),
        micros(1e6 / c.server.median),
        ratio(ours('embedded', c.bodyBytes), c.server.median),
        ratio(ours('distributed-full', c.bodyBytes), c.server.median),
      ]);
      rows.push([
        'all per-message crypto (both clients + gateway)',
        `${c.bodyBytes} B`,
        cell([c.endToEnd.median]),
        micros(1e6 / c.endToEnd.median),
        ratio(ours('embedded', c.bodyBytes), c.endToEnd.median),
        ratio(ours('distributed-full', c.bodyBytes), c.endToEnd.median),
      ]);
    }
    const login = report.ceilings.loginCrypto;
    if (login !== undefined) {
      rows.push([
        'server crypto per login (gateway + auth; no password hash)',
        '',
        cell([login.loginsPerSecond.median]),
        micros(1e6 / login.loginsPerSecond.median),
        '',
        '',
      ]);
    }
    for (const r of report.ceilings.redis) {
      const mix = Object.entries(r.commandsPerMessage)
        .map(
          ([c, n]) =>
            `${n.toFixed(2)}× ${c} @ ${integer.format(r.commandRates[c] ?? Number.NaN)}/s${r.standIns[c] ? ` (as ${r.standIns[c]})` : ''}`,
        )
        .join(', ');
      rows.push([
        `Redis commands per message: ${mix}`,
        `${r.bodyBytes} B`,
        cell([r.messagesPerSecond]),
        micros(1e6 / r.messagesPerSecond),
        '',
        ratio(ours('distributed-full', r.bodyBytes), r.messagesPerSecond),
      ]);
    }
    out.push(table(rows));
  }

  if (report.profile) {
    out.push(`\n### CPU profile: ${report.profile.setup}\n`);
    for (const [name, entries] of Object.entries(report.profile.processes)) {
      if (entries.length === 0) {
        out.push(`${name}: no samples in the measured window (idle)\n`);
        continue;
      }
      out.push(
        `${name}: ${entries
          .slice(0, 8)
          .map((e) => `${e.function} (${e.location}) ${e.busyPercent.toFixed(1)} %`)
          .join('; ')}\n`,
      );
    }
  }

  if (report.merged !== undefined) out.push(`\nNote: ${report.merged}.`);
  if (report.failures.length > 0) {
    out.push('\n### Failures\n');
    for (const f of report.failures) out.push(`- ${f.split('\n')[0]}`);
  }
  return out.join('\n');
}

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

/**
 * Replaces the table between the markers of docs/BENCHMARKS.md, keeping the prose around it,
 * formatted with the repository's Prettier settings so that `npm run lint` stays clean.
 */
export async function updateBenchmarksDoc(
  file: string,
  markdown: string,
  jsonFile: string,
): Promise<void> {
  const block = `${BEGIN}\n\n${markdown}\n\nFull results: \`${jsonFile}\`.\n\n${END}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + block + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  const options = (await resolveConfig(file)) ?? {};
  writeFileSync(file, await format(next, { ...options, parser: 'markdown' }));
}
