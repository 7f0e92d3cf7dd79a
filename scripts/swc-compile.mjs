// What scripts/build.mjs (the server, into dist/) and scripts/pack-client.mjs (the client
// packages) share: which files are production sources, and how one is compiled — swc with the
// options the tests use (.swcrc), a source map beside each file.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { transformFile } from '@swc/core';

/** Specs of every tier and declaration files are not shipped. */
const SKIPPED = /(\.spec|\.int-spec|\.e2e-spec)\.ts$|\.d\.ts$/;
/** Test support, benchmarks and SQL migrations (read as files, not compiled). */
const SKIPPED_DIRS = new Set(['test', 'bench', 'node_modules', 'migrations']);

/** Every production `.ts` file below `dir`. */
export function productionSources(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) found.push(...productionSources(path));
    } else if (entry.name.endsWith('.ts') && !SKIPPED.test(entry.name)) {
      found.push(path);
    }
  }
  return found;
}

/** The repository's .swcrc as transform options. */
export function readSwcrc(root) {
  const swcrc = JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8'));
  delete swcrc.$schema;
  return swcrc;
}

/**
 * Compiles `file` to `target` (a `.js` path) and its source map; `jsc` is merged over the
 * .swcrc's (build.mjs passes the path aliases there, pack-client.mjs nothing).
 */
export async function compileFile(swcrc, file, target, jsc = {}) {
  const { code, map } = await transformFile(file, {
    ...swcrc,
    swcrc: false,
    filename: file,
    sourceMaps: true,
    jsc: { ...swcrc.jsc, ...jsc },
  });
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${code}\n//# sourceMappingURL=${target.split('/').pop()}.map\n`);
  if (map) writeFileSync(`${target}.map`, map);
}
