/**
 * The deployment files at the repository root agree with envSchema: .env.example documents
 * every variable the processes read, with the default they really use, and nothing else;
 * docker-compose.yml hands the SecureChat containers only variables that exist, with values
 * the schema accepts, and publishes only what is meant to be reachable.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { envSchema } from './config.schema';

// js-yaml comes with the dev tooling (eslint, @nestjs/swagger), not as a direct dependency,
// and has no type declarations here: this is the one function the test needs.
const { load: parseYaml } = createRequire(__filename)('js-yaml') as {
  load(text: string): unknown;
};

const root = join(__dirname, '..', '..', '..', '..');
const schemaKeys = Object.keys(envSchema.shape) as (keyof typeof envSchema.shape)[];

/** Read by docker compose itself (interpolation), never by a SecureChat process. */
const COMPOSE_ONLY = ['POSTGRES_PASSWORD'];
/** Required in compose: set, empty, in the example so that nobody deploys a sample secret. */
const REQUIRED = ['POSTGRES_PASSWORD', 'ADMIN_TOKEN'];
/** Interpolated in docker-compose.yml but deliberately not in .env.example (CI only). */
const CI_ONLY = ['SECURECHAT_COMPOSE_ENV_FILE'];

interface Documented {
  readonly name: string;
  readonly value: string;
  /** `# NAME=value`: documents the default; `NAME=value`: an active setting. */
  readonly commented: boolean;
}

function parseEnvExample(text: string): Documented[] {
  return text.split('\n').flatMap((line) => {
    const match = /^(# )?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    return match ? [{ name: match[2]!, value: match[3]!, commented: match[1] !== undefined }] : [];
  });
}

/** What a process uses when the variable is unset, as it would be written in an env file. */
function defaultOf(name: keyof typeof envSchema.shape): string {
  const parsed = envSchema.shape[name].safeParse(undefined);
  if (!parsed.success) throw new Error(`${name} has neither a default nor is optional`);
  return parsed.data === undefined ? '' : String(parsed.data);
}

interface ComposeService {
  image?: string;
  build?: unknown;
  environment?: Record<string, string> | string[];
  ports?: string[];
  volumes?: string[];
}

const envExampleText = readFileSync(join(root, '.env.example'), 'utf8');
const documented = parseEnvExample(envExampleText);
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const compose = parseYaml(composeText) as { services: Record<string, ComposeService> };
/** The services that run our image (built from the Dockerfile), not postgres or redis. */
const ourServices = Object.entries(compose.services).filter(([, service]) => 'build' in service);

describe('.env.example', () => {
  it('documents every variable of envSchema and the compose-only ones', () => {
    const names = new Set(documented.map((entry) => entry.name));
    const missing = [...schemaKeys, ...COMPOSE_ONLY].filter((name) => !names.has(name));
    expect(missing).toEqual([]);
  });

  it('documents nothing that no process or compose reads', () => {
    const known = new Set<string>([...schemaKeys, ...COMPOSE_ONLY]);
    expect(documented.map((entry) => entry.name).filter((name) => !known.has(name))).toEqual([]);
  });

  it('documents each variable once', () => {
    const names = documented.map((entry) => entry.name);
    expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
  });

  it('shows the default each process really uses on every commented line', () => {
    const wrong = documented
      .filter((entry) => entry.commented && entry.name in envSchema.shape)
      .map((entry) => ({
        name: entry.name,
        documented: entry.value,
        actual: defaultOf(entry.name as keyof typeof envSchema.shape),
      }))
      .filter((entry) => entry.documented !== entry.actual);
    expect(wrong).toEqual([]);
  });

  it('sets only the required secrets, and leaves them empty', () => {
    const active = documented.filter((entry) => !entry.commented);
    expect(active.map((entry) => entry.name).sort()).toEqual([...REQUIRED].sort());
    expect(active.filter((entry) => entry.value !== '')).toEqual([]);
  });
});

describe('docker-compose.yml', () => {
  it('runs auth, relay, two gateways and the migration from our image', () => {
    expect(ourServices.map(([name]) => name).sort()).toEqual(
      ['auth', 'gateway-1', 'gateway-2', 'migrate', 'relay'].sort(),
    );
  });

  it.each(ourServices)('%s is given only variables envSchema knows', (_name, service) => {
    expect(Array.isArray(service.environment)).toBe(false);
    const known = new Set<string>(schemaKeys);
    const names = Object.keys(service.environment ?? {});
    expect(names.filter((name) => !known.has(name))).toEqual([]);
  });

  it.each(ourServices)('%s is given values envSchema accepts', (_name, service) => {
    const rejected = Object.entries(service.environment ?? {})
      // Interpolated values are checked where they come from (.env), not here.
      .filter(([, value]) => !String(value).includes('${'))
      .filter(([name]) => name in envSchema.shape)
      .filter(([name, value]) => {
        const field = envSchema.shape[name as keyof typeof envSchema.shape];
        return !field.safeParse(String(value)).success;
      });
    expect(rejected).toEqual([]);
  });

  it('interpolates only variables documented in .env.example', () => {
    const interpolated = [...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map(
      (match) => match[1]!,
    );
    const names = new Set(documented.map((entry) => entry.name));
    expect(interpolated.length).toBeGreaterThan(0);
    expect(interpolated.filter((name) => !names.has(name) && !CI_ONLY.includes(name))).toEqual([]);
  });

  it('publishes the gateways, and the admin API on the host loopback only', () => {
    const published = Object.fromEntries(
      Object.entries(compose.services)
        .filter(([, service]) => service.ports !== undefined)
        .map(([name, service]) => [name, service.ports]),
    );
    expect(published).toEqual({
      auth: ['127.0.0.1:8080:8080'],
      'gateway-1': ['7777:7777'],
      'gateway-2': ['7778:7777'],
    });
  });

  it('gives every gateway the same identity key on the shared volume', () => {
    const gateways = ourServices.filter(([name]) => name.startsWith('gateway-'));
    const keys = gateways.map(([, service]) => {
      const environment = service.environment as Record<string, string>;
      return environment.SECURECHAT_IDENTITY_KEY;
    });
    expect(gateways).toHaveLength(2);
    expect(new Set(keys)).toEqual(new Set(['/var/lib/securechat/identity/server-identity.pem']));
    for (const [, service] of gateways) {
      expect(service.volumes).toContain('identity:/var/lib/securechat/identity');
    }
  });
});

describe('README configuration table', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const tableVariables = new Set(
    [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)`\s*\|/gm)].map((match) => match[1]),
  );

  it('has a row for every variable of envSchema', () => {
    expect(schemaKeys.filter((key) => !tableVariables.has(key))).toEqual([]);
  });

  it('has no row for a variable that does not exist', () => {
    const known = new Set<string>(schemaKeys);
    expect([...tableVariables].filter((name) => !known.has(name as string))).toEqual([]);
  });
});
