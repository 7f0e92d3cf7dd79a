/**
 * The import rules of docs/ARCHITECTURE.md are lint errors: this runs the repository's own
 * ESLint configuration over one import placed in a file of each part, and expects exactly the
 * forbidden ones to be reported — so weakening a rule in eslint.config.mjs fails here too.
 * ESLint runs in a child process (it is ESM and loads the type-checked project once, ~10 s).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '../..');

interface Case {
  /** An existing file of the part (the type-checked config only lints project files). */
  readonly file: string;
  readonly from: string;
  readonly allowed: boolean;
}

const CASES: Case[] = [
  { file: 'apps/relay/src/relay.module.ts', from: '@securechat/auth', allowed: false },
  { file: 'apps/relay/src/relay.module.ts', from: '@securechat/client', allowed: false },
  { file: 'apps/relay/src/relay.module.ts', from: '../../gateway-tcp/src/index', allowed: false },
  { file: 'apps/relay/src/relay.module.ts', from: '@securechat/core', allowed: true },
  // A spec may drive the client against the service, never a sibling service.
  { file: 'apps/relay/src/relay.service.spec.ts', from: '@securechat/client', allowed: true },
  { file: 'apps/relay/src/relay.service.spec.ts', from: '@securechat/auth', allowed: false },
  { file: 'apps/auth/src/auth.module.ts', from: '@securechat/relay', allowed: false },
  { file: 'apps/gateway-tcp/src/gateway.module.ts', from: '@securechat/auth', allowed: false },
  { file: 'libs/protocol/src/index.ts', from: '@securechat/core', allowed: false },
  { file: 'libs/protocol/src/index.ts', from: '@nestjs/common', allowed: false },
  { file: 'libs/protocol/src/index.ts', from: 'node:crypto', allowed: true },
  // The browser client: the protocol, and nothing of the server or of Node.
  { file: 'apps/web/src/main.ts', from: '@securechat/protocol', allowed: true },
  { file: 'apps/web/src/main.ts', from: '@securechat/client', allowed: false },
  { file: 'apps/web/src/main.ts', from: 'node:crypto', allowed: false },
  { file: 'apps/web/src/main.ts', from: 'ws', allowed: false },
  { file: 'libs/client/src/index.ts', from: '@securechat/core', allowed: false },
  { file: 'libs/client/src/index.ts', from: '../../../apps/relay/src/index', allowed: false },
  { file: 'libs/client/src/index.ts', from: '@securechat/protocol', allowed: true },
  { file: 'apps/cli/src/cli.ts', from: '@db/schema', allowed: false },
  { file: 'apps/cli/src/cli.ts', from: '@securechat/client', allowed: true },
  { file: 'libs/core/src/index.ts', from: '@securechat/relay', allowed: false },
  { file: 'apps/embedded/src/embedded.module.ts', from: '@securechat/relay', allowed: true },
  // apps/admin composes the services it administers by their entry points, and nothing else.
  { file: 'apps/admin/src/admin.module.ts', from: '@securechat/auth', allowed: true },
  { file: 'apps/admin/src/admin.module.ts', from: '@securechat/relay', allowed: true },
  { file: 'apps/admin/src/admin.module.ts', from: '@securechat/auth/auth.service', allowed: false },
  { file: 'apps/admin/src/admin.module.ts', from: '../../relay/src/relay.module', allowed: false },
  { file: 'apps/admin/src/admin.module.ts', from: '@securechat/gateway-tcp', allowed: false },
  { file: 'apps/admin/src/admin.module.ts', from: '@securechat/client', allowed: false },
  { file: 'apps/admin/src/admin-views.spec.ts', from: '@securechat/client', allowed: true },
  { file: 'apps/admin/src/admin-views.spec.ts', from: '@securechat/embedded', allowed: false },
  { file: 'apps/auth/src/auth.module.ts', from: '@securechat/admin', allowed: false },
  { file: 'apps/auth/src/main.ts', from: '@securechat/admin', allowed: true },
  { file: 'libs/admin-api/src/index.ts', from: 'zod', allowed: true },
  { file: 'libs/admin-api/src/index.ts', from: '@securechat/protocol', allowed: false },
  { file: 'libs/admin-api/src/index.ts', from: '@nestjs/common', allowed: false },
  { file: 'libs/protocol/src/index.ts', from: '@securechat/admin-api', allowed: false },
  { file: 'libs/client/src/index.ts', from: '@securechat/admin-api', allowed: true },
];

/** Lints `import * as m from '<from>'` as the content of each case's file; rule ids per case. */
function lint(cases: Case[]): string[][] {
  const script = `
    const { ESLint } = await import('eslint');
    const cases = JSON.parse(process.argv[1]);
    const eslint = new ESLint({ cwd: ${JSON.stringify(ROOT)} });
    const out = [];
    for (const c of cases) {
      const code = "import * as m from '" + c.from + "';\\nexport const x = m;\\n";
      const [result] = await eslint.lintText(code, { filePath: ${JSON.stringify(ROOT)} + '/' + c.file });
      out.push(result.messages.map((m) => m.ruleId ?? m.message));
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const stdout = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', script, JSON.stringify(cases)],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  return JSON.parse(stdout) as string[][];
}

describe('import boundaries (eslint.config.mjs)', () => {
  it('reports exactly the imports a part may not make', () => {
    const results = lint(CASES);
    const verdicts = CASES.map((c, i) => ({
      ...c,
      restricted: results[i]!.includes('no-restricted-imports'),
    }));
    expect(verdicts.filter((v) => v.restricted === v.allowed)).toEqual([]);
  });
});
