/**
 * Every environment variable SecureChat reads, validated once at boot. The README's
 * configuration table lists the same names and defaults; keep the two together.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

import { z } from 'zod';

/** The words every boolean setting accepts, whatever their case and surrounding blanks. */
export const BOOLEAN_WORDS = {
  true: ['true', '1', 'yes'],
  false: ['false', '0', 'no'],
} as const;

const BOOLEAN_ERROR = `must be one of ${[...BOOLEAN_WORDS.true, ...BOOLEAN_WORDS.false].join(', ')} (any case)`;

/**
 * One rule for every boolean setting: operators write `TRUE`, `Yes` or `1` and mean the same,
 * so only the spelling is relaxed; a word outside the list (`on`, `y`, a typo) is an error
 * rather than a silent false.
 */
export function parseBoolean(raw: string): boolean | undefined {
  const word = raw.trim().toLowerCase();
  if ((BOOLEAN_WORDS.true as readonly string[]).includes(word)) return true;
  if ((BOOLEAN_WORDS.false as readonly string[]).includes(word)) return false;
  return undefined;
}

const bool = z.string().transform((raw, ctx) => {
  const value = parseBoolean(raw);
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: BOOLEAN_ERROR });
    return z.NEVER;
  }
  return value;
});

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );

const listenHost = z.string().refine((v) => isIP(v) !== 0 || v === 'localhost', {
  error: 'must be an IP address or localhost',
});

/** `scheme://host[:port]` exactly as a browser sends it in `Origin` (lowercase, no path). */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}

