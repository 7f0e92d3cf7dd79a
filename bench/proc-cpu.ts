/**
 * CPU time of processes from /proc, for the bench's "server CPU per message": a setup's own
 * processes by pid, and the data stores the distributed setups use (PostgreSQL, Redis) found by
 * their process names.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process so far. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The process names (`comm`) of the data stores the distributed setups use. */
const DATA_STORE_COMMS: Readonly<Record<string, 'postgres' | 'redis'>> = {
  postgres: 'postgres',
  'redis-server': 'redis',
};

export interface DataStoreCpu {
  /** User + system CPU seconds so far of every PostgreSQL process and of redis-server. */
  readonly seconds: number;
  /** The processes counted, by store. */
  readonly processes: { readonly postgres: number; readonly redis: number };
  /** `seconds` split by store (NaN as `seconds` is). */
  readonly byStore: { readonly postgres: number; readonly redis: number };
}

/**
 * CPU of every PostgreSQL server process (the postmaster and all its children: backends,
 * checkpointer, WAL writer, …) and of redis-server, found by scanning /proc for their `comm`:
 * utime + stime of each, plus, for the top process of each tree (the postmaster, redis-server),
 * cutime + cstime — the CPU of children that already exited and were reaped (a backend closed
 * within the window), so that the sum only grows. NaN when no PostgreSQL or no Redis process is
 * found. Shared by both trees' distributed setups and by nothing else during a bench run.
 */
export function dataStoreCpu(): DataStoreCpu {
  const found: { pid: number; ppid: number; store: 'postgres' | 'redis'; fields: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile: its CPU went to its parent's cutime
    }
    const store = DATA_STORE_COMMS[stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))];
    if (store === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    found.push({ pid: Number(entry), ppid: Number(fields[1]), store, fields });
  }
  const pids = new Set(found.map((p) => p.pid));
  const ticks = { postgres: 0, redis: 0 };
  for (const p of found) {
    ticks[p.store] += Number(p.fields[11]) + Number(p.fields[12]);
    if (!pids.has(p.ppid)) ticks[p.store] += Number(p.fields[13]) + Number(p.fields[14]);
  }
  const postgres = found.filter((p) => p.store === 'postgres').length;
  const redis = found.length - postgres;
  const both = postgres > 0 && redis > 0;
  return {
    seconds: both ? (ticks.postgres + ticks.redis) / CLOCK_TICKS : Number.NaN,
    processes: { postgres, redis },
    byStore: {
      postgres: both ? ticks.postgres / CLOCK_TICKS : Number.NaN,
      redis: both ? ticks.redis / CLOCK_TICKS : Number.NaN,
    },
  };
}
