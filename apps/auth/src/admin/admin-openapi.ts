/**
 * The OpenAPI description of the admin API: plain schema objects (the request schemas are
 * converted from the zod schemas that validate them, so the two cannot drift), the document
 * served at `/admin/openapi.json` and Swagger UI at `/admin/docs`.
 *
 * Swagger UI is served without the token: a browser cannot add an Authorization header to
 * the navigation that loads the page, so a guarded page could never be opened. Its script,
 * `/admin/docs/swagger-ui-init.js`, embeds the whole document, so the description is public
 * to whoever reaches the admin port even though `/admin/openapi.json` itself asks for the
 * token (that guard only keeps the route in line with the others). This is accepted: the
 * document is the API's description (the same as this source) and holds no data; the page's
 * "Authorize" button sends the bearer token with every call made from it, and every call is
 * guarded.
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

const string = { type: 'string' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullable = (schema: SchemaObject): SchemaObject => ({ ...schema, nullable: true });

export const USER_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['username', 'fingerprint', 'disabled', 'deleted', 'deleted_at', 'created_at'],
  properties: {
    username: string,
    fingerprint: { type: 'string', example: 'sha256:…' },
    disabled: { type: 'boolean' },
    deleted: { type: 'boolean' },
    deleted_at: nullable(dateTime),
    created_at: dateTime,
  },
};

export const USER_PAGE_SCHEMA: SchemaObject = {
  type: 'object',
  properties: { users: { type: 'array', items: USER_SCHEMA }, next_cursor: nullable(string) },
};

export const SESSION_LIST_SCHEMA: SchemaObject = {
  type: 'object',
  properties: {
    sessions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          session_id: string,
          username: string,
          gateway: string,
          source_address: string,
          since: dateTime,
        },
      },
    },
  },
};

export const TRANSCRIPT_LIST_SCHEMA: SchemaObject = {
  type: 'object',
  properties: {
    sessions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          session_id: string,
          username: string,
          gateway: string,
          mode: { type: 'string', enum: ['full', 'digest'] },
          status: { type: 'string', enum: ['open', 'agreed', 'disputed', 'incomplete'] },
          started_at: dateTime,
          ended_at: nullable(dateTime),
        },
      },
    },
    next_cursor: {
      type: 'string',
      nullable: true,
      description: 'pass as `cursor` for the next (older) page; null on the last page',
    },
  },
};

export const AUDIT_PAGE_SCHEMA: SchemaObject = {
  type: 'object',
  properties: {
    entries: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: string,
          at: dateTime,
          actor: string,
          action: string,
          target: string,
          details: { type: 'object' },
          source_address: nullable(string),
        },
      },
    },
    next_cursor: nullable(string),
  },
};

const ERROR_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: string,
    message: string,
    errors: {
      type: 'array',
      items: { type: 'object', properties: { field: string, message: string } },
    },
  },
};

const errorResponse = (status: number, description: string) => ({
  status,
  description,
  schema: ERROR_SCHEMA as SchemaObject | ReferenceObject,
});

export const ERROR_RESPONSES = {
  badRequest: errorResponse(400, 'bad_request: errors lists each invalid field'),
  unauthorized: errorResponse(401, 'unauthorized: missing or wrong bearer token'),
  notFound: errorResponse(404, 'not found'),
  userNotFound: errorResponse(404, 'user_not_found'),
  conflict: errorResponse(409, 'conflict'),
} as const;

/** Holds the document once built (it needs the whole application, so it is built last). */
@Injectable()
export class OpenApiDocumentHolder {
  document: OpenAPIObject | undefined;
}

/**
 * `GET /admin/openapi.json`, behind the token like the other routes; the same document is
 * public in Swagger UI's script (see the file comment).
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
 * Builds the document from the application's admin controllers and mounts Swagger UI at
 * `/admin/docs`. Must run before the application is initialised (routes are fixed then).
 */
export function mountOpenApi(app: INestApplication, module: Type<unknown>): void {
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
  SwaggerModule.setup('admin/docs', app, document, {
    raw: false,
    swaggerOptions: { persistAuthorization: false },
  });
}
