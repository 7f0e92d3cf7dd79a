/**
 * The deployments `npm run bench` measures, as real processes on loopback: the embedded
 * server, the distributed one (auth + relay + two gateways on a fresh PostgreSQL database and
 * Redis prefix, reusing test/support), and the TLS baseline. Each can be started under a CPU
 * profiler (bench/support/cpu-profile-hook.js; written when the process exits on SIGTERM), and
 * the SecureChat ones from another checkout of the repository (`serverRoot`, e.g. a git worktree
 * of an older commit with node_modules linked in): its own test/support starts its own apps/.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Cluster } from '../test/support/distributed-cluster';
import { removeDataDir, startEmbeddedServer } from '../test/support/embedded-server';
import { type ServiceProcess, spawnService } from '../test/support/service-process';
import { type Target } from './load-client';

export type SetupName =
  | 'embedded'
  | 'distributed-full'
  | 'distributed-digest'
  | 'tls-baseline'
  | 'embedded-argon2'
  | 'distributed-argon2';

export const SETUP_LABELS: Record<SetupName, string> = {
  embedded: 'embedded',
  'distributed-full': 'distributed, TRANSCRIPTS=full',
  'distributed-digest': 'distributed, TRANSCRIPTS=digest',
  'tls-baseline': 'TLS 1.3 baseline',
  'embedded-argon2': 'embedded, argon2id',
  'distributed-argon2': 'distributed (full), argon2id',
};

export interface RunningSetup {
  readonly name: SetupName;
  readonly protocol: 'securechat' | 'tls';
  readonly targets: readonly Target[];
  /** The process holding the sessions of targets[0] (embedded: the server; else gateway-1). */
  readonly gatewayPid: number;
  /** Every process of the setup, by role, for CPU accounting. */
  readonly pids: Readonly<Record<string, number>>;
  readonly caFile?: string;
  stop(): Promise<void>;
}

const PROFILE_HOOK = join(__dirname, 'support/cpu-profile-hook.js');

/** Production defaults except what a benchmark on one machine needs. */
function baseEnv(fastHash: boolean, cpuProfDir?: string): Record<string, string> {
  return {
    ALLOW_REGISTRATION: 'true',
    SECURECHAT_INSECURE_FAST_HASH: String(fastHash),
    // Other helpers' services may hold the default admin/ops ports.
    SECURECHAT_ADMIN_PORT: '0',
    SECURECHAT_WS_PORT: '0',
    ADMIN_TOKEN: randomBytes(24).toString('hex'),
    SECURECHAT_OPS_PORT: '0',
    SECURECHAT_LOG_LEVEL: 'warn',
    // One load generator dials from one address: allow the 10,000 idle sessions to connect…
    SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: '4096',
    SECURECHAT_MAX_HANDSHAKES_PER_56: '4096',
    SECURECHAT_MAX_HANDSHAKES_PER_48: '4096',
    // …as fast as it dials them (the handshake workload reconnects hundreds of times a second;
    // servers from before this admission rate ignore the two variables)…
    SECURECHAT_ACCEPT_RATE_PER_ADDRESS: '1000000',
    SECURECHAT_ACCEPT_BURST_PER_ADDRESS: '1000000',
    // …and register that many accounts: each registration spends the address's budget.
    THROTTLE_ADDRESS_FAILURES: '1000000',
    // A sender with 32 in flight goes far past a chat user's sending quota (100/s): raised out
    // of reach but left on, so that its cost (one Redis script per run of sends) is measured
    // (servers from before quotas ignore these).
    SECURECHAT_SEND_RATE: '1000000',
    SECURECHAT_SEND_BURST: '10000000',
    SECURECHAT_SEND_BYTES_PER_DAY: String(Number.MAX_SAFE_INTEGER),
    ...(cpuProfDir === undefined
      ? {}
      : { NODE_OPTIONS: `--require ${PROFILE_HOOK}`, BENCH_CPU_PROF_DIR: cpuProfDir }),
  };
}

const ROOT = resolve(__dirname, '..');

