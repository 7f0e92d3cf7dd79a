/** Boot-time configuration: defaults, parsing of every variable, and the all-at-once error. */
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

import fc from 'fast-check';

import {
  ConfigError,
  envSchema,
  loadConfig,
  withWebSocketDefault,
  parseBoolean,
  requireDistributed,
  requireRedis,
} from './config.schema';

/** Runs loadConfig and returns the ConfigError it must throw. */
function configErrorFor(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('loadConfig accepted an invalid environment');
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('gives the documented defaults for an empty environment', () => {
      expect(loadConfig({})).toEqual({
        host: '127.0.0.1',
        port: 7777,
        webSocket: { host: '127.0.0.1', port: 'default', origins: [] },
        dataDir: resolve('./data'),
        identityKeyPath: join(resolve('./data'), 'server-identity.pem'),
        loginSeal: {
          keyPath: join(resolve('./data'), 'login-seal.pem'),
          publicKeyPath: join(resolve('./data'), 'login-seal.pub.pem'),
        },
        gatewayId: `${hostname()}-${process.pid}`,
        allowRegistration: false,
        transcripts: 'full',
        transcriptRetentionDays: 0,
        roomHistory: 'since-join',
        limits: {
          maxFrame: 65536,
          maxBodyBytes: 16384,
          handshakeTimeoutMs: 10_000,
          helloTimeoutMs: 3_000,
          idleTimeoutMs: 300_000,
          maxOutboundBytes: 4 * 1024 * 1024,
          writeStallTimeoutMs: 30_000,
          maxInboundFrames: 64,
          maxInboundBytes: 1024 * 1024,
          maxHandshakesPerAddress: 16,
          maxHandshakesPer56: 64,
          maxHandshakesPer48: 256,
          acceptRatePerAddress: 50,
          acceptBurstPerAddress: 200,
          maxHandshakes: 4096,
          maxSessions: 100_000,
          maxSessionsPerUser: 32,
        },
        sessionRecheckSeconds: 60,
        quotas: { messagesPerSecond: 100, messageBurst: 1000, bytesPerDay: 1024 * 1024 * 1024 },
        throttle: { userFailures: 5, addressFailures: 200, maxDelaySeconds: 900 },
        insecureFastHash: false,
        admin: { host: '127.0.0.1', port: 8080, docs: false },
        ops: { host: '127.0.0.1', port: 9090 },
        logLevel: 'info',
        logFormat: 'auto',
        shutdownTimeoutMs: 10_000,
        databasePoolSize: 10,
        redisPrefix: 'sc:',
      });
    });

    it('leaves the distributed-mode URLs out (not even as undefined keys) when unset', () => {
      const config = loadConfig({});
      expect('databaseUrl' in config).toBe(false);
      expect('redisUrl' in config).toBe(false);
    });

    it('treats empty strings as unset', () => {
      const env = Object.fromEntries(Object.keys(envSchema.shape).map((key) => [key, '']));
      expect(loadConfig(env)).toEqual(loadConfig({}));
    });

    it('ignores variables it does not know', () => {
      expect(loadConfig({ PATH: '/bin', SECURECHAT_UNKNOWN: 'x' })).toEqual(loadConfig({}));
    });

    it('reads process.env when no environment is passed', () => {
      const saved = process.env.SECURECHAT_PORT;
      process.env.SECURECHAT_PORT = '4242';
      try {
        expect(loadConfig().port).toBe(4242);
      } finally {
        if (saved === undefined) delete process.env.SECURECHAT_PORT;
        else process.env.SECURECHAT_PORT = saved;
      }
    });
  });

  describe('identity key path', () => {
    it('defaults to server-identity.pem under the data directory', () => {
      const config = loadConfig({ SECURECHAT_DATA_DIR: '/srv/securechat' });
      expect(config.dataDir).toBe('/srv/securechat');
      expect(config.identityKeyPath).toBe('/srv/securechat/server-identity.pem');
    });

    it('resolves a relative data directory to an absolute one', () => {
      const config = loadConfig({ SECURECHAT_DATA_DIR: 'some/dir' });
      expect(config.dataDir).toBe(join(process.cwd(), 'some/dir'));
      expect(config.identityKeyPath).toBe(join(process.cwd(), 'some/dir/server-identity.pem'));
    });

    it('uses SECURECHAT_IDENTITY_KEY when set, resolved to an absolute path', () => {
      expect(
        loadConfig({ SECURECHAT_DATA_DIR: '/srv/data', SECURECHAT_IDENTITY_KEY: '/etc/sc/id.pem' })
          .identityKeyPath,
      ).toBe('/etc/sc/id.pem');
      expect(loadConfig({ SECURECHAT_IDENTITY_KEY: 'keys/id.pem' }).identityKeyPath).toBe(
        join(process.cwd(), 'keys/id.pem'),
      );
    });

    it('falls back to the data directory when SECURECHAT_IDENTITY_KEY is empty', () => {
      expect(
        loadConfig({ SECURECHAT_DATA_DIR: '/srv/data', SECURECHAT_IDENTITY_KEY: '' })
          .identityKeyPath,
      ).toBe('/srv/data/server-identity.pem');
    });
  });

  describe('parsing', () => {
    it('reads every variable into its place', () => {
      const config = loadConfig({
        SECURECHAT_HOST: '0.0.0.0',
        SECURECHAT_PORT: '9000',
        SECURECHAT_WS_PORT: '9001',
        SECURECHAT_WS_HOST: '::1',
        SECURECHAT_WS_ORIGINS: ' https://chat.example.com, http://localhost:5173 ',
        SECURECHAT_WEB_DIR: '/srv/web',
        SECURECHAT_DATA_DIR: '/var/lib/sc',
        SECURECHAT_IDENTITY_KEY: '/etc/sc/key.pem',
        SECURECHAT_IDENTITY_PUBLIC_KEY: '/srv/public/key.pub.pem',
        SECURECHAT_LOGIN_SEAL_KEY: '/etc/sc/seal.pem',
        SECURECHAT_LOGIN_SEAL_PUBLIC_KEY: '/srv/public/seal.pub.pem',
        SECURECHAT_GATEWAY_ID: 'gw-1.eu_west',
        ALLOW_REGISTRATION: 'true',
        TRANSCRIPTS: 'digest',
        SECURECHAT_TRANSCRIPT_RETENTION_DAYS: '90',
        SECURECHAT_ROOM_HISTORY: 'all',
        SECURECHAT_MAX_FRAME: '2048',
        SECURECHAT_MAX_BODY_BYTES: '100',
        SECURECHAT_HANDSHAKE_TIMEOUT_MS: '500',
        SECURECHAT_IDLE_TIMEOUT_MS: '60000',
        SECURECHAT_MAX_OUTBOUND_BYTES: '65536',
        SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS: '3',
        SECURECHAT_HELLO_TIMEOUT_MS: '250',
        SECURECHAT_WRITE_STALL_TIMEOUT_MS: '7000',
        SECURECHAT_MAX_INBOUND_FRAMES: '8',
        SECURECHAT_MAX_INBOUND_BYTES: '300000',
        SECURECHAT_MAX_HANDSHAKES_PER_56: '30',
        SECURECHAT_MAX_HANDSHAKES_PER_48: '40',
        SECURECHAT_ACCEPT_RATE_PER_ADDRESS: '5',
        SECURECHAT_ACCEPT_BURST_PER_ADDRESS: '9',
        SECURECHAT_MAX_HANDSHAKES: '10',
        SECURECHAT_MAX_SESSIONS: '20',
        SECURECHAT_MAX_SESSIONS_PER_USER: '2',
        SECURECHAT_SESSION_RECHECK_SECONDS: '15',
        THROTTLE_USER_FAILURES: '7',
        THROTTLE_ADDRESS_FAILURES: '70',
        THROTTLE_MAX_DELAY_S: '60',
        SECURECHAT_INSECURE_FAST_HASH: 'yes',
        DATABASE_URL: 'postgres://sc:pw@db.internal:5432/securechat',
        DATABASE_POOL_SIZE: '25',
        REDIS_URL: 'redis://cache.internal:6379/2',
        SECURECHAT_REDIS_PREFIX: 'prod:eu-1.',
        ADMIN_TOKEN: 'a'.repeat(40),
        SECURECHAT_ADMIN_HOST: '0.0.0.0',
        SECURECHAT_ADMIN_PORT: '8081',
        SECURECHAT_ADMIN_DOCS: 'true',
        SECURECHAT_OPS_HOST: '::',
        SECURECHAT_OPS_PORT: '9191',
        SECURECHAT_LOG_LEVEL: 'debug',
        SECURECHAT_LOG_FORMAT: 'pretty',
        SECURECHAT_SHUTDOWN_TIMEOUT_MS: '5000',
      });
      expect(config).toEqual({
        host: '0.0.0.0',
        port: 9000,
        webSocket: {
          host: '::1',
          port: 9001,
          origins: ['https://chat.example.com', 'http://localhost:5173'],
          webDir: '/srv/web',
        },
        dataDir: '/var/lib/sc',
        identityKeyPath: '/etc/sc/key.pem',
        identityPublicKeyPath: '/srv/public/key.pub.pem',
        loginSeal: { keyPath: '/etc/sc/seal.pem', publicKeyPath: '/srv/public/seal.pub.pem' },
        gatewayId: 'gw-1.eu_west',
        allowRegistration: true,
        transcripts: 'digest',
        transcriptRetentionDays: 90,
        roomHistory: 'all',
        limits: {
          maxFrame: 2048,
          maxBodyBytes: 100,
          handshakeTimeoutMs: 500,
          helloTimeoutMs: 250,
          idleTimeoutMs: 60_000,
          maxOutboundBytes: 65536,
          writeStallTimeoutMs: 7000,
          maxInboundFrames: 8,
          maxInboundBytes: 300_000,
          maxHandshakesPerAddress: 3,
          maxHandshakesPer56: 30,
          maxHandshakesPer48: 40,
          acceptRatePerAddress: 5,
          acceptBurstPerAddress: 9,
          maxHandshakes: 10,
          maxSessions: 20,
          maxSessionsPerUser: 2,
        },
        sessionRecheckSeconds: 15,
        quotas: { messagesPerSecond: 100, messageBurst: 1000, bytesPerDay: 1024 * 1024 * 1024 },
        throttle: { userFailures: 7, addressFailures: 70, maxDelaySeconds: 60 },
        insecureFastHash: true,
        admin: { host: '0.0.0.0', port: 8081, docs: true, token: 'a'.repeat(40) },
        ops: { host: '::', port: 9191 },
        logLevel: 'debug',
        logFormat: 'pretty',
        shutdownTimeoutMs: 5000,
        databaseUrl: 'postgres://sc:pw@db.internal:5432/securechat',
        databasePoolSize: 25,
        redisUrl: 'redis://cache.internal:6379/2',
        redisPrefix: 'prod:eu-1.',
      });
    });

    it.each(['short', 'x'.repeat(31), `${'x'.repeat(32)} y`, 'é'.repeat(40)])(
      'refuses the admin token %j',
      (token) => {
        expect(configErrorFor({ ADMIN_TOKEN: token }).problems).toEqual([
          'ADMIN_TOKEN: must be 32-512 printable ASCII characters',
        ]);
      },
    );

    it.each(['full', 'digest'] as const)('reads TRANSCRIPTS=%s', (mode) => {
      expect(loadConfig({ TRANSCRIPTS: mode }).transcripts).toBe(mode);
    });

    it('refuses any other TRANSCRIPTS value', () => {
      expect(configErrorFor({ TRANSCRIPTS: 'FULL' }).problems).toEqual([
        'TRANSCRIPTS: must be full or digest',
      ]);
    });

    it('keeps transcripts forever unless SECURECHAT_TRANSCRIPT_RETENTION_DAYS says otherwise', () => {
      expect(loadConfig({}).transcriptRetentionDays).toBe(0);
      expect(
        loadConfig({ SECURECHAT_TRANSCRIPT_RETENTION_DAYS: '0' }).transcriptRetentionDays,
      ).toBe(0);
      expect(
        loadConfig({ SECURECHAT_TRANSCRIPT_RETENTION_DAYS: '365' }).transcriptRetentionDays,
      ).toBe(365);
    });

    it.each([
      ['-1', 'must be a whole number'],
      ['1.5', 'must be a whole number'],
      ['30d', 'must be a whole number'],
      ['36501', 'must be at most 36500'],
    ])('refuses SECURECHAT_TRANSCRIPT_RETENTION_DAYS=%j', (raw, message) => {
      expect(configErrorFor({ SECURECHAT_TRANSCRIPT_RETENTION_DAYS: raw }).problems).toEqual([
        `SECURECHAT_TRANSCRIPT_RETENTION_DAYS: ${message}`,
      ]);
    });

    it('shows a room member its history from its join on unless SECURECHAT_ROOM_HISTORY=all', () => {
      expect(loadConfig({}).roomHistory).toBe('since-join');
      expect(loadConfig({ SECURECHAT_ROOM_HISTORY: 'since-join' }).roomHistory).toBe('since-join');
      expect(loadConfig({ SECURECHAT_ROOM_HISTORY: 'all' }).roomHistory).toBe('all');
    });

    it.each(['ALL', 'since_join', 'none', 'true'])('refuses SECURECHAT_ROOM_HISTORY=%j', (raw) => {
      expect(configErrorFor({ SECURECHAT_ROOM_HISTORY: raw }).problems).toEqual([
        'SECURECHAT_ROOM_HISTORY: must be since-join or all',
      ]);
    });

    it('rechecks sessions every 60 s unless SECURECHAT_SESSION_RECHECK_SECONDS says otherwise (0: never)', () => {
      expect(loadConfig({}).sessionRecheckSeconds).toBe(60);
      expect(loadConfig({ SECURECHAT_SESSION_RECHECK_SECONDS: '0' }).sessionRecheckSeconds).toBe(0);
      expect(
        loadConfig({ SECURECHAT_SESSION_RECHECK_SECONDS: '86400' }).sessionRecheckSeconds,
      ).toBe(86_400);
      expect(configErrorFor({ SECURECHAT_SESSION_RECHECK_SECONDS: '86401' }).problems).toEqual([
        'SECURECHAT_SESSION_RECHECK_SECONDS: must be at most 86400',
      ]);
      expect(configErrorFor({ SECURECHAT_SESSION_RECHECK_SECONDS: '-1' }).problems).toEqual([
        'SECURECHAT_SESSION_RECHECK_SECONDS: must be a whole number',
      ]);
    });

    it.each(['127.0.0.1', '::1', '::', '10.1.2.3', 'localhost'])('accepts the host %j', (host) => {
      expect(loadConfig({ SECURECHAT_HOST: host }).host).toBe(host);
    });

    it.each(['example.com', '256.0.0.1', 'LOCALHOST'])('refuses the host %j', (host) => {
      expect(configErrorFor({ SECURECHAT_HOST: host }).problems).toEqual([
        'SECURECHAT_HOST: must be an IP address or localhost',
      ]);
    });

    it('reads SECURECHAT_WS_PORT as off, a port, or unset (settled per process)', () => {
      expect(loadConfig({ SECURECHAT_WS_PORT: 'off' }).webSocket.port).toBe('off');
      expect(loadConfig({ SECURECHAT_WS_PORT: '0' }).webSocket.port).toBe(0);
      const unset = loadConfig({});
      expect(withWebSocketDefault(unset, 7780).webSocket.port).toBe(7780);
      expect(withWebSocketDefault(unset, 'off').webSocket.port).toBe('off');
      const set = loadConfig({ SECURECHAT_WS_PORT: '9001' });
      expect(withWebSocketDefault(set, 7780).webSocket.port).toBe(9001);
    });

    it.each([
      ['on', 'SECURECHAT_WS_PORT: must be off or a port number 0-65535'],
      ['70000', 'SECURECHAT_WS_PORT: must be at most 65535'],
    ])('refuses SECURECHAT_WS_PORT=%j', (value, problem) => {
      expect(configErrorFor({ SECURECHAT_WS_PORT: value }).problems).toEqual([problem]);
    });

    it.each([
      'chat.example.com',
      'https://chat.example.com/',
      'https://chat.example.com/app',
      'ftp://x.example',
      'HTTPS://Chat.example.com',
    ])('refuses the origin %j, naming it', (origin) => {
      const { problems } = configErrorFor({
        SECURECHAT_WS_ORIGINS: `https://ok.example, ${origin}`,
      });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`SECURECHAT_WS_ORIGINS: "${origin}" is not an origin`);
    });

    it('accepts port 0 (any free port) and 65535', () => {
      expect(loadConfig({ SECURECHAT_PORT: '0' }).port).toBe(0);
      expect(loadConfig({ SECURECHAT_PORT: '65535' }).port).toBe(65535);
    });

    it.each([
      ['65536', 'SECURECHAT_PORT: must be at most 65535'],
      ['-1', 'SECURECHAT_PORT: must be a whole number'],
      ['80.5', 'SECURECHAT_PORT: must be a whole number'],
      ['1e3', 'SECURECHAT_PORT: must be a whole number'],
      ['0x50', 'SECURECHAT_PORT: must be a whole number'],
      [' 80', 'SECURECHAT_PORT: must be a whole number'],
      ['eighty', 'SECURECHAT_PORT: must be a whole number'],
    ])('refuses the port %j', (raw, problem) => {
      expect(configErrorFor({ SECURECHAT_PORT: raw }).problems).toEqual([problem]);
    });

    it('raises the inbound bound to hold a whole frame and a read, unless it was set', () => {
      const big = { SECURECHAT_MAX_FRAME: String(4 * 1024 * 1024) };
      expect(loadConfig(big).limits.maxInboundBytes).toBe(4 * 1024 * 1024 + 4 + 65536);
      expect(loadConfig({}).limits.maxInboundBytes).toBe(1024 * 1024);
      expect(
        configErrorFor({ ...big, SECURECHAT_MAX_INBOUND_BYTES: String(1024 * 1024) }).problems,
      ).toEqual([
        'SECURECHAT_MAX_INBOUND_BYTES: must be at least SECURECHAT_MAX_FRAME + 65540 (4259844)',
      ]);
    });

    it.each([
      ['SECURECHAT_MAX_FRAME', 1024, 16 * 1024 * 1024],
      ['SECURECHAT_MAX_BODY_BYTES', 1, 1024 * 1024],
      ['SECURECHAT_HANDSHAKE_TIMEOUT_MS', 100, 600_000],
      ['SECURECHAT_IDLE_TIMEOUT_MS', 1000, 86_400_000],
      ['SECURECHAT_MAX_OUTBOUND_BYTES', 64 * 1024, 1024 * 1024 * 1024],
      ['SECURECHAT_MAX_HANDSHAKES_PER_ADDRESS', 1, 1_000_000],
      ['SECURECHAT_HELLO_TIMEOUT_MS', 100, 600_000],
      ['SECURECHAT_WRITE_STALL_TIMEOUT_MS', 100, 3_600_000],
      ['SECURECHAT_MAX_INBOUND_FRAMES', 1, 65_536],
      ['SECURECHAT_MAX_INBOUND_BYTES', 256 * 1024, 1024 * 1024 * 1024],
      ['SECURECHAT_MAX_HANDSHAKES_PER_56', 1, 1_000_000],
      ['SECURECHAT_MAX_HANDSHAKES_PER_48', 1, 1_000_000],
      ['SECURECHAT_ACCEPT_RATE_PER_ADDRESS', 1, 1_000_000],
      ['SECURECHAT_ACCEPT_BURST_PER_ADDRESS', 1, 1_000_000],
      ['SECURECHAT_MAX_HANDSHAKES', 1, 1_000_000],
      ['SECURECHAT_MAX_SESSIONS', 1, 10_000_000],
      ['THROTTLE_USER_FAILURES', 1, 1000],
      ['THROTTLE_ADDRESS_FAILURES', 1, 1_000_000],
      ['THROTTLE_MAX_DELAY_S', 1, 86_400],
      ['DATABASE_POOL_SIZE', 1, 1000],
    ])('bounds %s to %d..%d', (name, min, max) => {
      expect(() => loadConfig({ [name]: String(min) })).not.toThrow();
      expect(() => loadConfig({ [name]: String(max) })).not.toThrow();
      expect(configErrorFor({ [name]: String(min - 1) }).problems).toEqual([
        `${name}: must be at least ${min}`,
      ]);
      expect(configErrorFor({ [name]: String(max + 1) }).problems).toEqual([
        `${name}: must be at most ${max}`,
      ]);
    });

    it.each(['a', 'gw_1', 'GW-2.x', 'x'.repeat(64)])('accepts the gateway id %j', (id) => {
      expect(loadConfig({ SECURECHAT_GATEWAY_ID: id }).gatewayId).toBe(id);
    });

    it.each(['gw 1', 'gw/1', 'x'.repeat(65), 'gé'])('refuses the gateway id %j', (id) => {
      const [problem, ...rest] = configErrorFor({ SECURECHAT_GATEWAY_ID: id }).problems;
      expect(rest).toEqual([]);
      expect(problem).toMatch(/^SECURECHAT_GATEWAY_ID: /);
    });
    it.each(['postgres://localhost/db', 'postgresql://u:p@h:5432/d'])(
      'accepts the database URL %j',
      (url) => {
        expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
      },
    );

    it.each(['mysql://localhost/db', 'localhost:5432', 'POSTGRES://h/d', ' postgres://h/d'])(
      'refuses the database URL %j',
      (url) => {
        expect(configErrorFor({ DATABASE_URL: url }).problems).toEqual([
          'DATABASE_URL: must be a postgres:// URL',
        ]);
      },
    );

    it.each(['redis://localhost:6379', 'rediss://u:p@h:6380/1'])(
      'accepts the Redis URL %j',
      (url) => {
        expect(loadConfig({ REDIS_URL: url }).redisUrl).toBe(url);
      },
    );

    it.each(['http://localhost:6379', 'localhost:6379', 'redis:/h'])(
      'refuses the Redis URL %j',
      (url) => {
        expect(configErrorFor({ REDIS_URL: url }).problems).toEqual([
          'REDIS_URL: must be a redis:// URL',
        ]);
      },
    );

    it.each(['a', 'sc:', 'prod:eu-1.', 'x'.repeat(64)])('accepts the Redis prefix %j', (prefix) => {
      expect(loadConfig({ SECURECHAT_REDIS_PREFIX: prefix }).redisPrefix).toBe(prefix);
    });

    it.each(['sc prefix', 'sc/', 'x'.repeat(65), '{sc}'])(
      'refuses the Redis prefix %j',
      (prefix) => {
        expect(configErrorFor({ SECURECHAT_REDIS_PREFIX: prefix }).problems).toEqual([
          'SECURECHAT_REDIS_PREFIX: must be 1-64 of A-Z a-z 0-9 _ : . -',
        ]);
      },
    );
  });

  describe('requireRedis', () => {
    it('needs REDIS_URL only: a gateway is not given DATABASE_URL', () => {
      const config = loadConfig({ REDIS_URL: 'redis://h:6379' });
      expect(requireRedis(config)).toBe(config);
      expect(() => requireRedis(loadConfig({ DATABASE_URL: 'postgres://h/d' }))).toThrow(
        expect.objectContaining({ problems: ['REDIS_URL: required to run a gateway on its own'] }),
      );
    });
  });

  describe('requireDistributed', () => {
    it('passes a configuration with both URLs through unchanged', () => {
      const config = loadConfig({
        DATABASE_URL: 'postgres://h/d',
        REDIS_URL: 'redis://h:6379',
      });
      const distributed = requireDistributed(config);
      expect(distributed).toBe(config);
      expect(distributed.databaseUrl).toBe('postgres://h/d');
      expect(distributed.redisUrl).toBe('redis://h:6379');
    });

    it('lists both URLs when both are missing', () => {
      let thrown: unknown;
      try {
        requireDistributed(loadConfig({}));
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).problems).toEqual([
        'DATABASE_URL: required to run a service on its own',
        'REDIS_URL: required to run a service on its own',
      ]);
    });

    it('names only the URL that is missing', () => {
      expect(() => requireDistributed(loadConfig({ DATABASE_URL: 'postgres://h/d' }))).toThrow(
        expect.objectContaining({ problems: ['REDIS_URL: required to run a service on its own'] }),
      );
      expect(() => requireDistributed(loadConfig({ REDIS_URL: 'redis://h' }))).toThrow(
        expect.objectContaining({
          problems: ['DATABASE_URL: required to run a service on its own'],
        }),
      );
    });

    it("lists the service's own requirements together with the URLs", () => {
      const needsToken = (config: { admin: { token?: string } }) =>
        config.admin.token === undefined ? ['ADMIN_TOKEN: required'] : [];
      expect(() => requireDistributed(loadConfig({ REDIS_URL: 'redis://h' }), needsToken)).toThrow(
        expect.objectContaining({
          problems: ['DATABASE_URL: required to run a service on its own', 'ADMIN_TOKEN: required'],
        }),
      );
      const complete = loadConfig({
        DATABASE_URL: 'postgres://h/d',
        REDIS_URL: 'redis://h',
        ADMIN_TOKEN: 'x'.repeat(32),
      });
      expect(requireDistributed(complete, needsToken)).toBe(complete);
    });
  });

  describe('boolean settings', () => {
    /** Every variable the schema reads as a boolean, found by what it makes of `no`. */
    const booleanVariables = Object.entries(envSchema.shape)
      .filter(([, schema]) => {
        const parsed = schema.safeParse('no');
        return parsed.success && parsed.data === false;
      })
      .map(([name]) => name);

    it('finds every boolean setting the README lists', () => {
      expect(booleanVariables.sort()).toEqual(
        ['ALLOW_REGISTRATION', 'SECURECHAT_ADMIN_DOCS', 'SECURECHAT_INSECURE_FAST_HASH'].sort(),
      );
    });

    const accepted: [string, boolean][] = [
      ['true', true],
      ['TRUE', true],
      ['True', true],
      ['1', true],
      ['yes', true],
      ['YES', true],
      ['Yes', true],
      [' true ', true],
      ['\tyes\n', true],
      ['false', false],
      ['FALSE', false],
      ['False', false],
      ['0', false],
      ['no', false],
      ['NO', false],
      ['No', false],
      [' 0 ', false],
    ];
    const cases = booleanVariables.flatMap((name) =>
      accepted.map(([raw, value]) => [name, raw, value] as const),
    );

    it.each(cases)('reads %s=%j as %j', (name, raw, value) => {
      const config = loadConfig({ [name]: raw });
      const read = {
        ALLOW_REGISTRATION: config.allowRegistration,
        SECURECHAT_ADMIN_DOCS: config.admin.docs,
        SECURECHAT_INSECURE_FAST_HASH: config.insecureFastHash,
      }[name];
      expect(read).toBe(value);
    });

    const refused = [
      'on',
      'off',
      'y',
      'n',
      't',
      'f',
      '2',
      '-1',
      '01',
      'truee',
      'no way',
      ' ',
      'ja',
    ];
    it.each(booleanVariables.flatMap((name) => refused.map((raw) => [name, raw] as const)))(
      'refuses %s=%j, naming the variable and the accepted words',
      (name, raw) => {
        expect(configErrorFor({ [name]: raw }).problems).toEqual([
          `${name}: must be one of true, 1, yes, false, 0, no (any case)`,
        ]);
      },
    );

    it('parses any case and blanks of the six words, and nothing else', () => {
      const words = ['true', '1', 'yes', 'false', '0', 'no'];
      fc.assert(
        fc.property(
          fc.string({ maxLength: 8 }).filter((raw) => !words.includes(raw.trim().toLowerCase())),
          (raw) => {
            expect(parseBoolean(raw)).toBeUndefined();
          },
        ),
      );
      fc.assert(
        fc.property(
          fc.constantFrom(...words),
          fc.array(fc.boolean(), { maxLength: 5 }),
          fc.constantFrom('', ' ', '\t', '\n'),
          (word, upper, blank) => {
            const mixed = [...word]
              .map((c, i) => (upper[i] === true ? c.toUpperCase() : c))
              .join('');
            expect(parseBoolean(`${blank}${mixed}${blank}`)).toBe(words.indexOf(word) < 3);
          },
        ),
      );
    });
  });

  describe('ConfigError', () => {
    it('lists every bad variable at once, one line each', () => {
      const error = configErrorFor({
        SECURECHAT_PORT: '70000',
        ALLOW_REGISTRATION: 'maybe',
        TRANSCRIPTS: 'everything',
        SECURECHAT_MAX_SESSIONS: 'lots',
        SECURECHAT_MAX_FRAME: '4096', // valid: must not be listed
      });
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe('ConfigError');
      expect(error.problems).toHaveLength(4);
      const lines = error.message.split('\n');
      expect(lines[0]).toBe('invalid configuration:');
      expect(lines.slice(1)).toHaveLength(4);
      for (const name of [
        'SECURECHAT_PORT',
        'ALLOW_REGISTRATION',
        'TRANSCRIPTS',
        'SECURECHAT_MAX_SESSIONS',
      ]) {
        expect(lines.filter((line) => line.startsWith(`  - ${name}: `))).toHaveLength(1);
      }
      expect(error.message).not.toContain('SECURECHAT_MAX_FRAME');
    });

    it('does not quote the offending values', () => {
      const values = {
        SECURECHAT_HOST: 'secret-host-value',
        SECURECHAT_PORT: '98765',
        ALLOW_REGISTRATION: 'secret-bool-value',
        TRANSCRIPTS: 'secret-mode-value',
        SECURECHAT_GATEWAY_ID: 'secret gateway value',
        THROTTLE_MAX_DELAY_S: 'secret-delay-value',
        DATABASE_URL: 'mysql://admin:hunter2-db-password@db.internal/sc',
        REDIS_URL: 'http://:hunter3-redis-password@cache.internal',
      };
      const error = configErrorFor(values);
      expect(error.problems).toHaveLength(Object.keys(values).length);
      for (const value of Object.values(values)) expect(error.message).not.toContain(value);
      expect(error.message).not.toMatch(/hunter|secret|98765/);
      expect(error.problems.join('\n')).not.toMatch(/hunter|secret|98765/);
    });
  });
});
