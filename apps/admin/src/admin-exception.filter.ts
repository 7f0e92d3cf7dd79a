import { type ServerResponse } from 'node:http';

import { type ArgumentsHost, Catch, type ExceptionFilter, Logger } from '@nestjs/common';

import { adminErrorHeaders, adminErrorResponse } from './admin-errors';

/**
 * Turns whatever an admin request threw into the JSON error body of admin-errors.ts. Bound as
 * the HTTP application's global filter, so that unknown routes and body-parser failures get
 * the same shape as handler errors (and every 401 its `WWW-Authenticate` challenge).
 * Unexpected errors are logged by name only: a message might quote input, and input can hold
 * a password.
 */
@Catch()
export class AdminExceptionFilter implements ExceptionFilter {
  readonly #logger = new Logger('AdminApi');

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<ServerResponse>();
    const { status, body } = adminErrorResponse(error);
    if (status >= 500) {
      this.#logger.error(`admin request failed: ${error instanceof Error ? error.name : 'error'}`);
    }
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.statusCode = status;
    response.setHeader('content-type', 'application/json; charset=utf-8');
    for (const [name, value] of Object.entries(adminErrorHeaders(status))) {
      response.setHeader(name, value);
    }
    response.end(JSON.stringify(body));
  }
}