interface ServerSupport {
  readonly Cluster: typeof Cluster;
  readonly startEmbeddedServer: typeof startEmbeddedServer;
  readonly removeDataDir: typeof removeDataDir;
}

/**
 * The test/support helpers of `serverRoot` (they start the apps of the tree they are in), or
 * this tree's. Another tree's helpers must offer the same functions (true since 2026-11).
 */
function serverSupport(serverRoot?: string): ServerSupport {
  if (serverRoot === undefined || resolve(serverRoot) === ROOT) {
    return { Cluster, startEmbeddedServer, removeDataDir };
  }
  const load = (file: string): unknown =>
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(join(resolve(serverRoot), 'test/support', file));
  const cluster = load('distributed-cluster') as Pick<ServerSupport, 'Cluster'>;
  const embedded = load('embedded-server') as Omit<ServerSupport, 'Cluster'>;
  return {
    Cluster: cluster.Cluster,
    startEmbeddedServer: embedded.startEmbeddedServer,
    removeDataDir: embedded.removeDataDir,
  };
}

/**
 * Starts one setup. `serverRoot`: start the SecureChat processes from that checkout instead of
 * this one (the TLS baseline is always this tree's).
 */
export async function startSetup(
  name: SetupName,
  cpuProfDir?: string,
  serverRoot?: string,
): Promise<RunningSetup> {
  const support = serverSupport(serverRoot);
  switch (name) {
    case 'embedded':
    case 'embedded-argon2': {
      const server = await support.startEmbeddedServer(baseEnv(name === 'embedded', cpuProfDir));
      const pid = server.process.pid!;
      return {
        name,
        protocol: 'securechat',
        targets: [{ host: server.host, port: server.port, fingerprint: server.fingerprint }],
        gatewayPid: pid,
        pids: { embedded: pid },
        stop: async () => {
          await server.stop();
          support.removeDataDir(server);
        },
      };
    }
    case 'distributed-full':
    case 'distributed-digest':
    case 'distributed-argon2': {
      const cluster = await support.Cluster.start({
        gateway: 2,
        env: {
          ...baseEnv(name !== 'distributed-argon2', cpuProfDir),
          TRANSCRIPTS: name === 'distributed-digest' ? 'digest' : 'full',
          DATABASE_POOL_SIZE: '10',
        },
      });
      const gateways = cluster.gateways;
      const pids: Record<string, number> = {};
      for (const p of cluster.processes) pids[p.name] = p.child.pid!;
      return {
        name,
        protocol: 'securechat',
        targets: gateways.map((g) => ({
          host: '127.0.0.1',
          port: g.port,
          fingerprint: g.fingerprint,
        })),
        gatewayPid: gateways[0]!.process.child.pid!,
        pids,
        stop: () => cluster.stop(),
      };
    }
    case 'tls-baseline':
      return startTlsBaseline(cpuProfDir);
  }
}

/** An Ed25519 self-signed certificate made with the openssl CLI, and the relay on it. */
async function startTlsBaseline(cpuProfDir?: string): Promise<RunningSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'securechat-bench-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyFile], { stdio: 'pipe' });
  execFileSync(
    'openssl',
    ['req', '-new', '-x509', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=bench'],
    { stdio: 'pipe' },
  );
  const relay: ServiceProcess = await spawnService('tls-relay', 'bench/tls-relay.ts', {
    BENCH_TLS_CERT: certFile,
    BENCH_TLS_KEY: keyFile,
    ...(cpuProfDir === undefined
      ? {}
      : { NODE_OPTIONS: `--require ${PROFILE_HOOK}`, BENCH_CPU_PROF_DIR: cpuProfDir }),
  });
  const pid = relay.child.pid!;
  return {
    name: 'tls-baseline',
    protocol: 'tls',
    targets: [
      {
        host: '127.0.0.1',
        port: relay.ready.port as number,
        fingerprint: relay.ready.fingerprint as string,
      },
    ],
    gatewayPid: pid,
    pids: { 'tls-relay': pid },
    caFile: certFile,
    stop: async () => {
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