export const envSchema = z.object({
  SECURECHAT_HOST: listenHost.default('127.0.0.1'),
  SECURECHAT_PORT: int(0, 65535).default(7777),
  /**
   * The WebSocket binding (PROTOCOL.md §11) for browsers: `off`, or a port. Unset: off in the
   * distributed gateway, 7780 in the embedded process (`npm start`).
   */
  SECURECHAT_WS_PORT: z
    .union([z.literal('off'), int(0, 65535)], {
      error: 'must be off or a port number 0-65535',
    })
    .optional(),
  SECURECHAT_WS_HOST: listenHost.default('127.0.0.1'),
  /**
   * Origins (`https://chat.example.com`, comma-separated) whose pages may open the WebSocket.
   * The loopback origins of the WebSocket port itself are always allowed (the page it serves).
   */
  SECURECHAT_WS_ORIGINS: z
    .string()
    .transform((raw, ctx) => {
      const origins = raw
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '');
      for (const origin of origins) {
        if (!isOrigin(origin)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${origin}" is not an origin like https://chat.example.com (scheme, host, optional port; no path)`,
          });
        }
      }
      return origins;
    })
    .optional(),
  /**
   * The web client's files, served on the WebSocket port. Unset: the build of this checkout
   * (`dist/web`, made by `npm run build:web`), if there is one.
   */
  SECURECHAT_WEB_DIR: z.string().min(1).optional(),
  SECURECHAT_DATA_DIR: z.string().min(1).default('./data'),
  SECURECHAT_IDENTITY_KEY: z.string().min(1).optional(),
  /** Gateways also write the identity's public key here, for processes that only name it. */
  SECURECHAT_IDENTITY_PUBLIC_KEY: z.string().min(1).optional(),
  /** Auth's X25519 key that gateways seal login secrets to (libs/core login-seal). */
  SECURECHAT_LOGIN_SEAL_KEY: z.string().min(1).optional(),
  /** Its public half: auth writes it, gateways read it. */
  SECURECHAT_LOGIN_SEAL_PUBLIC_KEY: z.string().min(1).optional(),
  SECURECHAT_GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  ALLOW_REGISTRATION: bool.default(false),
  TRANSCRIPTS: z.enum(['full', 'digest'], { error: 'must be full or digest' }).default('full'),
  /**
   * Days the relay keeps a session's records after it ended (0: forever, the default: they are
   * audit evidence). Session rows, chains and signatures are kept either way.
   */
  SECURECHAT_TRANSCRIPT_RETENTION_DAYS: int(0, 36_500).default(0),
  /**
   * What a room's `history` shows a member (relay): `since-join`, the default, what was stored
   * from their latest join on; `all`, the room's whole history, as before this setting existed.
   */
  SECURECHAT_ROOM_HISTORY: z
    .enum(['since-join', 'all'], { error: 'must be since-join or all' })
    .default('since-join'),

  SECURECHAT_MAX_FRAME: int(1024, 16 * 1024 * 1024).default(65536),
  SECURECHAT_MAX_BODY_BYTES: int(1, 1024 * 1024).default(16384),
  SECURECHAT_HANDSHAKE_TIMEOUT_MS: int(100, 600_000).default(10_000),
  SECURECHAT_HELLO_TIMEOUT_MS: int(100, 600_000).default(3_000),
  SECURECHAT_IDLE_TIMEOUT_MS: int(1000, 86_400_000).default(300_000),
  SECURECHAT_MAX_OUTBOUND_BYTES: int(64 * 1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  SECURECHAT_WRITE_STALL_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  SECURECHAT_MAX_INBOUND_FRAMES: int(1, 65_536).default(64),
  SECURECHAT_MAX_INBOUND_BYTES: int(256 * 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: int(1, 1_000_000).default(16),
  SECURECHAT_MAX_HANDSHAKES_PER_56: int(1, 1_000_000).default(64),
  SECURECHAT_MAX_HANDSHAKES_PER_48: int(1, 1_000_000).default(256),
  SECURECHAT_ACCEPT_RATE_PER_ADDRESS: int(1, 1_000_000).default(50),
  SECURECHAT_ACCEPT_BURST_PER_ADDRESS: int(1, 1_000_000).default(200),
  SECURECHAT_MAX_HANDSHAKES: int(1, 1_000_000).default(4096),
  SECURECHAT_MAX_SESSIONS: int(1, 10_000_000).default(100_000),
  SECURECHAT_MAX_SESSIONS_PER_USER: int(1, 100_000).default(32),
  /**
   * Seconds between a gateway's rechecks of its sessions' accounts (0: never), which end the
   * sessions an order to close them missed: one auth request per 500 users per period.
   */
  SECURECHAT_SESSION_RECHECK_SECONDS: int(0, 86_400).default(60),

  THROTTLE_USER_FAILURES: int(1, 1000).default(5),
  THROTTLE_ADDRESS_FAILURES: int(1, 1_000_000).default(200),
  THROTTLE_MAX_DELAY_S: int(1, 86_400).default(900),
  /** Per-user sending quotas (relay): far above what a person chatting sends; 0 turns one off. */
  SECURECHAT_SEND_RATE: int(0, 1_000_000).default(100),
  SECURECHAT_SEND_BURST: int(1, 10_000_000).default(1000),
  SECURECHAT_SEND_BYTES_PER_DAY: int(0, Number.MAX_SAFE_INTEGER).default(1024 * 1024 * 1024),
  /** Distributed mode: PostgreSQL and Redis. Required by the per-service entry points. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { error: 'must be a postgres:// URL' })
    .optional(),
  DATABASE_POOL_SIZE: int(1, 1000).default(10),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, { error: 'must be a redis:// URL' })
    .optional(),
  /** Prefix of every Redis key, stream and channel: several deployments can share one Redis. */
  SECURECHAT_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_:.-]{1,64}$/, { error: 'must be 1-64 of A-Z a-z 0-9 _ : . -' })
    .default('sc:'),
  /** Admin HTTP API (issue 6): bearer token; required by the distributed auth service. */
  ADMIN_TOKEN: z
    .string()
    .regex(/^[\x21-\x7e]{32,512}$/, { error: 'must be 32-512 printable ASCII characters' })
    .optional(),
  SECURECHAT_ADMIN_HOST: listenHost.default('127.0.0.1'),
  SECURECHAT_ADMIN_PORT: int(0, 65535).default(8080),
  /**
   * Swagger UI at /admin/docs. Off by default in every process: a browser cannot send the token
   * when it loads the page, and the page's script embeds the whole OpenAPI document, so on, the
   * API's description is public to whoever reaches the admin port (404 when off).
   */
  SECURECHAT_ADMIN_DOCS: bool.default(false),
  /** Operations endpoints: /healthz, /readyz, /metrics. */
  SECURECHAT_OPS_HOST: listenHost.default('127.0.0.1'),
  SECURECHAT_OPS_PORT: int(0, 65535).default(9090),
  SECURECHAT_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  /** Readable lines on a terminal, JSON lines for programs; `auto` tells them apart by isatty. */
  SECURECHAT_LOG_FORMAT: z
    .enum(['auto', 'json', 'pretty'], { error: 'must be auto, json or pretty' })
    .default('auto'),
  /** Time from SIGTERM to exit: stop accepting, tell clients, finish in-flight work. */
  SECURECHAT_SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** Benchmarks only: cheap password hashing so that protocol costs show. Never in production. */
  SECURECHAT_INSECURE_FAST_HASH: bool.default(false),
});

