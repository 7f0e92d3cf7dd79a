#!/usr/bin/env node
// `npm run build`: compiles the server and CLI sources to JavaScript in dist/, so that the
// processes run without a TypeScript compiler loaded (less memory, faster start). swc, with
// the options the tests use (.swcrc), rewrites the path aliases of tsconfig.json into relative
// paths; dist/ mirrors the source tree, so those paths hold there too. Types are checked by
// `npm run lint` (tsc), not here. Runs in a few seconds; `--if-stale` skips the work when
// dist/ is newer than every source file (what `npm start` uses).
//
// Builds may run at once (two e2e specs, `npm start` next to `npm run build`). Each writes its
// own dist.next.<pid>/ and swaps it in with two renames, so dist/ is always one whole build and
// is missing for no longer than that swap; dist.lock only saves the duplicate work (a waiting
// `--if-stale` build finds the other's result fresh). A lock whose holder died, or older than
// its lease (builds take seconds), is taken over.
import { readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compileFile, productionSources, readSwcrc } from './swc-compile.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const stamp = join(out, '.build-stamp');
/** What runs in production: every app and lib, and the database schema and migration runner. */
const SOURCES = ['apps', 'libs', 'db'];
const files = SOURCES.flatMap((dir) => productionSources(join(root, dir)));
const lock = join(root, 'dist.lock');
const next = join(root, `dist.next.${process.pid}`);
const old = join(root, `dist.old.${process.pid}`);
/** Past this age a lock counts as abandoned, whoever holds it (a pid reused, another host). */
const LOCK_LEASE_MS = 60_000;

/** Takes dist.lock (a directory: mkdir is atomic), waiting for another build to finish. */
async function acquireLock() {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    if (!holderAlive()) {
      // Renamed away first: of two builds taking over one abandoned lock, only one moves it.
      const abandoned = `${lock}.abandoned.${process.pid}`;
      try {
        renameSync(lock, abandoned);
      } catch (error) {
        if (error.code !== 'ENOENT') throw error;
      }
      rmSync(abandoned, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`build: ${lock} held for two minutes`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** Whether the build that holds the lock still runs (a killed build leaves its lock behind). */
function holderAlive() {
  try {
    if (Date.now() - statSync(lock).mtimeMs > LOCK_LEASE_MS) return false;
  } catch {
    return false;
  }
  let pid;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // Just created, pid not written yet: count it as alive unless it stays so for long.
    try {
      return Date.now() - statSync(lock).mtimeMs < 10_000;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function fresh() {
  let built = 0;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    // never built
  }
  const inputs = [
    ...files,
    join(root, '.swcrc'),
    join(root, 'tsconfig.json'),
    fileURLToPath(new URL('./swc-compile.mjs', import.meta.url)),
  ];
  return built > 0 && inputs.every((file) => statSync(file).mtimeMs < built);
}

const ifStale = process.argv.includes('--if-stale');
if (ifStale && fresh()) process.exit(0);
await acquireLock();
process.on('exit', () => {
  // Ours only: after a takeover the lock may be another build's.
  try {
    if (readFileSync(join(lock, 'pid'), 'utf8') === String(process.pid)) {
      rmSync(lock, { recursive: true, force: true });
    }
  } catch {
    // already gone
  }
  rmSync(next, { recursive: true, force: true });
});
// Another build may have finished while this one waited.
if (ifStale && fresh()) process.exit(0);

const swcrc = readSwcrc(root);
const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')).compilerOptions;

const started = Date.now();
rmSync(next, { recursive: true, force: true });
for (const file of files) {
  const target = join(next, relative(root, file)).replace(/\.ts$/, '.js');
  await compileFile(swcrc, file, target, { baseUrl: root, paths });
}
writeFileSync(join(next, '.build-stamp'), new Date().toISOString());
// Another build may swap its own dist/ in between the two renames: then move that aside too.
for (;;) {
  rmSync(old, { recursive: true, force: true });
  try {
    renameSync(out, old);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
  }
  try {
    renameSync(next, out);
    break;
  } catch (error) {
    if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
  }
}
rmSync(old, { recursive: true, force: true });
console.error(`built ${files.length} files into dist/ in ${Date.now() - started} ms`);
