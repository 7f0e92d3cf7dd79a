/**
 * @securechat/admin-api: the admin HTTP API's responses as zod schemas, shared by the server
 * (apps/admin) and the client (libs/client). Depends on zod alone.
 */
export * from './admin-responses.schemas';