export type Env = z.input<typeof envSchema>;

/** Where the WebSocket binding listens, if anywhere (PROTOCOL.md §11). */
export interface WebSocketListenerConfig {
  readonly host: string;
  /** `default`: unset — the embedded process opens DEFAULT_WS_PORT, a lone gateway nothing. */
  readonly port: number | 'off' | 'default';
  /** Origins allowed besides the listener's own loopback ones. */
  readonly origins: readonly string[];
  /** The web client's files (SECURECHAT_WEB_DIR); unset: this checkout's `dist/web`, if built. */
  readonly webDir?: string;
}

/** The embedded process's WebSocket port when SECURECHAT_WS_PORT is unset. */
export const DEFAULT_WS_PORT = 7780;

export interface SecureChatConfig {
  readonly host: string;
  readonly port: number;
  readonly webSocket: WebSocketListenerConfig;
  readonly dataDir: string;
  readonly identityKeyPath: string;
  /** Where a gateway also writes the identity's public key (SPKI PEM); unset: nowhere. */
  readonly identityPublicKeyPath?: string;
  /**
   * The login seal (libs/core login-seal): auth's X25519 key pair in the distributed mode.
   * Auth reads (or makes) `keyPath` and writes `publicKeyPath`; gateways read `publicKeyPath`
   * only. The embedded process uses neither (its key pair lives in memory).
   */
  readonly loginSeal: { readonly keyPath: string; readonly publicKeyPath: string };
  readonly gatewayId: string;
  readonly allowRegistration: boolean;
  readonly transcripts: 'full' | 'digest';
  /**
   * Days a session's records are kept after it ended (started, if it never ended); the relay
   * then deletes them and keeps the session row (chains, receipt, countersignature). 0: forever.
   */
  readonly transcriptRetentionDays: number;
  /**
   * What `history` of a room returns to a member: `since-join`, the messages stored from the
   * member's latest join on (a member who left and joined again starts over); `all`, the
   * room's whole history, for open deployments that relied on it.
   */
  readonly roomHistory: 'since-join' | 'all';
  readonly limits: {
    readonly maxFrame: number;
    readonly maxBodyBytes: number;
    readonly handshakeTimeoutMs: number;
    /** Accept → `client_hello`; no key is made or signature computed before it (§3). */
    readonly helloTimeoutMs: number;
    readonly idleTimeoutMs: number;
    /** Output held for one client above which live deliveries wait in storage (catch-up). */
    readonly maxOutboundBytes: number;
    /** A client that takes none of our bytes for this long, while we have some for it, is dropped. */
    readonly writeStallTimeoutMs: number;
    /** Frames read ahead of the one being handled; reading pauses there. */
    readonly maxInboundFrames: number;
    /** Unhandled input one connection may hold; a peer past it is closed. */
    readonly maxInboundBytes: number;
    /** IPv4: per address; IPv6: per /64. */
    readonly maxHandshakesPerAddress: number;
    readonly maxHandshakesPer56: number;
    readonly maxHandshakesPer48: number;
    /** Token bucket per address (IPv6 /64): new connections per second, and the burst. */
    readonly acceptRatePerAddress: number;
    readonly acceptBurstPerAddress: number;
    readonly maxHandshakes: number;
    readonly maxSessions: number;
    /** Live sessions of one user on one gateway. */
    readonly maxSessionsPerUser: number;
  };
  /**
   * Seconds between a gateway's rechecks of the accounts of the sessions it holds (0: never):
   * a session whose account was disabled, deleted or had its password or key changed since its
   * login is closed, even when the order to close it never reached this gateway.
   */
  readonly sessionRecheckSeconds: number;
  /** Per-user sending quotas, charged by the relay (0 turns one off). */
  readonly quotas: {
    /** Sends per second, refilled continuously (a token bucket). */
    readonly messagesPerSecond: number;
    /** Sends accepted at once after a quiet spell (the bucket's size). */
    readonly messageBurst: number;
    /** Body bytes per user per UTC day. */
    readonly bytesPerDay: number;
  };
  readonly throttle: {
    readonly userFailures: number;
    readonly addressFailures: number;
    readonly maxDelaySeconds: number;
  };
  readonly insecureFastHash: boolean;
  readonly admin: {
    readonly host: string;
    readonly port: number;
    /** Unset in the embedded mode until generated (see the embedded main). */
    readonly token?: string;
    /** Serve Swagger UI at /admin/docs, without the token (SECURECHAT_ADMIN_DOCS). */
    readonly docs: boolean;
  };
  readonly ops: { readonly host: string; readonly port: number };
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `auto`: pretty when stdout is a terminal, JSON otherwise. */
  readonly logFormat: 'auto' | 'json' | 'pretty';
  readonly shutdownTimeoutMs: number;
  /** Set in the distributed mode. */
  readonly databaseUrl?: string;
  readonly databasePoolSize: number;
  readonly redisUrl?: string;
  readonly redisPrefix: string;
}

