import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The boundaries of docs/ARCHITECTURE.md, one `no-restricted-imports` block per part. A part may
 * import: libs/protocol nothing of ours; libs/client and apps/cli the protocol and the client;
 * libs/core the protocol and the schema; libs/admin-api zod alone; a service (auth, relay,
 * gateway-tcp) the libs and the schema, never a sibling; apps/admin as a service, plus the entry
 * points of auth and relay (it administers them); apps/web (the browser client, bundled by
 * scripts/build-web.mjs) libs/protocol and its own files, and no Node builtin; only the
 * composition roots (apps/embedded and each process's main.ts) put apps together. Relative
 * paths that climb into another part count as imports of it.
 */
const APPS = ['auth', 'relay', 'gateway-tcp', 'admin', 'embedded'];
const part = (dir, name) => [
  `@securechat/${name}`,
  `@securechat/${name}/*`,
  `**/${dir}/${name}/**`,
  `**/${name}/src/**`,
];
const app = (name) => part('apps', name);
const lib = (name) => part('libs', name);
const SERVER_SIDE = ['@db/*', '**/db/*', '@nestjs/*', 'pg', 'ioredis', '@electric-sql/*'];
function boundary(files, forbidden, why, ignores = []) {
  return {
    files,
    ignores,
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message: why }] }],
    },
  };
}
const otherApps = (own) => APPS.filter((name) => name !== own).flatMap(app);
/** What apps/admin may not import: the deep paths of auth and relay, the other apps whole. */
const ADMIN_FORBIDDEN = [
  ...['auth', 'relay'].flatMap((name) => app(name).filter((p) => p !== `@securechat/${name}`)),
  ...['gateway-tcp', 'embedded'].flatMap(app),
];
const boundaries = [
  boundary(
    ['apps/web/**/*.ts'],
    [
      ...APPS.flatMap(app),
      ...['core', 'client', 'admin-api'].flatMap(lib),
      ...['cli'].flatMap(app),
      ...SERVER_SIDE,
      'node:*',
      'ws',
    ],
    'apps/web runs in a browser: it imports @securechat/protocol and its own files only (no other part, no Node builtin).',
  ),
  boundary(
    ['libs/protocol/**/*.ts'],
    [...APPS.flatMap(app), ...['core', 'client', 'admin-api'].flatMap(lib), ...SERVER_SIDE],
    'libs/protocol is the protocol alone: no other part of SecureChat, no framework, no I/O.',
  ),
  boundary(
    ['libs/client/**/*.ts', 'apps/cli/**/*.ts'],
    [...APPS.flatMap(app), ...lib('core'), ...SERVER_SIDE],
    'The client side ships on its own (npm run pack:client): it imports only libs/protocol, libs/admin-api and libs/client.',
  ),
  boundary(
    ['libs/core/**/*.ts'],
    [...APPS.flatMap(app), ...lib('client')],
    'libs/core serves the apps; it never imports one, nor the client.',
  ),
  boundary(
    ['libs/admin-api/**/*.ts'],
    [...APPS.flatMap(app), ...['protocol', 'core', 'client'].flatMap(lib), ...SERVER_SIDE],
    "libs/admin-api is the admin API's response schemas alone: zod, no other part of SecureChat, no framework.",
  ),
  ...['auth', 'relay', 'gateway-tcp'].flatMap((name) => [
    boundary(
      [`apps/${name}/**/*.ts`],
      [...otherApps(name), ...lib('client')],
      `apps/${name} does not import a sibling app or the client: only composition roots (apps/embedded, main.ts) combine apps.`,
      [`apps/${name}/src/main.ts`],
    ),
    // Specs may run the client against the service (e.g. its own transcript log against the
    // relay's export); they still may not reach into a sibling service.
    boundary(
      [`apps/${name}/**/*.{spec,int-spec,e2e-spec}.ts`],
      otherApps(name),
      `apps/${name} does not import a sibling app, not even in a spec.`,
    ),
  ]),
  // apps/admin administers auth and relay, so it composes them, through their entry points
  // only (what index.ts exports is what they offer it); the gateway and the client are not its.
  ...[
    [['apps/admin/**/*.ts'], [...ADMIN_FORBIDDEN, ...lib('client')]],
    [['apps/admin/**/*.{spec,int-spec,e2e-spec}.ts'], ADMIN_FORBIDDEN],
  ].map(([files, forbidden]) =>
    boundary(
      files,
      forbidden,
      'apps/admin imports auth and relay by their entry points (@securechat/auth, @securechat/relay) only, and neither the gateway nor the client (specs may use the client).',
    ),
  ),
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist.next.*/**',
      'dist.old.*/**',
      'build/**',
      'node_modules/**',
      'coverage/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts', '**/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The web client runs in a browser (its bundle gets Buffer from scripts/web-buffer-shim.mjs).
    files: ['apps/web/**/*.ts'],
    languageOptions: { globals: { ...globals.browser, Buffer: 'readonly' } },
  },
  ...boundaries,
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
