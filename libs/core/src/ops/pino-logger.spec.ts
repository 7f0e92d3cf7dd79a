/**
 * The JSON log adapter: Nest's call shapes become pino fields, and the redaction backstop
 * keeps passwords, keys, tokens, signatures and message bodies out of the output even when a
 * whole payload is logged by mistake.
 */
import { Writable } from 'node:stream';

import {
  createPinoLogger,
  type LogFormat,
  PinoLoggerService,
  resolveLogFormat,
} from './pino-logger';

function capture(level: 'info' | 'debug' = 'debug', format?: LogFormat) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  // pino writes synchronously to a plain stream's write(): no flush needed.
  const logger = new PinoLoggerService(
    createPinoLogger({ level, service: 'test', destination, ...(format ? { format } : {}) }),
  );
  return {
    logger,
    text: () => lines.join('\n'),
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const SECRETS = {
  password: 'hunter2-correct-horse',
  signature: 'c2lnbmF0dXJlLW92ZXItaDI=',
  privateKey: '-----BEGIN PRIVATE KEY-----MC4CAQAwBQYDK2VwBCIEI',
  token: 'admin-token-0123456789abcdef0123456789abcdef',
  body: 'the launch code is 0000',
  sig: 'bWVzc2FnZS1zaWduYXR1cmU=',
};

const loginPayload = {
  type: 'login',
  action: 'login',
  username: 'alice',
  password: SECRETS.password,
  signature: SECRETS.signature,
  h2: 'aDI=',
};

const sendPayload = {
  type: 'send',
  id: 'c-1',
  to: 'bob',
  body: SECRETS.body,
  ts: 1,
  sig: SECRETS.sig,
};

it('never writes the secret members of a logged login or send payload', () => {
  const { logger, text, records } = capture();
  logger.log(loginPayload, 'Gateway');
  logger.warn({ msg: 'send refused', payload: sendPayload }, 'Gateway');
  logger.error({ msg: 'nested', request: { data: { ...loginPayload } } }, undefined, 'Gateway');
  logger.debug({ headers: { authorization: `Bearer ${SECRETS.token}` }, token: SECRETS.token });
  logger.log({ msg: 'key', privateKey: SECRETS.privateKey });
  logger.log({ msg: 'history', messages: [sendPayload, sendPayload] });
  logger.child({ conn: 'abc123', remote: '192.0.2.1' }).log({ msg: 'frame', send: sendPayload });

  const output = text();
  for (const secret of Object.values(SECRETS)) expect(output).not.toContain(secret);
  // The rest of each line survives: the test would notice if nothing was logged at all.
  expect(records()).toHaveLength(7);
  expect(output).toContain('alice');
  expect(output).toContain('"to":"bob"');
  expect(records()[0]).toMatchObject({ password: '[redacted]', username: 'alice' });
  expect(records()[6]).toMatchObject({ conn: 'abc123', remote: '192.0.2.1' });
});

it('maps Nest call shapes: context last, stack before it for errors', () => {
  const { logger, records } = capture();
  logger.log('listening', 'Gateway');
  logger.error('failed', 'Error: boom\n    at x', 'Relay');
  logger.error('failed without stack', undefined, 'Relay');
  logger.warn('plain');
  expect(records()).toEqual([
    expect.objectContaining({ level: 'info', msg: 'listening', context: 'Gateway' }),
    expect.objectContaining({
      level: 'error',
      msg: 'failed',
      context: 'Relay',
      stack: 'Error: boom\n    at x',
    }),
    expect.objectContaining({ level: 'error', msg: 'failed without stack', context: 'Relay' }),
    expect.objectContaining({ level: 'warn', msg: 'plain', service: 'test' }),
  ]);
  expect(records()[2]).not.toHaveProperty('stack');
});

it('drops lines below the configured level', () => {
  const { logger, records } = capture('info');
  logger.debug('hidden');
  logger.verbose('hidden too');
  logger.log('shown');
  expect(records().map((r) => r.msg)).toEqual(['shown']);
});

it("puts Nest's start-up chatter at debug, so that it no longer buries the banner", () => {
  const { logger, records } = capture('info');
  // What NestFactory.create and listen() say, once per module, controller and route.
  logger.log('Starting Nest application...', 'NestFactory');
  logger.log('AuthModule dependencies initialized', 'InstanceLoader');
  logger.log('AdminUsersController {/admin/users}:', 'RoutesResolver');
  logger.log('Mapped {/admin/users, POST} route', 'RouterExplorer');
  logger.log('Nest application successfully started', 'NestApplication');
  logger.log('Nest microservice successfully started', 'NestMicroservice');
  logger.log('listening on 127.0.0.1:7777', 'Gateway');
  logger.error('failed', undefined, 'NestApplication');
  expect(records().map((r) => [r.level, r.msg])).toEqual([
    ['info', 'listening on 127.0.0.1:7777'],
    ['error', 'failed'],
  ]);
  const debug = capture('debug');
  debug.logger.log('Mapped {/admin/users, POST} route', 'RouterExplorer');
  expect(debug.records()).toEqual([
    expect.objectContaining({ level: 'debug', context: 'RouterExplorer' }),
  ]);
});

it('writes readable lines with format pretty, JSON by default', () => {
  const pretty = capture('info', 'pretty');
  pretty.logger.log({ msg: 'ops endpoints listening', port: 9090 }, 'Ops');
  expect(pretty.text()).toMatch(
    /^\d\d:\d\d:\d\d\.\d{3} INFO {2}Ops: ops endpoints listening port=9090$/,
  );
  const json = capture('info', 'json');
  json.logger.log({ msg: 'ops endpoints listening', port: 9090 }, 'Ops');
  expect(json.records()).toEqual([
    expect.objectContaining({ msg: 'ops endpoints listening', port: 9090 }),
  ]);
});

it('reads auto as pretty on a terminal and JSON anywhere else', () => {
  expect(resolveLogFormat('auto', true)).toBe('pretty');
  expect(resolveLogFormat('auto', false)).toBe('json');
  expect(resolveLogFormat('json', true)).toBe('json');
  expect(resolveLogFormat('pretty', false)).toBe('pretty');
});