/** Thrown at boot with every invalid variable listed, one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Reads and validates the environment; throws ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): SecureChatConfig {
  const relevant = Object.fromEntries(
    Object.keys(envSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = envSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  // A connection holds a whole frame and one more read while it waits to handle it: a larger
  // SECURECHAT_MAX_FRAME raises the default, and an explicit value below that is an error.
  const minInbound = e.SECURECHAT_MAX_FRAME + 4 + 64 * 1024;
  let maxInboundBytes = e.SECURECHAT_MAX_INBOUND_BYTES;
  if (maxInboundBytes < minInbound) {
    if (relevant.SECURECHAT_MAX_INBOUND_BYTES !== undefined) {
      throw new ConfigError([
        `SECURECHAT_MAX_INBOUND_BYTES: must be at least SECURECHAT_MAX_FRAME + 65540 (${minInbound})`,
      ]);
    }
    maxInboundBytes = minInbound;
  }
  const dataDir = resolve(e.SECURECHAT_DATA_DIR);
  return {
    host: e.SECURECHAT_HOST,
    port: e.SECURECHAT_PORT,
    webSocket: {
      host: e.SECURECHAT_WS_HOST,
      port: e.SECURECHAT_WS_PORT ?? 'default',
      origins: e.SECURECHAT_WS_ORIGINS ?? [],
      ...(e.SECURECHAT_WEB_DIR === undefined ? {} : { webDir: resolve(e.SECURECHAT_WEB_DIR) }),
    },
    dataDir,
    identityKeyPath: resolve(e.SECURECHAT_IDENTITY_KEY ?? join(dataDir, 'server-identity.pem')),
    ...(e.SECURECHAT_IDENTITY_PUBLIC_KEY === undefined
      ? {}
      : { identityPublicKeyPath: resolve(e.SECURECHAT_IDENTITY_PUBLIC_KEY) }),
    loginSeal: {
      keyPath: resolve(e.SECURECHAT_LOGIN_SEAL_KEY ?? join(dataDir, 'login-seal.pem')),
      publicKeyPath: resolve(
        e.SECURECHAT_LOGIN_SEAL_PUBLIC_KEY ?? join(dataDir, 'login-seal.pub.pem'),
      ),
    },
    gatewayId: e.SECURECHAT_GATEWAY_ID ?? `${hostname()}-${process.pid}`,
    allowRegistration: e.ALLOW_REGISTRATION,
    transcripts: e.TRANSCRIPTS,
    transcriptRetentionDays: e.SECURECHAT_TRANSCRIPT_RETENTION_DAYS,
    roomHistory: e.SECURECHAT_ROOM_HISTORY,
    limits: {
      maxFrame: e.SECURECHAT_MAX_FRAME,
      maxBodyBytes: e.SECURECHAT_MAX_BODY_BYTES,
      handshakeTimeoutMs: e.SECURECHAT_HANDSHAKE_TIMEOUT_MS,
      helloTimeoutMs: e.SECURECHAT_HELLO_TIMEOUT_MS,
      idleTimeoutMs: e.SECURECHAT_IDLE_TIMEOUT_MS,
      maxOutboundBytes: e.SECURECHAT_MAX_OUTBOUND_BYTES,
      writeStallTimeoutMs: e.SECURECHAT_WRITE_STALL_TIMEOUT_MS,
      maxInboundFrames: e.SECURECHAT_MAX_INBOUND_FRAMES,
      maxInboundBytes,
      maxHandshakesPerAddress: e.SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS,
      maxHandshakesPer56: e.SECURECHAT_MAX_HANDSHAKES_PER_56,
      maxHandshakesPer48: e.SECURECHAT_MAX_HANDSHAKES_PER_48,
      acceptRatePerAddress: e.SECURECHAT_ACCEPT_RATE_PER_ADDRESS,
      acceptBurstPerAddress: e.SECURECHAT_ACCEPT_BURST_PER_ADDRESS,
      maxHandshakes: e.SECURECHAT_MAX_HANDSHAKES,
      maxSessions: e.SECURECHAT_MAX_SESSIONS,
      maxSessionsPerUser: e.SECURECHAT_MAX_SESSIONS_PER_USER,
    },
    sessionRecheckSeconds: e.SECURECHAT_SESSION_RECHECK_SECONDS,
    quotas: {
      messagesPerSecond: e.SECURECHAT_SEND_RATE,
      messageBurst: e.SECURECHAT_SEND_BURST,
      bytesPerDay: e.SECURECHAT_SEND_BYTES_PER_DAY,
    },
    throttle: {
      userFailures: e.THROTTLE_USER_FAILURES,
      addressFailures: e.THROTTLE_ADDRESS_FAILURES,
      maxDelaySeconds: e.THROTTLE_MAX_DELAY_S,
    },
    insecureFastHash: e.SECURECHAT_INSECURE_FAST_HASH,
    admin: {
      host: e.SECURECHAT_ADMIN_HOST,
      port: e.SECURECHAT_ADMIN_PORT,
      docs: e.SECURECHAT_ADMIN_DOCS,
      ...(e.ADMIN_TOKEN === undefined ? {} : { token: e.ADMIN_TOKEN }),
    },
    ops: { host: e.SECURECHAT_OPS_HOST, port: e.SECURECHAT_OPS_PORT },
    logLevel: e.SECURECHAT_LOG_LEVEL,
    logFormat: e.SECURECHAT_LOG_FORMAT,
    shutdownTimeoutMs: e.SECURECHAT_SHUTDOWN_TIMEOUT_MS,
    ...(e.DATABASE_URL === undefined ? {} : { databaseUrl: e.DATABASE_URL }),
    databasePoolSize: e.DATABASE_POOL_SIZE,
    ...(e.REDIS_URL === undefined ? {} : { redisUrl: e.REDIS_URL }),
    redisPrefix: e.SECURECHAT_REDIS_PREFIX,
  };
}

/**
 * The distributed services (auth, relay) need both URLs; a missing one is reported like any
 * other bad variable, together with the rest.
 */
