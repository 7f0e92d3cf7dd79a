/**
 * The distributed deployment as real processes: auth, relay and gateway instances on a fresh
 * PostgreSQL database and an isolated Redis key prefix, sharing one identity key file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from 'pg';
import Redis from 'ioredis';

import { deleteKeysWithPrefix } from '../../libs/core/test/redis-test-keys';
import { spawnService, type ServiceProcess } from './service-process';
import { TcpProxy } from './tcp-proxy';

export const TEST_DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const ENTRIES = {
  auth: 'apps/auth/src/main.ts',
  relay: 'apps/relay/src/main.ts',
  gateway: 'apps/gateway-tcp/src/main.ts',
} as const;

export type ServiceKind = keyof typeof ENTRIES;

export interface ClusterOptions {
  readonly auth?: number;
  readonly relay?: number;
  readonly gateway?: number;
  readonly env?: Record<string, string>;
  /** Another Redis (fault tests run their own). */
  readonly redisUrl?: string;
  /** A Redis URL per kind of process (its own ACL user), instead of `redisUrl`. */
  readonly redisUrls?: Partial<Record<ServiceKind, string>>;
  /** Reach PostgreSQL through a proxy the test can cut (`cluster.databaseProxy`). */
  readonly proxyDatabase?: boolean;
}

export class Cluster {
  readonly processes: ServiceProcess[] = [];
  private counter = 0;

  private constructor(
    readonly env: Record<string, string>,
    private readonly dataDir: string,
    private readonly databaseName: string,
    readonly databaseProxy?: TcpProxy,
    private readonly redisUrls: Partial<Record<ServiceKind, string>> = {},
  ) {}

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const databaseName = `securechat_e2e_${randomBytes(5).toString('hex')}`;
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${databaseName}`;
    const directUrl = url.toString();
    let proxy: TcpProxy | undefined;
    if (options.proxyDatabase) {
      proxy = await TcpProxy.start(url.hostname, Number(url.port || 5432));
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
    }
    const dataDir = mkdtempSync(join(tmpdir(), 'securechat-cluster-'));
    const cluster = new Cluster(
      {
        DATABASE_URL: url.toString(),
        DATABASE_POOL_SIZE: '5',
        REDIS_URL: options.redisUrl ?? TEST_REDIS_URL,
        SECURECHAT_REDIS_PREFIX: `sct${randomBytes(4).toString('hex')}:`,
        SECURECHAT_IDENTITY_KEY: join(dataDir, 'server-identity.pem'),
        // Gateways publish the identity's public key; auth gets only that (see kindEnv).
        SECURECHAT_IDENTITY_PUBLIC_KEY: join(dataDir, 'server-identity.pub.pem'),
        SECURECHAT_HOST: '127.0.0.1',
        SECURECHAT_PORT: '0',
        SECURECHAT_DATA_DIR: dataDir,
        // Each process's ops endpoints on a free port: ServiceProcess.opsPort.
        SECURECHAT_OPS_PORT: '0',
        // Auth processes serve the admin API (ready line: admin_port) and need a token.
        SECURECHAT_ADMIN_PORT: '0',
        ADMIN_TOKEN: randomBytes(32).toString('base64url'),
        ...options.env,
      },
      dataDir,
      databaseName,
      proxy,
      options.redisUrls,
    );
    cluster.directDatabaseUrl = directUrl;
    // Services first (they create the consumer groups), then gateways.
    await Promise.all([
      ...Array.from({ length: options.auth ?? 1 }, () => cluster.add('auth')),
      ...Array.from({ length: options.relay ?? 1 }, () => cluster.add('relay')),
    ]);
    for (let i = 0; i < (options.gateway ?? 1); i++) await cluster.add('gateway');
    return cluster;
  }

  /**
   * What a process of `kind` is given, as docker-compose.yml gives it: a gateway no database
   * URL and no admin token (it needs neither), auth the identity's public key only.
   */
  private kindEnv(kind: ServiceKind): Record<string, string> {
    const {
      DATABASE_URL: databaseUrl,
      DATABASE_POOL_SIZE: poolSize,
      ADMIN_TOKEN: adminToken,
      ...rest
    } = this.env;
    const redisUrl = this.redisUrls[kind] ?? this.env.REDIS_URL!;
    if (kind === 'gateway') return { ...rest, REDIS_URL: redisUrl };
    const withDatabase = {
      ...rest,
      REDIS_URL: redisUrl,
      DATABASE_URL: databaseUrl!,
      DATABASE_POOL_SIZE: poolSize!,
    };
    if (kind === 'relay') return withDatabase;
    return {
      ...withDatabase,
      ADMIN_TOKEN: adminToken!,
      SECURECHAT_IDENTITY_KEY: this.env.SECURECHAT_IDENTITY_PUBLIC_KEY!,
    };
  }

  /** Starts one more instance of `kind`. */
  async add(kind: ServiceKind, env: Record<string, string> = {}): Promise<ServiceProcess> {
    const name = `${kind}-${++this.counter}`;
    const process = await spawnService(name, ENTRIES[kind], {
      ...this.kindEnv(kind),
      SECURECHAT_GATEWAY_ID: name,
      ...env,
    });
    this.processes.push(process);
    return process;
  }

  of(kind: ServiceKind): ServiceProcess[] {
    return this.processes.filter(
      (p) =>
        p.name.startsWith(`${kind}-`) && p.child.exitCode === null && p.child.signalCode === null,
    );
  }

  get gateways(): {
    port: number;
    fingerprint: string;
    opsPort: number;
    process: ServiceProcess;
  }[] {
    return this.of('gateway').map((process) => ({
      port: process.ready.port as number,
      fingerprint: process.ready.fingerprint as string,
      opsPort: process.opsPort,
      process,
    }));
  }

  /** The database without the proxy, for the test's own checks. */
  directDatabaseUrl = '';

  get databaseUrl(): string {
    return this.directDatabaseUrl;
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
    await this.databaseProxy?.close();
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${this.databaseName} WITH (FORCE)`);
    await admin.end();
    const redis = new Redis(this.env.REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await deleteKeysWithPrefix(redis, this.env.SECURECHAT_REDIS_PREFIX!);
    } catch {
      // a fault test may have stopped its Redis already
    } finally {
      redis.disconnect();
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
