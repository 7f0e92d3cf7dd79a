/**
 * `npm start`: SecureChat in one process — TCP gateway, auth and relay on an embedded PGlite
 * database and an in-process bus. No configuration needed; see the README for the variables.
 */
import 'reflect-metadata';

import { join } from 'node:path';

import { type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';
import {
  announceReady,
  InProcessBus,
  InProcessServer,
  loadConfig,
  openDatabase,
  runMain,
} from '@securechat/core';
import { GatewayServer } from '@securechat/gateway-tcp';

import { EmbeddedModule } from './embedded.module';

runMain(async () => {
  const config = loadConfig();
  const logLevels: LogLevel[] =
    process.env.SECURECHAT_LOG_LEVEL === 'debug'
      ? ['error', 'warn', 'log', 'debug']
      : ['error', 'warn', 'log'];
  const database = await openDatabase({ kind: 'pglite', dataDir: join(config.dataDir, 'pglite') });
  const bus = new InProcessBus();
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(
    EmbeddedModule.forRoot({ config, database, bus }),
    { strategy: new InProcessServer(bus), logger: logLevels },
  );
  app.enableShutdownHooks(['SIGINT', 'SIGTERM']);
  await app.listen();
  const { host, port, fingerprint } = await app.get(GatewayServer).start();
  // One machine-readable line for scripts and tests, then the human summary.
  announceReady({ host, port, fingerprint });
  console.log(
    `SecureChat is listening on ${host}:${port}\n` +
      `  server fingerprint: ${fingerprint}\n` +
      `  data directory:     ${config.dataDir}\n` +
      `  registration:       ${config.allowRegistration ? 'open (ALLOW_REGISTRATION=true)' : 'closed'}`,
  );
});
