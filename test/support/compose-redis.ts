/**
 * docker-compose.yml's Redis, for tests that run the real thing locally: the ACL users of its
 * `redis` service, interpolated the way docker compose would, with the test's passwords and
 * key prefix.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

// js-yaml comes with the dev tooling and has no type declarations here (as in
// deployment-files.spec.ts).
const { load: parseYaml } = createRequire(__filename)('js-yaml') as {
  load(text: string): unknown;
};

export const COMPOSE_FILE = join(__dirname, '..', '..', 'docker-compose.yml');

/** The services that talk to Redis, each with an ACL user of its own in the compose file. */
export const REDIS_ROLES = ['auth', 'relay', 'gateway'] as const;
export type RedisRole = (typeof REDIS_ROLES)[number];

/** `${NAME}`, `${NAME:-default}` and `${NAME:?error}` as docker compose reads them. */
export function interpolate(text: string, variables: Record<string, string>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}/g,
    (_match, name: string, kind: string | undefined, rest: string | undefined) => {
      const value = variables[name];
      if (value !== undefined && value !== '') return value;
      if (kind === '?') throw new Error(`compose would refuse: ${rest ?? name}`);
      return kind === '-' ? (rest ?? '') : '';
    },
  );
}

/** The compose file's `redis` command, as written (not interpolated). */
export function composeRedisCommand(): string[] {
  const compose = parseYaml(readFileSync(COMPOSE_FILE, 'utf8')) as {
    services: { redis: { command: string[] } };
  };
  return compose.services.redis.command;
}

/**
 * The redis-server arguments that define the ACL users (everything from the first `--user`),
 * interpolated with these passwords and prefix.
 */
export function composeRedisUserArgs(
  passwords: Record<RedisRole, string>,
  prefix: string,
): string[] {
  const command = composeRedisCommand();
  const first = command.indexOf('--user');
  if (first < 0) throw new Error('docker-compose.yml defines no Redis ACL user');
  const variables = {
    SECURECHAT_REDIS_PREFIX: prefix,
    REDIS_AUTH_PASSWORD: passwords.auth,
    REDIS_RELAY_PASSWORD: passwords.relay,
    REDIS_GATEWAY_PASSWORD: passwords.gateway,
  };
  return command.slice(first).map((arg) => interpolate(arg, variables));
}
