#!/usr/bin/env node
// `npm run fuzz`: coverage-guided fuzzing of the protocol's byte parsers with jsfuzz, bounded in
// time. See docs/FUZZING.md.
//
//   npm run fuzz                                   every target, 20 s each
//   npm run fuzz -- --target session --seconds 600 one target, longer
//   npm run fuzz -- --repro test/fuzz/crashes/session/<sha>
//                                                  replays one input, prints the error and stack
//   npm run fuzz -- --save-corpus                  keeps what the run found in test/fuzz/corpus
//   npm run fuzz -- --make-seeds                   rewrites the seed files (test/fuzz/seeds.ts)
//
// jsfuzz instruments every `.js` file its worker requires (istanbul) and keeps the inputs that
// reach new statements or branches. The targets are TypeScript, so this script first compiles
// them and the sources they load with swc (the options of scripts/build.mjs, plus the test
// helpers build.mjs leaves out) into node_modules/.cache/securechat-fuzz/build, and a preload
// (test/fuzz/jsfuzz-preload.js) narrows the instrumentation to the project's own files there.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { transformFile } from '@swc/core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cache = join(root, 'node_modules', '.cache', 'securechat-fuzz');
const build = join(cache, 'build');
const fuzzDir = join(root, 'test', 'fuzz');
const corpusRoot = join(fuzzDir, 'corpus');
const crashRoot = join(fuzzDir, 'crashes');
const preload = join(fuzzDir, 'jsfuzz-preload.js');

/**
 * The targets, in the order `npm run fuzz` runs them; each is test/fuzz/<name>.fuzz.ts. `focus`:
 * the files each is about, whose coverage the summary shows apart.
 */
const FOCUS = {
  'frame-decoder': ['libs/protocol/src/frame-decoder.ts'],
  'server-handshake': [
    'libs/protocol/src/server-handshake.ts',
    'libs/protocol/src/messages/handshake-frames.ts',
    'libs/protocol/src/messages/login-payload.ts',
    'libs/protocol/src/messages/json.ts',
    'apps/gateway-tcp/src/connection-handshake.ts',
    'apps/gateway-tcp/src/login-gate.ts',
    'apps/gateway-tcp/src/framed-socket.ts',
  ],
  'client-handshake': [
    'libs/protocol/src/client-handshake.ts',
    'libs/protocol/src/client-session.ts',
    'libs/protocol/src/session.ts',
    'libs/protocol/src/messages/handshake-frames.ts',
    'libs/protocol/src/messages/server-messages.ts',
    'libs/protocol/src/messages/json.ts',
  ],
  session: [
    'libs/protocol/src/server-session.ts',
    'libs/protocol/src/session.ts',
    'libs/protocol/src/messages/client-messages.ts',
    'libs/protocol/src/messages/request-rules.ts',
    'apps/gateway-tcp/src/client-connection.ts',
    'apps/gateway-tcp/src/record-reader.ts',
    'apps/gateway-tcp/src/request-handler.ts',
    'apps/gateway-tcp/src/delivery-sync.ts',
    'apps/gateway-tcp/src/connection-transcript.ts',
  ],
  'transcript-chunk': ['libs/core/src/transcripts/transcript-chunk.ts'],
};
const TARGETS = Object.keys(FOCUS);
/** What jsfuzz instruments (and so steers by): the code under test, not its dependencies. */
const INSTRUMENTED = ['libs/protocol/src', 'apps/gateway-tcp/src', 'libs/core/src/transcripts'];

const USAGE = `usage: npm run fuzz -- [--target NAME]... [--seconds N] [--timeout S] [--rss-limit-mb MB]
                       [--save-corpus] [--verbose]
       npm run fuzz -- --repro FILE [--target NAME]
       npm run fuzz -- --make-seeds | --list
targets: ${TARGETS.join(', ')}`;

// ------------------------------------------------------------------------------------ build

/** What the targets load: the apps and libs (test helpers included), db, and test/fuzz. */
const SOURCE_DIRS = ['apps', 'libs', 'db', join('test', 'fuzz')];
const SKIPPED_FILES = /(\.spec|\.int-spec|\.e2e-spec)\.ts$|\.d\.ts$/;
const SKIPPED_DIRS = new Set(['node_modules', 'bench', 'migrations', 'corpus', 'crashes', 'e2e']);

