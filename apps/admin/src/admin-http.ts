/**
 * Serving the admin API: the process creates its Nest application with NestFactory.create
 * (an HTTP application that also runs the service's microservice transport, a "hybrid"), so
 * that the admin controllers share every provider — users, throttle state, session control —
 * with the service itself. These functions are all the process entry points need.
 */
import { type IncomingHttpHeaders } from 'node:http';
import { type AddressInfo } from 'node:net';

import { type INestApplication, UnsupportedMediaTypeException } from '@nestjs/common';
import { type NestExpressApplication } from '@nestjs/platform-express';

import { type SecureChatConfig } from '@securechat/core';

import { AdminExceptionFilter } from './admin-exception.filter';
import { mountOpenApi } from './admin-openapi';
import { AdminModule } from './admin.module';

/** Largest request body: the biggest legitimate one is a PEM key and a password. */
const MAX_BODY = '64kb';

/** What refuseNonJsonBody needs of an Express request (`is` is Express's type-is). */
export interface BodyRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  is(type: string): string | false | null;
}

/** The methods whose body the admin API reads. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Express middleware: a body that is not JSON answers 415 (unsupported_media_type). The JSON
 * parser skips other types, so without this a text/plain body would reach the handler as no
 * body at all and be refused as "body is required", which sends the caller looking for the
 * wrong mistake. A request without a body passes (disable/enable take none).
 */
export function refuseNonJsonBody(
  request: BodyRequest,
  _response: unknown,
  next: (error?: unknown) => void,
): void {
  // Not Express's own idea of a body: fetch sends `content-length: 0` with a bodiless POST.
  const length = request.headers['content-length'];
  const hasBody =
    request.headers['transfer-encoding'] !== undefined ||
    (length !== undefined && Number(length) > 0);
  if (BODY_METHODS.has(request.method) && hasBody && !request.is('application/json')) {
    next(new UnsupportedMediaTypeException());
    return;
  }
  next();
}

/** NestFactory.create options for an application that serves the admin API. */
export const ADMIN_HTTP_APP_OPTIONS = { bodyParser: false } as const;

/**
 * The configuration problems that keep a process from serving the admin API, in ConfigError's
 * format: without a token every request would be refused, and a process that cannot be
 * administered should say so at start, not at the first request.
 */
export function adminConfigProblems(config: SecureChatConfig): string[] {
  return config.admin.token === undefined
    ? ['ADMIN_TOKEN: required to serve the admin API (at least 32 printable characters)']
    : [];
}

/**
 * Configures the application for the admin API and listens on config.admin.host:port.
 * Initialises the application (module init hooks run here, before the port opens). Resolves
 * with the bound port (config.admin.port 0 picks a free one).
 */
export async function serveAdminHttp(
  app: INestApplication,
  config: SecureChatConfig,
): Promise<number> {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.use(refuseNonJsonBody);
  express.useBodyParser('json', { limit: MAX_BODY });
  app.useGlobalFilters(new AdminExceptionFilter());
  mountOpenApi(app, AdminModule, config.admin.docs);
  await app.listen(config.admin.port, config.admin.host);
  return (app.getHttpServer() as { address(): AddressInfo }).address().port;
}
