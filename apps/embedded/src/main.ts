/**
 * `npm start`: SecureChat in one process — TCP gateway, auth and relay on an embedded PGlite
 * database and an in-process bus. No configuration needed; see the README for the variables.
 */
import 'reflect-metadata';

import { join } from 'node:path';

import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions } from '@nestjs/microservices';
import { ADMIN_HTTP_APP_OPTIONS, serveAdminHttp, withAdminToken } from '@securechat/admin';
import {
  checkPorts,
  DEFAULT_WS_PORT,
  InProcessBus,
  InProcessServer,
  loadConfig,
  openDatabase,
  OpsModule,
  plannedListeners,
  postgresCheck,
  ProcessOps,
  runMain,
  withWebSocketDefault,
} from '@securechat/core';
import { GatewayServer } from '@securechat/gateway-tcp';

import { EmbeddedModule } from './embedded.module';

/** The embedded services plus the process's logger, metrics and ops server. */
@Module({})
class EmbeddedProcessModule {
  static forRoot(ops: ProcessOps, embedded: DynamicModule): DynamicModule {
    return { module: EmbeddedProcessModule, imports: [OpsModule.forRoot(ops), embedded] };
  }
}

runMain(async () => {
  // The browser port is on unless SECURECHAT_WS_PORT=off (on loopback unless SECURECHAT_WS_HOST).
  const loaded = withWebSocketDefault(loadConfig(), DEFAULT_WS_PORT);
  // Every port first: a busy one must stop the start before the admin token, the identity key
  // or the database exist — one line naming the setting, exit 2, nothing left behind.
  await checkPorts(plannedListeners(loaded, ['gateway', 'websocket', 'admin', 'ops']));
  const admin = withAdminToken(loaded);
  const config = admin.config;
  const ops = new ProcessOps(config, { service: 'embedded', roles: ['gateway', 'auth', 'relay'] });
  const database = await openDatabase({ kind: 'pglite', dataDir: join(config.dataDir, 'pglite') });
  const bus = new InProcessBus();
  // An HTTP application (the admin API) running the in-process transport beside it.
  const app = await NestFactory.create(
    EmbeddedProcessModule.forRoot(ops, EmbeddedModule.forRoot({ config, database, bus })),
    { logger: ops.logger, ...ADMIN_HTTP_APP_OPTIONS },
  );
  app.connectMicroservice<MicroserviceOptions>({ strategy: new InProcessServer(bus) });
  // SIGTERM: clients get `shutting_down`, the last transcripts are stored, PGlite is closed,
  // and the process exits 0 — within config.shutdownTimeoutMs whatever hangs.
  ops.enableShutdown(app);
  const adminPort = await serveAdminHttp(app, config);
  await app.startAllMicroservices();
  const { host, port, fingerprint, wsPort } = await app.get(GatewayServer).start();
  const opsPort = await ops.start([postgresCheck(database.db)]);
  // Where the token is, never the token itself.
  const tokenWhere =
    admin.file === undefined
      ? 'from ADMIN_TOKEN'
      : `in ${admin.file}${admin.created ? ' (generated now)' : ''}`;
  // One machine-readable line for scripts and tests, then the human summary, last of all.
  ops.announce(
    {
      host,
      port,
      fingerprint,
      ops_port: opsPort,
      admin_port: adminPort,
      ...(wsPort === undefined ? {} : { ws_port: wsPort }),
    },
    `SecureChat is listening on ${host}:${port}\n` +
      `  server fingerprint: ${fingerprint}\n` +
      (wsPort === undefined
        ? ''
        : `  browsers:           ws://${config.webSocket.host}:${wsPort} (WebSocket, securechat.v1)\n`) +
      `  data directory:     ${config.dataDir}\n` +
      `  registration:       ${config.allowRegistration ? 'open (ALLOW_REGISTRATION=true)' : 'closed'}\n` +
      `  admin API:          http://${config.admin.host}:${adminPort}/admin` +
      `${config.admin.docs ? ' (docs: /admin/docs)' : ''}\n` +
      `  admin token:        ${tokenWhere}\n` +
      `  ops endpoints:      http://${config.ops.host}:${opsPort}/healthz`,
  );
});