function sourceFiles(dir) {
  const found = [];
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) found.push(...sourceFiles(path));
    } else if (
      (entry.name.endsWith('.ts') && !SKIPPED_FILES.test(entry.name)) ||
      (entry.name.endsWith('.json') && path.includes(`${sep}test${sep}fixtures${sep}`)) ||
      entry.name === 'jsfuzz-preload.js'
    ) {
      found.push(path);
    }
  }
  return found;
}

/** Compiles what changed since the last build (by modification time); a few seconds at most. */
async function buildTargets() {
  const swcrc = JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8'));
  delete swcrc.$schema;
  const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')).compilerOptions;
  const configTime = Math.max(
    statSync(join(root, '.swcrc')).mtimeMs,
    statSync(join(root, 'tsconfig.json')).mtimeMs,
  );
  const files = SOURCE_DIRS.flatMap((dir) => sourceFiles(join(root, dir)));
  let compiled = 0;
  const started = Date.now();
  for (const file of files) {
    const out = join(build, relative(root, file)).replace(/\.ts$/, '.js');
    const outTime = existsSync(out) ? statSync(out).mtimeMs : 0;
    if (outTime > statSync(file).mtimeMs && outTime > configTime) continue;
    mkdirSync(dirname(out), { recursive: true });
    if (!file.endsWith('.ts')) {
      copyFileSync(file, out);
      continue;
    }
    const { code, map } = await transformFile(file, {
      ...swcrc,
      swcrc: false,
      filename: file,
      sourceMaps: true,
      jsc: { ...swcrc.jsc, baseUrl: root, paths },
    });
    writeFileSync(out, `${code}\n//# sourceMappingURL=${out.split(sep).pop()}.map\n`);
    if (map) writeFileSync(`${out}.map`, map);
    compiled += 1;
  }
  if (compiled > 0) console.error(`fuzz: compiled ${compiled} files in ${Date.now() - started} ms`);
}

const compiledTarget = (name) => join(build, 'test', 'fuzz', `${name}.fuzz.js`);

// ------------------------------------------------------------------------------------ repro

function targetOf(file) {
  const parts = resolve(file).split(sep);
  for (const dir of ['crashes', 'corpus']) {
    const at = parts.lastIndexOf(dir);
    if (at !== -1 && TARGETS.includes(parts[at + 1])) return parts[at + 1];
  }
  return undefined;
}

/** Replays one input in this process, without instrumentation, with TypeScript stack traces. */
async function repro(file, explicitTarget) {
  const name = explicitTarget ?? targetOf(file);
  if (!name) {
    console.error(
      `fuzz: cannot tell the target of ${file}; add --target NAME (${TARGETS.join(', ')})`,
    );
    return 2;
  }
  const data = readFileSync(file);
  process.setSourceMapsEnabled(true);
  process.env.FUZZ_STRICT = '1'; // a known issue's input fails here, as it would once unlisted
  const { fuzz } = require(compiledTarget(name));
  console.log(
    `fuzz: replaying ${relative(root, resolve(file))} (${data.length} bytes) against ${name}`,
  );
  try {
    await fuzz(data);
  } catch (error) {
    console.log(`fuzz: ${name} FAILED on this input:\n`);
    console.log(error);
    return 1;
  }
  console.log(`fuzz: ${name} passed on this input`);
  return 0;
}

// ------------------------------------------------------------------------------------ fuzzing

/**
 * Statement and branch coverage from the worker's istanbul dump: of the target's focus files,
 * and of every instrumented file it loaded. Counted on the compiled JavaScript, which swc keeps
 * statement for statement.
 */
function summarizeCoverage(file, focus) {
  if (!existsSync(file)) return undefined;
  const coverage = JSON.parse(readFileSync(file, 'utf8'));
  const empty = () => ({ statements: [0, 0], branches: [0, 0] });
  const totals = { focus: empty(), all: empty() };
  for (const [path, entry] of Object.entries(coverage)) {
    const source = relative(build, path).split(sep).join('/').replace(/\.js$/, '.ts');
    for (const total of focus.includes(source) ? [totals.focus, totals.all] : [totals.all]) {
      for (const hits of Object.values(entry.s)) total.statements[hits > 0 ? 0 : 1] += 1;
      for (const arms of Object.values(entry.b)) {
        for (const hits of arms) total.branches[hits > 0 ? 0 : 1] += 1;
      }
    }
  }
  const ratio = ([hit, missed]) =>
    `${hit}/${hit + missed} ${hit + missed === 0 ? '-' : ((100 * hit) / (hit + missed)).toFixed(0)}%`;
  return {
    focusStatements: ratio(totals.focus.statements),
    focusBranches: ratio(totals.focus.branches),
    allStatements: ratio(totals.all.statements),
    allBranches: ratio(totals.all.branches),
  };
}

