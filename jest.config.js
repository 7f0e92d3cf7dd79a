// Three tiers, one command: `npm test` runs them all (see README "Development").
//   unit  *.spec.ts      beside the code, no I/O
//   int   *.int-spec.ts  against real Postgres/Redis
//   e2e   *.e2e-spec.ts  real sockets to real processes
const fs = require('node:fs');

const swcConfig = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, 'utf8'));
delete swcConfig.$schema;
// The @noble packages ship ES modules only; Jest's module system needs them as CommonJS.
const swcEsmConfig = { ...swcConfig, jsc: { ...swcConfig.jsc, parser: { syntax: 'ecmascript' } } };

const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', swcConfig],
    '/node_modules/@noble/.+\\.js$': ['@swc/jest', swcEsmConfig],
  },
  transformIgnorePatterns: ['/node_modules/(?!@noble/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@securechat/protocol$': '<rootDir>/libs/protocol/src',
    '^@securechat/protocol/(.*)$': '<rootDir>/libs/protocol/src/$1',
    '^@securechat/core$': '<rootDir>/libs/core/src',
    '^@securechat/core/(.*)$': '<rootDir>/libs/core/src/$1',
    '^@securechat/client$': '<rootDir>/libs/client/src',
    '^@securechat/client/(.*)$': '<rootDir>/libs/client/src/$1',
    '^@securechat/admin-api$': '<rootDir>/libs/admin-api/src',
    '^@securechat/(auth|relay|gateway-tcp|admin)$': '<rootDir>/apps/$1/src',
    '^@db/(.*)$': '<rootDir>/db/$1',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};

/**
 * libs/protocol specs that run a second time, on browser-crypto.ts (project below): those whose
 * keys come from ./crypto. handshake, session and server-session specs make node:crypto
 * KeyObjects (generateKeyPairSync, createPublicKey), which browser-crypto rightly refuses.
 */
const BROWSER_CRYPTO_SPECS = [
  'vectors.spec.ts',
  'record-layer.spec.ts',
  'transcript-verifier.spec.ts',
  'transcript-view.codec.spec.ts',
  'messages/messages.spec.ts',
];

/** @type {import('jest').Config} */
module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    {
      ...shared,
      displayName: 'unit',
      // test/fuzz: the fuzz targets' corpus replay and short seeded fuzz (docs/FUZZING.md).
      // test/architecture: package manifests and import boundaries (docs/ARCHITECTURE.md).
      testMatch: [
        '<rootDir>/{apps,libs,bench}/**/*.spec.ts',
        '<rootDir>/test/{fuzz,architecture}/**/*.spec.ts',
      ],
    },
    // libs/protocol on its browser primitives (libs/protocol/src/crypto/browser-crypto.ts), as a
    // browser bundle aliases them: the known-answer vectors and the specs whose keys come from
    // ./crypto. Specs that make node:crypto KeyObjects themselves stay in 'unit' only.
    {
      ...shared,
      displayName: 'protocol-browser-crypto',
      moduleNameMapper: {
        '^\\./crypto/node-crypto$': '<rootDir>/libs/protocol/src/crypto/browser-crypto',
        ...shared.moduleNameMapper,
      },
      testMatch: BROWSER_CRYPTO_SPECS.map((spec) => `<rootDir>/libs/protocol/src/${spec}`),
    },
    { ...shared, displayName: 'int', testMatch: ['<rootDir>/{apps,libs,test}/**/*.int-spec.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/{apps,libs,test}/**/*.e2e-spec.ts'] },
  ],
};
