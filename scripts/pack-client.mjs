#!/usr/bin/env node
// `npm run pack:client`: builds the client side into installable npm packages —
// @securechat/protocol (libs/protocol), @securechat/admin-api (libs/admin-api),
// @securechat/client (libs/client) and securechat (apps/cli, the command) — and packs each
// with `npm pack` into build/packages/ (or --out DIR).
//
// Each package is staged in its own directory from its package.json in the source tree, its
// sources compiled by swc (the options the tests use, .swcrc) WITHOUT the path aliases, so
// `@securechat/protocol` stays a package import, and TypeScript declarations emitted by tsc for
// the libraries. The securechat package bundles (npm `bundleDependencies`) the three libraries
// and zod, its one third-party dependency: `npm install -g ./securechat-<version>.tgz` then
// needs neither the repository nor the registry. npm does not bundle workspace links (they are
// symlinks), which is why the staging copies real directories.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { compileFile, productionSources, readSwcrc } from './swc-compile.mjs';

const HELP = `Usage: node scripts/pack-client.mjs [--out DIR]

Builds and packs the client packages into DIR (default build/packages):
  securechat-<version>.tgz             the securechat command (bundles the three below and zod)
  securechat-protocol-<version>.tgz    @securechat/protocol
  securechat-admin-api-<version>.tgz   @securechat/admin-api
  securechat-client-<version>.tgz      @securechat/client
Install the command anywhere with: npm install -g ./securechat-<version>.tgz`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let values;
try {
  ({ values } = parseArgs({
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  }));
} catch (error) {
  console.error(`pack-client: ${error.message}\n\n${HELP}`);
  process.exit(2);
}
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const out = resolve(values.out ?? join(root, 'build', 'packages'));
const stage = join(out, 'stage');

/** The packages, in build order; `dir` is the workspace, `src` what gets compiled. */
const PACKAGES = [
  { dir: 'libs/protocol', types: true },
  { dir: 'libs/admin-api', types: true },
  { dir: 'libs/client', types: true },
  { dir: 'apps/cli', types: false, bin: true },
];
/** Third-party packages the securechat package carries inside itself. */
const BUNDLED_THIRD_PARTY = ['zod'];

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

const swcrc = readSwcrc(root);

async function compile(srcDir, distDir) {
  const files = productionSources(srcDir);
  for (const file of files) {
    const target = join(distDir, relative(srcDir, file)).replace(/\.ts$/, '.js');
    await compileFile(swcrc, file, target);
  }
  return files.length;
}

/**
 * Declarations for one library, resolving the packages it depends on to their staged
 * declarations (so the emitted `.d.ts` keep `@securechat/…` imports, as users will resolve them).
 */
function declarations(srcDir, distDir, staged) {
  const base = readJson(join(root, 'tsconfig.json')).compilerOptions;
  const paths = Object.fromEntries(
    Object.entries(staged).map(([name, dir]) => [name, [join(dir, 'dist', 'index.d.ts')]]),
  );
  const config = {
    compilerOptions: {
      ...base,
      types: ['node'],
      // The config is written into the staging directory: type roots must point home.
      typeRoots: [join(root, 'node_modules/@types')],
      baseUrl: root,
      paths,
      rootDir: srcDir,
      outDir: distDir,
      declaration: true,
      emitDeclarationOnly: true,
      sourceMap: false,
      noEmit: false,
    },
    include: [join(srcDir, '**/*.ts')],
    exclude: ['spec', 'int-spec', 'e2e-spec'].map((tier) => join(srcDir, `**/*.${tier}.ts`)),
  };
  const configPath = join(stage, `tsconfig.${relative(root, srcDir).replaceAll('/', '-')}.json`);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', configPath],
    {
      stdio: 'inherit',
    },
  );
}

const started = Date.now();
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

const staged = {};
const tarballs = [];
for (const pkg of PACKAGES) {
  const manifest = readJson(join(root, pkg.dir, 'package.json'));
  const dir = join(stage, manifest.name.replace(/^@/, '').replace('/', '-'));
  const srcDir = join(root, pkg.dir, 'src');
  const count = await compile(srcDir, join(dir, 'dist'));
  if (pkg.types) declarations(srcDir, join(dir, 'dist'), staged);
  if (pkg.bin) cpSync(join(root, pkg.dir, 'bin'), join(dir, 'bin'), { recursive: true });
  copyFileSync(join(root, 'LICENSE'), join(dir, 'LICENSE'));
  copyFileSync(join(root, pkg.dir, 'README.md'), join(dir, 'README.md'));
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  for (const name of manifest.bundleDependencies ?? []) {
    const from = staged[name] ?? join(root, 'node_modules', name);
    if (!staged[name] && !BUNDLED_THIRD_PARTY.includes(name)) {
      throw new Error(`${manifest.name} bundles ${name}, which is neither staged nor allowed`);
    }
    cpSync(from, join(dir, 'node_modules', name), { recursive: true, dereference: true });
  }
  staged[manifest.name] = dir;

  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  )[0];
  tarballs.push(packed);
  console.error(
    `packed ${packed.filename}: ${count} source files, ${packed.entryCount} entries, ` +
      `${(packed.size / 1e6).toFixed(2)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked`,
  );
}
rmSync(stage, { recursive: true, force: true });
console.error(
  `pack-client: ${tarballs.length} packages in ${relative(process.cwd(), out) || '.'} in ${Date.now() - started} ms`,
);
for (const packed of tarballs) console.log(join(out, packed.filename));
