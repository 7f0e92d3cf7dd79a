#!/usr/bin/env node
// `npm run build`: compiles the server and CLI sources to JavaScript in dist/, so that the
// processes run without a TypeScript compiler loaded (less memory, faster start). swc, with
// the options the tests use (.swcrc), rewrites the path aliases of tsconfig.json into relative
// paths; dist/ mirrors the source tree, so those paths hold there too. Types are checked by
// `npm run lint` (tsc), not here. Runs in a few seconds; `--if-stale` skips the work when
// dist/ is newer than every source file (what `npm start` uses).
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { transformFile } from '@swc/core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const stamp = join(out, '.build-stamp');
/** What runs in production: every app and lib, and the database schema and migration runner. */
const SOURCES = ['apps', 'libs', 'db'];
const SKIPPED = /(\.spec|\.int-spec|\.e2e-spec)\.ts$|\.d\.ts$/;
const SKIPPED_DIRS = new Set(['test', 'bench', 'node_modules', 'migrations']);

function sources(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) found.push(...sources(path));
    } else if (entry.name.endsWith('.ts') && !SKIPPED.test(entry.name)) {
      found.push(path);
    }
  }
  return found;
}

const files = SOURCES.flatMap((dir) => sources(join(root, dir)));

if (process.argv.includes('--if-stale')) {
  let built = 0;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    // never built
  }
  const inputs = [...files, join(root, '.swcrc'), join(root, 'tsconfig.json')];
  if (built > 0 && inputs.every((file) => statSync(file).mtimeMs < built)) process.exit(0);
}

const swcrc = JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8'));
delete swcrc.$schema;
const { paths } = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')).compilerOptions;

const started = Date.now();
rmSync(out, { recursive: true, force: true });
for (const file of files) {
  const target = join(out, relative(root, file)).replace(/\.ts$/, '.js');
  const { code, map } = await transformFile(file, {
    ...swcrc,
    swcrc: false,
    filename: file,
    sourceMaps: true,
    jsc: { ...swcrc.jsc, baseUrl: root, paths },
  });
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${code}\n//# sourceMappingURL=${target.split('/').pop()}.map\n`);
  if (map) writeFileSync(`${target}.map`, map);
}
writeFileSync(stamp, new Date().toISOString());
console.error(`built ${files.length} files into dist/ in ${Date.now() - started} ms`);
