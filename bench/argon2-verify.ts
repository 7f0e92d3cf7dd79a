/**
 * The argon2id verify ceiling of `npm run bench`, in a process of its own (run by
 * bench/ceilings.ts with the environment the bench gives the auth process): how many argon2id
 * verifications per second this machine does with the auth service's library
 * (@node-rs/argon2) and parameters (ARGON2_PARAMETERS of apps/auth), `concurrency` of them in
 * flight at once, as the auth process has them while logins queue.
 *
 * @node-rs/argon2's `verify` is a napi-rs AsyncTask: napi_create_async_work, i.e. one job on
 * libuv's threadpool per call (UV_THREADPOOL_SIZE threads, 4 when unset), no pool of its own
 * (with parallelism 1, one lane, it uses no further threads). So an auth process with more
 * logins in flight than the threadpool has threads runs exactly `threadpool` verifies at once;
 * this process, started the same way, does the same with nothing else to do.
 *
 * Prints one JSON line (Argon2VerifyResult) on stdout.
 */
import { performance } from 'node:perf_hooks';

import { Version, hash, parseOptions, verify } from '@node-rs/argon2';

import { ARGON2_PARAMETERS } from '../apps/auth/src/password-hasher.repository';
import { LOAD_PASSWORD } from './load-client';

export interface Argon2VerifyConfig {
  /** Most verifications in flight (the handshake workers: logins the auth may have at once). */
  readonly maxConcurrency: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly windows: number;
}

export interface Argon2VerifyResult {
  readonly library: string;
  /** As parsed back from the PHC string verified (what the auth stores for its users). */
  readonly parameters: {
    readonly algorithm: string;
    readonly memoryCost: number;
    readonly timeCost: number;
    readonly parallelism: number;
    readonly version: number;
  };
  /** libuv's threadpool size in this process, and where it came from. */
  readonly threadpoolSize: number;
  readonly threadpoolSource: string;
  /** Verifications kept in flight: min(threadpool, maxConcurrency). */
  readonly concurrency: number;
  readonly windows: {
    readonly seconds: number;
    readonly verifies: number;
    /** User + system CPU seconds of this process (its threadpool included) in the window. */
    readonly cpuSeconds: number;
  }[];
  /** Verifications that did not answer true (must be 0). */
  readonly errors: number;
}

/** libuv's rule (uv__threadpool_init): UV_THREADPOOL_SIZE as atoi, 0 → 1, at most 1024, else 4. */
export function threadpoolSize(env: NodeJS.ProcessEnv): { size: number; source: string } {
  const raw = env.UV_THREADPOOL_SIZE;
  if (raw === undefined) return { size: 4, source: 'UV_THREADPOOL_SIZE unset: libuv default 4' };
  const n = Number.parseInt(raw, 10);
  const size = Math.min(1024, Math.max(1, Number.isFinite(n) ? n : 0));
  return { size, source: `UV_THREADPOOL_SIZE=${raw}` };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as Argon2VerifyConfig;
  const pool = threadpoolSize(process.env);
  const concurrency = Math.max(1, Math.min(pool.size, config.maxConcurrency));
  const phc = await hash(LOAD_PASSWORD, ARGON2_PARAMETERS);
  const parsed = parseOptions(phc);
  let stopped = false;
  let measuring = false;
  let verifies = 0;
  let errors = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const ok = await verify(phc, LOAD_PASSWORD).catch(() => false);
      if (!ok) errors++;
      else if (measuring) verifies++;
    }
  });
  await sleep(config.warmupSeconds * 1000);
  const windows: Argon2VerifyResult['windows'][number][] = [];
  for (let w = 0; w < config.windows; w++) {
    verifies = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    measuring = true;
    await sleep(config.seconds * 1000);
    measuring = false;
    const cpu = process.cpuUsage(cpu0);
    windows.push({
      seconds: (performance.now() - t0) / 1000,
      verifies,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    });
  }
  stopped = true;
  await Promise.all(loops);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require('@node-rs/argon2/package.json') as { version: string }).version;
  const result: Argon2VerifyResult = {
    library: `@node-rs/argon2 ${version}`,
    parameters: {
      algorithm: ['argon2d', 'argon2i', 'argon2id'][parsed.algorithm] ?? String(parsed.algorithm),
      memoryCost: parsed.memoryCost,
      timeCost: parsed.timeCost,
      parallelism: parsed.parallelism,
      version: parsed.version === Version.V0x13 ? 0x13 : 0x10,
    },
    threadpoolSize: pool.size,
    threadpoolSource: pool.source,
    concurrency,
    windows,
    errors,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
