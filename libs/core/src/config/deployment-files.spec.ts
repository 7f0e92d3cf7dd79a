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
const REDIS_PASSWORDS = ['REDIS_AUTH_PASSWORD', 'REDIS_RELAY_PASSWORD', 'REDIS_GATEWAY_PASSWORD'];
const COMPOSE_ONLY = ['POSTGRES_PASSWORD', ...REDIS_PASSWORDS];
/** Required in compose: set, empty, in the example so that nobody deploys a sample secret. */
const REQUIRED = ['POSTGRES_PASSWORD', 'ADMIN_TOKEN', ...REDIS_PASSWORDS];
/** Interpolated in docker-compose.yml but deliberately not in .env.example (CI only). */
const CI_ONLY: string[] = [];
/** Secrets, and the variables that carry one (a URL with a password in it). */
const SECRETS = ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_URL', ...COMPOSE_ONLY];
/** Set by docker-compose.yml per service (or by the image): where things are, not how they behave. */
const TOPOLOGY = [
  'SECURECHAT_HOST',
  'SECURECHAT_PORT',
  'SECURECHAT_WS_PORT',
  'SECURECHAT_WS_HOST',
  'SECURECHAT_WEB_DIR',
  'SECURECHAT_DATA_DIR',
  'SECURECHAT_IDENTITY_KEY',
  'SECURECHAT_IDENTITY_PUBLIC_KEY',
  'SECURECHAT_LOGIN_SEAL_KEY',
  'SECURECHAT_LOGIN_SEAL_PUBLIC_KEY',
  'SECURECHAT_GATEWAY_ID',
  'SECURECHAT_ADMIN_HOST',
  'SECURECHAT_ADMIN_PORT',
  'SECURECHAT_OPS_HOST',
  'SECURECHAT_OPS_PORT',
];

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
  env_file?: unknown;
  command?: string[];
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
const gateways = ourServices.filter(([name]) => name.startsWith('gateway-'));

function environmentOf(name: string): Record<string, string> {
  return (compose.services[name]?.environment ?? {}) as Record<string, string>;
}

