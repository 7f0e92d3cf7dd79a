/**
 * The OpenAPI description of the admin API, its schemas converted from zod so that none can
 * drift: the request schemas from those that validate the requests (admin.schemas.ts), the
 * response schemas from @securechat/admin-api, which the views and the client are typed by.
 * The document is served at `/admin/openapi.json` (with the token, like every route) and, when
 * SECURECHAT_ADMIN_DOCS=true, Swagger UI at `/admin/docs`.
 *
 * One rule: the description is served only with the token, unless the operator turns Swagger
 * UI on. The UI cannot be guarded — a browser cannot add an Authorization header to the
 * navigation that loads the page — and its script, `/admin/docs/swagger-ui-init.js`, embeds
 * the whole document, so with the UI on the description is public to whoever reaches the
 * admin port. That is why it is off by default in every process (the distributed auth service
 * and `npm start` alike: the UI leaks the same way in both), and off means not mounted at all:
 * `/admin/docs` and everything under it answer 404. Turned on, the page's "Authorize" button
 * sends the bearer token with every call made from it, and every call is still guarded; the
 * document itself holds no data (the same as this source).
 */
import {
  Controller,
  Get,
  Injectable,
  type INestApplication,
  type Type,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExcludeController,
  DocumentBuilder,
  type OpenAPIObject,
  SwaggerModule,
} from '@nestjs/swagger';
import {
  type ReferenceObject,
  type SchemaObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { z } from 'zod';

import {
  adminAuditPage,
  adminErrorBody,
  adminPasswordReset,
  adminPurgeResult,
  adminSessionClose,
  adminSessionList,
  adminTranscriptPage,
  adminUser,
  adminUserDeleted,
  adminUserDisabled,
  adminUserEnabled,
  adminUserKeySet,
  adminUserPage,
  adminUserSessionsClose,
} from '@securechat/admin-api';

import { ADMIN_AUTH_CHALLENGE } from './admin-errors';
import { AdminTokenGuard } from './admin-token.guard';

/** The OpenAPI form of a request schema: what a client may send, before transforms. */
export function bodySchema(schema: z.ZodType): SchemaObject {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'any',
  });
  return json as SchemaObject;
}

/**
 * The OpenAPI form of a response schema of @securechat/admin-api. Three things zod writes are
 * left out, being about zod rather than the API: `additionalProperties: false` (a client must
 * ignore members a later server adds), the regular expression beside `format: date-time`
 * (the format says it), and the ±2^53 bounds `int()` adds.
 */
export function responseSchema(schema: z.ZodType): SchemaObject {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'output',
    override: ({ jsonSchema }) => {
      if (jsonSchema.additionalProperties === false) delete jsonSchema.additionalProperties;
      if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
    },
  });
  return json as SchemaObject;
}

export const USER_SCHEMA = responseSchema(adminUser);
export const USER_DISABLED_SCHEMA = responseSchema(adminUserDisabled);
export const USER_ENABLED_SCHEMA = responseSchema(adminUserEnabled);
export const USER_DELETED_SCHEMA = responseSchema(adminUserDeleted);
export const PASSWORD_RESET_SCHEMA = responseSchema(adminPasswordReset);
export const USER_KEY_SET_SCHEMA = responseSchema(adminUserKeySet);
export const USER_PAGE_SCHEMA = responseSchema(adminUserPage);
export const SESSION_LIST_SCHEMA = responseSchema(adminSessionList);
export const SESSION_CLOSE_SCHEMA = responseSchema(adminSessionClose);
export const USER_SESSIONS_CLOSE_SCHEMA = responseSchema(adminUserSessionsClose);
export const TRANSCRIPT_LIST_SCHEMA = responseSchema(adminTranscriptPage);
export const TRANSCRIPT_PURGE_SCHEMA = responseSchema(adminPurgeResult);
export const AUDIT_PAGE_SCHEMA = responseSchema(adminAuditPage);
const ERROR_SCHEMA = responseSchema(adminErrorBody);

const errorResponse = (status: number, description: string) => ({
  status,
  description,
  schema: ERROR_SCHEMA as SchemaObject | ReferenceObject,
});

export const ERROR_RESPONSES = {
  badRequest: errorResponse(400, 'bad_request: errors lists each invalid field'),
  unauthorized: {
    ...errorResponse(401, 'unauthorized: missing or wrong bearer token'),
    headers: {
      'WWW-Authenticate': {
        description: `always \`${ADMIN_AUTH_CHALLENGE}\``,
        schema: { type: 'string' },
      },
    },
  },
  notFound: errorResponse(404, 'not found'),
  userNotFound: errorResponse(404, 'user_not_found'),
  conflict: errorResponse(409, 'conflict'),
  gone: errorResponse(410, 'gone'),
} as const;

/** Holds the document once built (it needs the whole application, so it is built last). */
@Injectable()
export class OpenApiDocumentHolder {
  document: OpenAPIObject | undefined;
}

/**
 * `GET /admin/openapi.json`, behind the token like the other routes (with Swagger UI turned
 * on, the same document is public in its script: see the file comment).
 */
@ApiExcludeController()
@ApiBearerAuth()
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class AdminOpenApiController {
  constructor(private readonly holder: OpenApiDocumentHolder) {}

  @Get('openapi.json')
  document(): OpenAPIObject | Record<string, never> {
    return this.holder.document ?? {};
  }
}

/**
 * Builds the document from the application's admin controllers for `/admin/openapi.json` and,
 * with `docs` (SECURECHAT_ADMIN_DOCS), mounts Swagger UI at `/admin/docs`. Must run before the
 * application is initialised (routes are fixed then).
 */
export function mountOpenApi(app: INestApplication, module: Type<unknown>, docs: boolean): void {
  const config = new DocumentBuilder()
    .setTitle('SecureChat admin API')
    .setDescription(
      'Accounts, live sessions, transcripts and the audit log. Every call needs ' +
        '`Authorization: Bearer <ADMIN_TOKEN>`. Errors are `{code, message, errors?}`.',
    )
    .setVersion('1')
    .addBearerAuth()
    .build();
  const document = SwaggerModule.createDocument(app, config, { include: [module] });
  app.get(OpenApiDocumentHolder).document = document;
  // Off: no route, no static files: /admin/docs and everything under it is the API's 404.
  if (!docs) return;
  SwaggerModule.setup('admin/docs', app, document, {
    raw: false,
    swaggerOptions: { persistAuthorization: false },
  });
}
