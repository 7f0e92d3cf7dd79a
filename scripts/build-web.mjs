#!/usr/bin/env node
// Bundles TypeScript that uses libs/protocol for a browser: `node scripts/build-web.mjs [--json]
// <entry> [outfile]`, or the web client (apps/web) as static files with `--app [outdir]` (default
// dist/web: index.html, style.css, app.js; what `npm run build:web` runs and the gateway serves) (default outfile build/web/<entry name>.js; --json prints the files that
// went in and came out, for tests, which run it as a process: Jest's CommonJS sandbox can load
// neither this module nor esbuild), or `buildWeb()` from other ESM.
//
// libs/protocol runs on node:crypto by default; a browser gets crypto/browser-crypto.ts (same
// export names, on @noble/* and WebCrypto) by redirecting the one import of
// ./crypto/node-crypto, as jest.config.js's 'protocol-browser-crypto' project does. The code
// uses the global Buffer, which the bundle gets from the `buffer` package (web-buffer-shim.mjs).
// Any import of a Node builtin fails the build, so a bundle that would need Node cannot be
// produced by accident (type-only imports of node:crypto are erased before resolution).
import { copyFileSync, mkdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const protocolSrc = join(root, 'libs/protocol/src');
const bufferShim = join(root, 'scripts/web-buffer-shim.mjs');
const builtins = new Set(builtinModules);

/** @type {esbuild.Plugin} */
const browserCrypto = {
  name: 'securechat-browser-crypto',
  setup(build) {
    build.onResolve({ filter: /^\.\/crypto\/node-crypto$/ }, (args) =>
      args.resolveDir === protocolSrc
        ? { path: join(protocolSrc, 'crypto/browser-crypto.ts') }
        : undefined,
    );
  },
};

/** @type {esbuild.Plugin} */
const noNodeBuiltins = {
  name: 'securechat-no-node-builtins',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.replace(/^node:/, '').split('/')[0];
      if (!args.path.startsWith('node:') && !builtins.has(name)) return undefined;
      // The shim is where the `buffer` package (not Node's) comes in.
      if (args.path === 'buffer' && args.importer === bufferShim) return undefined;
      return {
        errors: [{ text: `"${args.path}" is a Node builtin: a browser bundle cannot import it` }],
      };
    });
  },
};

/**
 * Bundles `entry` (ESM, for Chromium 120+) to `outfile`; returns esbuild's result, whose
 * `metafile.inputs` lists what went in. Rejects on any build error.
 */
export async function buildWeb({
  entry,
  outfile = join(root, 'build/web', `${basename(entry, extname(entry))}.js`),
  minify = false,
} = {}) {
  if (!entry) throw new TypeError('buildWeb: entry is required');
  return esbuild.build({
    absWorkingDir: root,
    entryPoints: [resolve(root, entry)],
    outfile: resolve(root, outfile),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    minify,
    sourcemap: 'linked',
    inject: [bufferShim],
    plugins: [browserCrypto, noNodeBuiltins],
    metafile: true,
    logLevel: 'silent',
  });
}

/** The web client's static files, copied beside its bundle. */
const APP_STATIC = ['index.html', 'style.css'];

/**
 * Builds the web client (apps/web) into `outdir`: app.js (minified, with its source map) and the
 * static files. No inline scripts or styles anywhere: the gateway serves them under a CSP that
 * allows only the origin's own files.
 */
export async function buildApp({ outdir = join(root, 'dist/web') } = {}) {
  const dir = resolve(root, outdir);
  mkdirSync(dir, { recursive: true });
  const result = await buildWeb({
    entry: 'apps/web/src/main.ts',
    outfile: join(dir, 'app.js'),
    minify: true,
  });
  for (const name of APP_STATIC) {
    copyFileSync(join(root, 'apps/web/static', name), join(dir, name));
  }
  return result;
}

if (
  process.argv[1] &&
  resolve(process.argv[1]) === fileURLToPath(import.meta.url) &&
  process.argv[2] === '--app'
) {
  const outdir = process.argv[3] ?? 'dist/web';
  try {
    const { metafile } = await buildApp({ outdir });
    for (const [file, { bytes }] of Object.entries(metafile.outputs)) {
      console.log(`${file}  ${(bytes / 1024).toFixed(1)} KiB`);
    }
    for (const name of APP_STATIC) console.log(join(outdir, name));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
} else if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args[0] === '--json';
  const [entry, outfile] = json ? args.slice(1) : args;
  if (!entry) {
    console.error('usage: node scripts/build-web.mjs [--json] <entry.ts> [outfile.js]');
    process.exit(2);
  }
  try {
    const { metafile } = await buildWeb({ entry, ...(outfile ? { outfile } : {}) });
    if (json) {
      const outputs = Object.keys(metafile.outputs).map((file) => resolve(root, file));
      console.log(JSON.stringify({ inputs: Object.keys(metafile.inputs), outputs }));
    } else {
      for (const [file, { bytes }] of Object.entries(metafile.outputs)) {
        console.log(`${file}  ${(bytes / 1024).toFixed(1)} KiB`);
      }
    }
  } catch (error) {
    // esbuild has already formatted the errors into the message.
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