/** The names of the variables a value of `service`'s environment interpolates. */
function interpolatedBy(name: string): Set<string> {
  const values = Object.values(environmentOf(name)).map(String).join('\n');
  return new Set([...values.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
}

/** `volume:/path[:mode]` → { volume, path, readOnly }. */
function mountsOf(name: string): { volume: string; path: string; readOnly: boolean }[] {
  return (compose.services[name]?.volumes ?? []).map((spec) => {
    const [volume, path, mode] = spec.split(':');
    return { volume: volume!, path: path!, readOnly: mode === 'ro' };
  });
}

/** The mount a file path lies on in `service`, if any. */
function mountFor(name: string, file: string) {
  return mountsOf(name).find((mount) => file.startsWith(`${mount.path}/`));
}

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

  it('publishes the gateways, and the admin API and the browser ports on the host loopback only', () => {
    const published = Object.fromEntries(
      Object.entries(compose.services)
        .filter(([, service]) => service.ports !== undefined)
        .map(([name, service]) => [name, service.ports]),
    );
    expect(published).toEqual({
      auth: ['127.0.0.1:8080:8080'],
      'gateway-1': ['7777:7777', '127.0.0.1:7780:7780'],
      'gateway-2': ['7778:7777', '127.0.0.1:7781:7780'],
    });
  });

  it('gives every gateway the same identity key on the shared volume', () => {
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

describe('docker-compose.yml: each container holds only its own secrets', () => {
  it('hands no service an env_file (it would give every container every secret in .env)', () => {
    expect(
      Object.entries(compose.services)
        .filter(([, service]) => service.env_file !== undefined)
        .map(([name]) => name),
    ).toEqual([]);
  });

  it.each(gateways)(
    '%s gets no database URL or password, no admin token, no other Redis password',
    (name) => {
      const environment = environmentOf(name);
      for (const secret of ['DATABASE_URL', 'ADMIN_TOKEN', 'POSTGRES_PASSWORD']) {
        expect(Object.keys(environment)).not.toContain(secret);
      }
      expect([...interpolatedBy(name)].filter((v) => SECRETS.includes(v))).toEqual([
        'REDIS_GATEWAY_PASSWORD',
      ]);
    },
  );

  it('gives ADMIN_TOKEN to auth only, and the database password to what uses the database', () => {
    const holders = (variable: string) =>
      ourServices.filter(([name]) => interpolatedBy(name).has(variable)).map(([name]) => name);
    expect(holders('ADMIN_TOKEN')).toEqual(['auth']);
    expect(holders('POSTGRES_PASSWORD').sort()).toEqual(['auth', 'migrate', 'relay']);
    expect(
      ourServices.filter(([name]) => 'DATABASE_URL' in environmentOf(name)).map(([n]) => n),
    ).toEqual(['migrate', 'auth', 'relay']);
  });

  it('gives each service that uses Redis a user and password of its own', () => {
    const users = Object.fromEntries(
      ourServices
        .filter(([name]) => 'REDIS_URL' in environmentOf(name))
        .map(([name]) => [name, environmentOf(name).REDIS_URL]),
    );
    expect(users).toEqual({
      auth: 'redis://auth:${REDIS_AUTH_PASSWORD:?set REDIS_AUTH_PASSWORD in .env}@redis:6379',
      relay: 'redis://relay:${REDIS_RELAY_PASSWORD:?set REDIS_RELAY_PASSWORD in .env}@redis:6379',
      'gateway-1':
        'redis://gateway:${REDIS_GATEWAY_PASSWORD:?set REDIS_GATEWAY_PASSWORD in .env}@redis:6379',
      'gateway-2':
        'redis://gateway:${REDIS_GATEWAY_PASSWORD:?set REDIS_GATEWAY_PASSWORD in .env}@redis:6379',
    });
  });

  it('mounts the identity private key into the gateways only; auth reads the public key', () => {
    const auth = environmentOf('auth').SECURECHAT_IDENTITY_KEY!;
    const privateVolumes = new Set(
      gateways.map(
        ([name]) => mountFor(name, environmentOf(name).SECURECHAT_IDENTITY_KEY!)!.volume,
      ),
    );
    expect(privateVolumes.size).toBe(1);
    for (const [name] of ourServices.filter(([n]) => !n.startsWith('gateway-'))) {
      expect(mountsOf(name).map((mount) => mount.volume)).not.toContain([...privateVolumes][0]);
    }
    // Auth's SECURECHAT_IDENTITY_KEY is the public key the gateways write, on a volume it
    // can only read.
    for (const [name] of gateways) {
      expect(environmentOf(name).SECURECHAT_IDENTITY_PUBLIC_KEY).toBe(auth);
      expect(mountFor(name, auth)?.readOnly).toBe(false);
    }
    expect(auth).toMatch(/\.pub\.pem$/);
    expect(mountFor('auth', auth)).toMatchObject({ readOnly: true });
    expect(mountFor('auth', auth)!.volume).not.toBe([...privateVolumes][0]);
  });

  it('keeps the login-seal private key in auth; gateways read its public key', () => {
    const auth = environmentOf('auth');
    const privateVolume = mountFor('auth', auth.SECURECHAT_LOGIN_SEAL_KEY!);
    const publicVolume = mountFor('auth', auth.SECURECHAT_LOGIN_SEAL_PUBLIC_KEY!);
    expect(privateVolume).toMatchObject({ readOnly: false });
    expect(publicVolume).toMatchObject({ readOnly: false });
    expect(publicVolume!.volume).not.toBe(privateVolume!.volume);
    for (const [name] of ourServices.filter(([n]) => n !== 'auth')) {
      expect(mountsOf(name).map((mount) => mount.volume)).not.toContain(privateVolume!.volume);
      expect(Object.keys(environmentOf(name))).not.toContain('SECURECHAT_LOGIN_SEAL_KEY');
    }
    for (const [name] of gateways) {
      const path = environmentOf(name).SECURECHAT_LOGIN_SEAL_PUBLIC_KEY!;
      expect(path).toBe(auth.SECURECHAT_LOGIN_SEAL_PUBLIC_KEY);
      expect(mountFor(name, path)).toEqual({ ...publicVolume, readOnly: true });
    }
  });

  it.each(ourServices)('%s gets every setting that is no secret, as .env has it', (name) => {
    const environment = environmentOf(name);
    const settings = schemaKeys.filter((key) => !SECRETS.includes(key) && !TOPOLOGY.includes(key));
    expect(settings.filter((key) => environment[key] !== `\${${key}:-}`)).toEqual([]);
  });

  describe('Redis', () => {
    const command = compose.services.redis!.command!;
    /** The ACL rules of one user: the arguments after `--user NAME` up to the next option. */
    function rulesOf(user: string): string[] {
      const start = command.findIndex((arg, i) => arg === user && command[i - 1] === '--user');
      if (start < 0) return [];
      const end = command.findIndex((arg, i) => i > start && arg.startsWith('--'));
      return command.slice(start + 1, end < 0 ? undefined : end);
    }
    const PREFIX = '${SECURECHAT_REDIS_PREFIX:-sc:}';

    it('keeps the append-only file, and turns the default user off', () => {
      expect(command.slice(0, 3)).toEqual(['redis-server', '--appendonly', 'yes']);
      expect(rulesOf('default')).toEqual(['off', 'resetkeys', 'resetchannels', '-@all']);
    });

    it.each(['auth', 'relay', 'gateway'])(
      'has a user %s with its password, its own keys and channels, and a command list',
      (user) => {
        const rules = rulesOf(user);
        const password = `REDIS_${user.toUpperCase()}_PASSWORD`;
        expect(rules.slice(0, 4)).toEqual([
          'on',
          `>\${${password}:?set ${password} in .env}`,
          'resetkeys',
          'resetchannels',
        ]);
        const patterns = rules.filter((rule) => /^(%R|%W|%RW)?[~&]/.test(rule));
        expect(patterns.length).toBeGreaterThan(0);
        expect(
          patterns.filter((rule) => !rule.replace(/^%\w+/, '').slice(1).startsWith(PREFIX)),
        ).toEqual([]);
        expect(rules).toContain('-@all');
        expect(
          rules.filter((rule) => /^(\+@all|allkeys|allchannels|allcommands|nopass)$/.test(rule)),
        ).toEqual([]);
      },
    );

    it('gives the gateway no PUBLISH: it cannot forge a reply, a delivery or an order', () => {
      expect(rulesOf('gateway')).not.toContain('+publish');
      expect(rulesOf('gateway')).not.toContain('+@pubsub');
    });

    it('lets the healthcheck user PING and nothing else', () => {
      expect(rulesOf('healthcheck')).toEqual([
        'on',
        'nopass',
        'resetkeys',
        'resetchannels',
        '-@all',
        '+ping',
      ]);
    });
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
