// Three tiers, one command: `npm test` runs them all (see README "Development").
//   unit  *.spec.ts      beside the code, no I/O
//   int   *.int-spec.ts  against real Postgres/Redis
//   e2e   *.e2e-spec.ts  real sockets to real processes
const fs = require('node:fs');

const swcConfig = JSON.parse(fs.readFileSync(`${__dirname}/.swcrc`, 'utf8'));
delete swcConfig.$schema;

const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest', swcConfig] },
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
    { ...shared, displayName: 'int', testMatch: ['<rootDir>/{apps,libs,test}/**/*.int-spec.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/{apps,libs,test}/**/*.e2e-spec.ts'] },
  ],
};
