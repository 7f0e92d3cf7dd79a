/**
 * The client-side workspaces are published as packages (scripts/pack-client.mjs): each must
 * declare every package its code imports, and nothing from the server side — otherwise the
 * installed command fails on a path this repository's hoisted node_modules happened to hide.
 */
import { builtinModules } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { preProcessFile } from 'typescript';

import { VERSION } from '../../apps/cli/src/cli';

const ROOT = resolve(__dirname, '../..');
const WORKSPACES = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    workspaces: string[];
  }
).workspaces;

interface Manifest {
  name: string;
  version: string;
  license?: string;
  dependencies?: Record<string, string>;
  bundleDependencies?: string[];
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /(?<!\.(spec|int-spec|e2e-spec))\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** Bare specifiers of the imports, re-exports, `import()` and `require()` calls in `code`. */
export function importedPackages(code: string): string[] {
  const found = new Set<string>();
  // TypeScript's own pre-parser: strings and comments that mention a package do not count.
  for (const { fileName: specifier } of preProcessFile(code, true, true).importedFiles) {
    if (specifier.startsWith('.')) continue;
    const parts = specifier.split('/');
    found.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
  }
  return [...found];
}

const BUILTIN = new Set(builtinModules);

describe('client-side package manifests', () => {
  it('the workspaces are the client-side packages', () => {
    expect(WORKSPACES.map((dir) => manifest(dir).name).sort()).toEqual([
      '@securechat/admin-api',
      '@securechat/client',
      '@securechat/protocol',
      'securechat',
    ]);
  });

  it.each(WORKSPACES)('%s declares exactly the packages its sources import', (dir) => {
    const own = manifest(dir);
    const imported = new Set<string>();
    for (const file of sources(join(ROOT, dir, 'src'))) {
      for (const name of importedPackages(readFileSync(file, 'utf8'))) {
        if (name.startsWith('node:') || BUILTIN.has(name)) continue;
        imported.add(name);
      }
    }
    const declared = Object.keys(own.dependencies ?? {});
    // zod is declared by the command only to bundle it for its libraries.
    const bundledOnly = (own.bundleDependencies ?? []).filter((name) => !imported.has(name));
    expect([...imported].sort()).toEqual(
      declared.filter((name) => !bundledOnly.includes(name)).sort(),
    );
  });

  it.each(WORKSPACES)('%s shares the version and license of the repository', (dir) => {
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
    const own = manifest(dir);
    expect(own.version).toBe(root.version);
    expect(VERSION).toBe(root.version);
    expect(own.license).toBe('Apache-2.0');
    for (const [name, range] of Object.entries(own.dependencies ?? {})) {
      if (name.startsWith('@securechat/')) expect(range).toBe(root.version);
    }
  });

  it('the command bundles every dependency, so it installs without a registry', () => {
    const cli = manifest('apps/cli');
    expect([...(cli.bundleDependencies ?? [])].sort()).toEqual(
      Object.keys(cli.dependencies ?? {}).sort(),
    );
  });

  it('finds imports in every form the sources use', () => {
    expect(
      importedPackages(
        [
          "import { z } from 'zod';",
          "export * from '@securechat/protocol';",
          "import type { X } from '@scope/pkg/deep/path';",
          "const a = require('left-pad');",
          "import './local';",
          "import 'side-effect';",
          "const help = `run it from 'npm start'`; // from 'not-a-package'",
        ].join('\n'),
      ).sort(),
    ).toEqual(['@scope/pkg', '@securechat/protocol', 'left-pad', 'side-effect', 'zod']);
  });
});
