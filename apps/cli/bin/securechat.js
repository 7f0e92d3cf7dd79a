#!/usr/bin/env node
// The `securechat` command. Installed from its package it runs the compiled dist/; in the
// repository (no dist/ beside this file) it runs the TypeScript sources through
// @swc-node/register with the repository's tsconfig (path aliases), so no build step is needed.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const compiled = join(__dirname, '..', 'dist', 'main.js');
if (existsSync(compiled)) {
  require(compiled);
} else {
  process.env.SWC_NODE_PROJECT ??= join(__dirname, '..', '..', '..', 'tsconfig.json');
  require('@swc-node/register');
  require('../src/main.ts');
}
