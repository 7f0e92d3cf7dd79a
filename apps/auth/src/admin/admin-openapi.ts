/**
 * The OpenAPI description of the admin API: plain schema objects (the request schemas are
 * converted from the zod schemas that validate them, so the two cannot drift), the document
 * served at `/admin/openapi.json` (with the token, like every route) and, when
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

/**
 * How a change that ends the user's live sessions (disable, delete, password reset, key
 * change) went for them. The change itself is made and audited either way.
 */
const SESSIONS_CLOSED_PROPERTIES: Record<string, SchemaObject> = {
  sessions_closed: {
    type: 'integer',
    nullable: true,
    description:
      'live sessions ordered closed (shutting_down); null: the gateways could not be told ' +
      '(they still end the sessions at their next recheck, SECURECHAT_SESSION_RECHECK_SECONDS)',
  },
  sessions_close_error: {
    type: 'string',
    description:
      'only when sessions_closed is null: how to close them now ' +
      '(DELETE /admin/users/{username}/sessions)',
  },
};

/** `schema` with the members saying how ending the live sessions went. */
function withSessionsClosed(schema: SchemaObject): SchemaObject {
  return {
    ...schema,
    required: [...(schema.required ?? []), 'sessions_closed'],
    properties: { ...schema.properties, ...SESSIONS_CLOSED_PROPERTIES },
  };
}

export const USER_DISABLED_SCHEMA = withSessionsClosed({
  type: 'object',
  required: ['username', 'disabled'],
  properties: { username: string, disabled: { type: 'boolean', enum: [true] } },
});

export const USER_DELETED_SCHEMA = withSessionsClosed({
  type: 'object',
  required: ['username', 'deleted'],
  properties: { username: string, deleted: { type: 'boolean', enum: [true] } },
});

export const PASSWORD_RESET_SCHEMA = withSessionsClosed({
  type: 'object',
  required: ['username', 'password_reset'],
  properties: { username: string, password_reset: { type: 'boolean', enum: [true] } },
});

/** The account with its new fingerprint, and how ending the sessions of the old key went. */
export const USER_KEY_SET_SCHEMA = withSessionsClosed(USER_SCHEMA);

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
          records_purged_at: {
            ...nullable(dateTime),
            description:
              'when retention deleted the records (the receipt is kept; no export); null: kept',
          },
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

const integer = { type: 'integer' } as const;

export const TRANSCRIPT_PURGE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['before', 'dry_run', 'sessions', 'totals', 'more', 'next_cursor'],
  properties: {
    before: dateTime,
    dry_run: { type: 'boolean' },
    sessions: {
      type: 'array',
      description: 'the sessions this call purged (a dry run: would purge), oldest first',
      items: {
        type: 'object',
        properties: {
          session_id: string,
          username: string,
          mode: { type: 'string', enum: ['full', 'digest'] },
          status: { type: 'string', enum: ['open', 'agreed', 'disputed', 'incomplete'] },
          started_at: dateTime,
          ended_at: nullable(dateTime),
          receipt: {
            type: 'boolean',
            description:
              'true: the receipt is kept and still verifies against the stored chain heads; ' +
              'false: the session had none (incomplete or never ended), nothing signed remains',
          },
          countersigned: { type: 'boolean' },
          chunks: integer,
          bytes: integer,
        },
      },
    },
    totals: {
      type: 'object',
      properties: {
        sessions: integer,
        chunks: integer,
        bytes: integer,
        with_receipt: integer,
        without_receipt: integer,
      },
    },
    more: {
      type: 'boolean',
      description: 'more sessions are due: call again (a dry run: with next_cursor)',
    },
    next_cursor: {
      ...nullable(string),
      description: 'dry run: pass as `cursor` for the next page; null otherwise',
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