export function requireDistributed(
  config: SecureChatConfig,
  /** What else this service needs (the auth service: ADMIN_TOKEN), as problem lines. */
  moreProblems: (config: SecureChatConfig) => string[] = () => [],
): SecureChatConfig & { databaseUrl: string; redisUrl: string } {
  const problems = [
    ...(config.databaseUrl ? [] : ['DATABASE_URL: required to run a service on its own']),
    ...(config.redisUrl ? [] : ['REDIS_URL: required to run a service on its own']),
    ...moreProblems(config),
  ];
  if (problems.length > 0) throw new ConfigError(problems);
  return config as SecureChatConfig & { databaseUrl: string; redisUrl: string };
}

/**
 * The distributed gateway needs Redis only: it never touches PostgreSQL (the relay reads and
 * writes messages for it), so it is not given, and does not need, the database's password.
 */
export function requireRedis(config: SecureChatConfig): SecureChatConfig & { redisUrl: string } {
  if (!config.redisUrl) {
    throw new ConfigError(['REDIS_URL: required to run a gateway on its own']);
  }
  return config as SecureChatConfig & { redisUrl: string };
}

/**
 * Settles an unset SECURECHAT_WS_PORT for this kind of process: the embedded process opens the
 * browser port by default (on loopback), a lone gateway only when asked.
 */
export function withWebSocketDefault<C extends SecureChatConfig>(
  config: C,
  whenUnset: number | 'off',
): C {
  if (config.webSocket.port !== 'default') return config;
  return { ...config, webSocket: { ...config.webSocket, port: whenUnset } };
}

/** Nest injection token for SecureChatConfig. */
export const CONFIG = Symbol('SecureChatConfig');
