/**
 * Top self-time functions of a V8 `.cpuprofile` (what `node --cpu-prof` writes): samples are
 * attributed to the function on top of the stack, summed per function and location.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/**
 * Which samples to count, as `process.hrtime` microseconds of the process that measured: V8
 * stamps samples with the same monotonic clock, so one machine's processes agree on it.
 */
export interface ProfileWindow {
  readonly fromMicros: number;
  readonly toMicros: number;
}

export interface ProfileEntry {
  readonly function: string;
  /** file:line, relative to the repository or node_modules package. */
  readonly location: string;
  /** Share of all samples, in percent (idle included). */
  readonly selfPercent: number;
  /** Share of the non-idle samples, in percent. */
  readonly busyPercent: number;
}

const ROOT = path.resolve(__dirname, '..');

function shorten(url: string): string {
  if (url === '') return '(native)';
  const file = url.replace(/^file:\/\//, '');
  const modules = file.lastIndexOf('node_modules/');
  if (modules >= 0) return file.slice(modules + 'node_modules/'.length);
  return file.startsWith(ROOT) ? path.relative(ROOT, file) : file;
}

/** Samples per node id, counting only those inside `window` (all of them without one). */
function hitsPerNode(profile: CpuProfile, window?: ProfileWindow): Map<number, number> {
  const hits = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  if (window === undefined || samples === undefined || timeDeltas === undefined) {
    for (const node of profile.nodes) hits.set(node.id, node.hitCount ?? 0);
    return hits;
  }
  const from = window.fromMicros;
  const to = window.toMicros;
  let t = profile.startTime;
  for (const [i, id] of samples.entries()) {
    t += timeDeltas[i] ?? 0;
    if (t >= from && t <= to) hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return hits;
}

/**
 * The `top` functions by self time; with `window`, only the samples taken in it (the measured
 * seconds, not the start-up with its module loading).
 */
export function summarizeProfile(
  file: string,
  top: number,
  window?: ProfileWindow,
): ProfileEntry[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const perNode = hitsPerNode(profile, window);
  const totals = new Map<string, { fn: string; location: string; hits: number }>();
  let all = 0;
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = perNode.get(node.id) ?? 0;
    all += hits;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') idle += hits;
    const fn = functionName || '(anonymous)';
    const location = url ? `${shorten(url)}:${lineNumber + 1}` : shorten(url);
    const key = `${fn}@${location}`;
    const entry = totals.get(key) ?? { fn, location, hits: 0 };
    entry.hits += hits;
    totals.set(key, entry);
  }
  const busy = Math.max(1, all - idle);
  return [...totals.values()]
    .filter((e) => e.fn !== '(idle)' && e.hits > 0)
    .sort((a, b) => b.hits - a.hits)
    .slice(0, top)
    .map((e) => ({
      function: e.fn,
      location: e.location,
      selfPercent: (e.hits / Math.max(1, all)) * 100,
      busyPercent: (e.hits / busy) * 100,
    }));
}