/** The jsfuzz process group running now, for Ctrl-C. */
let current;
let interrupted = false;
process.on('SIGINT', () => {
  // Ctrl-C reaches this process only (jsfuzz runs in its own process group): stop the running
  // target as its time limit would, then report; a second Ctrl-C kills it outright.
  const signal = interrupted ? 'SIGKILL' : 'SIGINT';
  interrupted = true;
  if (current) {
    try {
      process.kill(-current.pid, signal);
    } catch {
      // already gone
    }
  }
});

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Runs jsfuzz on one target for `seconds`, then stops it (SIGINT: the worker dumps coverage). */
async function fuzzTarget(name, options) {
  const workCorpus = join(cache, 'corpus', name);
  const run = join(cache, 'run', name);
  const seeds = join(corpusRoot, name);
  rmSync(run, { recursive: true, force: true });
  mkdirSync(run, { recursive: true });
  mkdirSync(workCorpus, { recursive: true });
  mkdirSync(seeds, { recursive: true });
  const known = new Set(readdirSync(workCorpus));
  const statsFile = join(run, 'stats.json');
  const crashFile = join(run, 'crash');
  const jsfuzz = require.resolve('jsfuzz/build/src/index.js');
  // jsfuzz resolves the target against its working directory, and writes new inputs to the
  // first corpus directory: the cache, so a run never touches the checked-in corpus.
  const args = [
    jsfuzz,
    relative(run, compiledTarget(name)),
    workCorpus,
    seeds,
    `--timeout=${options.timeout}`,
    `--rss-limit-mb=${options.rssLimitMb}`,
    `--exact-artifact-path=${crashFile}`,
    // The versifier rebuilds inputs as text from a grammar it guesses; on ours (control bytes,
    // then JSON) it made multi-megabyte inputs whose IPC stalled jsfuzz for seconds. Without it
    // every input is a mutation of a corpus entry, at most 4 KiB.
    '--versifier=false',
  ];
  const child = spawn(process.execPath, args, {
    cwd: run,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`.trim(),
      FUZZ_INSTRUMENT_DIRS: INSTRUMENTED.map((dir) => join(build, dir)).join(delimiter),
      FUZZ_INSTRUMENT_CACHE: join(cache, 'instrumented'),
      FUZZ_STATS_FILE: statsFile,
    },
  });
  let output = '';
  let last = '';
  let lastShown = 0;
  const onData = (text) => {
    output += text;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      if (/^#\d+ /.test(line)) {
        last = line;
        if (options.verbose || Date.now() - lastShown >= 5000) {
          lastShown = Date.now();
          console.log(`  ${name}: ${line.replace(/\s+/g, ' ')}`);
        }
      } else if (options.verbose) {
        console.log(`  ${name}| ${line}`);
      }
    }
  };
  current = child;
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const exited = new Promise((resolveExit) => child.on('exit', (code) => resolveExit(code)));

  const started = Date.now();
  let stopping = false;
  const stop = setTimeout(() => {
    stopping = true;
    try {
      process.kill(-child.pid, 'SIGINT');
    } catch {
      // already gone
    }
  }, options.seconds * 1000);
  // A worker that ignores SIGINT (stuck in one input) is killed after the per-input timeout.
  const kill = setTimeout(
    () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
    (options.seconds + options.timeout + 10) * 1000,
  );
  const code = await exited;
  current = undefined;
  if (interrupted) stopping = true;
  clearTimeout(stop);
  clearTimeout(kill);
  const elapsed = (Date.now() - started) / 1000;

  const stats = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) : undefined;
  const lineExecs = Number(/^#(\d+)/.exec(last)?.[1] ?? 0);
  const executions = Math.max(stats?.executions ?? 0, lineExecs);
  const jsfuzzCov = Number(/cov: (\d+)/.exec(last)?.[1] ?? 0);
  const coverage = summarizeCoverage(join(run, '.nyc_output', 'cov.json'), FOCUS[name]);
  const found = readdirSync(workCorpus).filter((file) => !known.has(file));
  const result = {
    name,
    executions,
    perSecond: Math.round(executions / Math.max(stats?.seconds ?? elapsed, 0.001)),
    jsfuzzCov,
    coverage,
    corpus: readdirSync(seeds).length,
    newInputs: found.length,
    knownIssues: stats?.knownIssues ?? {},
    crash: undefined,
  };

  if (existsSync(crashFile) || code !== 0 || !stopping) {
    // A crash (an input threw), a hang or an out-of-memory (jsfuzz killed the worker and saved
    // the input), or a worker that died on its own.
    const dir = join(crashRoot, name);
    mkdirSync(dir, { recursive: true });
    if (existsSync(crashFile)) {
      const bytes = readFileSync(crashFile);
      const path = join(dir, sha256(bytes));
      renameSync(crashFile, path);
      result.crash = relative(root, path);
    } else {
      result.crash = '(no input saved: the worker exited on its own)';
    }
    const report = output.split('\n').filter((line) => !/^#\d+ /.test(line));
    console.log(`\n  ${name}: FAILED (exit ${code}). jsfuzz said:\n`);
    console.log(report.map((line) => `    ${line}`).join('\n'));
  }

  if (options.saveCorpus) {
    for (const file of found) copyFileSync(join(workCorpus, file), join(seeds, file));
  }
  return result;
}

function printSummary(results, seconds) {
  const header = [
    'target',
    'execs',
    'execs/s',
    'cov',
    'focus stmts',
    'focus branches',
    'all stmts',
    'all branches',
    'corpus+new',
    'result',
  ];
  const rows = results.map((r) => [
    r.name,
    String(r.executions),
    String(r.perSecond),
    String(r.jsfuzzCov),
    r.coverage?.focusStatements ?? '-',
    r.coverage?.focusBranches ?? '-',
    r.coverage?.allStatements ?? '-',
    r.coverage?.allBranches ?? '-',
    `${r.corpus}+${r.newInputs}`,
    r.crash ? 'CRASH' : 'ok',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(`\nfuzz: ${seconds} s per target (jsfuzz start-up included)`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log(
    'cov: what jsfuzz steers by (statements, functions and branch arms reached); focus: the files\n' +
      'the target is about (FOCUS in scripts/fuzz.mjs); all: every instrumented file it loaded;\n' +
      'corpus+new: checked-in inputs + inputs this run found that reached new code.',
  );
  for (const r of results) {
    for (const [id, hits] of Object.entries(r.knownIssues)) {
      console.log(`${r.name}: known issue ${id} hit ${hits} times (docs/FUZZING.md)`);
    }
    if (r.crash) {
      console.log(`\n${r.name}: crashing input kept at ${r.crash}`);
      if (!r.crash.startsWith('(')) console.log(`reproduce: npm run fuzz -- --repro ${r.crash}`);
    }
  }
}

// ------------------------------------------------------------------------------------ main

async function main() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', multiple: true },
      seconds: { type: 'string', default: '20' },
      timeout: { type: 'string', default: '10' },
      'rss-limit-mb': { type: 'string', default: '1024' },
      repro: { type: 'string' },
      'save-corpus': { type: 'boolean', default: false },
      'make-seeds': { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    console.log(TARGETS.join('\n'));
    return 0;
  }
  const targets = (values.target ?? []).flatMap((t) => t.split(','));
  for (const name of targets) {
    if (!TARGETS.includes(name)) {
      console.error(`fuzz: unknown target ${name}\n${USAGE}`);
      return 2;
    }
  }
  const seconds = Number(values.seconds);
  const timeout = Number(values.timeout);
  const rssLimitMb = Number(values['rss-limit-mb']);
  if (![seconds, timeout, rssLimitMb].every((n) => Number.isFinite(n) && n > 0)) {
    console.error(`fuzz: --seconds, --timeout and --rss-limit-mb take positive numbers\n${USAGE}`);
    return 2;
  }

  await buildTargets();
  if (values.repro) return repro(values.repro, targets[0]);
  if (values['make-seeds']) {
    const { writeSeeds } = require(join(build, 'test', 'fuzz', 'seeds.js'));
    process.setSourceMapsEnabled(true);
    const written = writeSeeds(corpusRoot);
    for (const [name, count] of Object.entries(written)) {
      console.log(`fuzz: ${count} seeds in ${relative(root, join(corpusRoot, name))}`);
    }
    return 0;
  }

  const results = [];
  for (const name of targets.length > 0 ? targets : TARGETS) {
    if (interrupted) break;
    console.log(`fuzz: ${name} for ${seconds} s`);
    results.push(
      await fuzzTarget(name, {
        seconds,
        timeout,
        rssLimitMb,
        saveCorpus: values['save-corpus'],
        verbose: values.verbose,
      }),
    );
  }
  printSummary(results, seconds);
  if (results.some((r) => r.crash)) return 1;
  return interrupted ? 130 : 0;
}

process.exitCode = await main();
