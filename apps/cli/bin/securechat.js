#!/usr/bin/env node
// The `securechat` command: runs the TypeScript sources through @swc-node/register with the
// repository's tsconfig (path aliases), so it works from a checkout without a build step.
'use strict';
const { join } = require('node:path');

process.env.SWC_NODE_PROJECT ??= join(__dirname, '..', '..', '..', 'tsconfig.json');
require('@swc-node/register');
require('../src/main.ts');
