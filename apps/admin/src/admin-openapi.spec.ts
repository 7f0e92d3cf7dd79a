import * as openapi from './admin-openapi';

const { USER_DISABLED_SCHEMA, USER_KEY_SET_SCHEMA, USER_SCHEMA } = openapi;
/** Every response schema the document exports (a new one is checked without a list to edit). */
const RESPONSE_SCHEMAS = Object.fromEntries(
  Object.entries(openapi).filter(([name]) => name.endsWith('_SCHEMA')),
);

it('finds the response schemas to check', () => {
  expect(Object.keys(RESPONSE_SCHEMAS).length).toBeGreaterThanOrEqual(13);
});

/** Every [path, node] of a JSON value. */
function* nodes(value: unknown, path = ''): Generator<[string, Record<string, unknown>]> {
  if (typeof value !== 'object' || value === null) return;
  if (!Array.isArray(value)) yield [path, value as Record<string, unknown>];
  for (const [key, child] of Object.entries(value)) yield* nodes(child, `${path}/${key}`);
}

describe('the response schemas of the OpenAPI document (from @securechat/admin-api)', () => {
  it('describe an account as the API sends it', () => {
    const instant = { type: 'string', format: 'date-time' };
    expect(USER_SCHEMA).toEqual({
      type: 'object',
      required: ['username', 'fingerprint', 'disabled', 'deleted', 'deleted_at', 'created_at'],
      properties: {
        username: { type: 'string' },
        fingerprint: {
          type: 'string',
          description: '`sha256:` + hex of the SPKI',
          example: 'sha256:…',
        },
        disabled: { type: 'boolean' },
        deleted: { type: 'boolean' },
        deleted_at: { ...instant, nullable: true },
        created_at: instant,
      },
    });
  });

  it('say how ending the sessions went beside the change, the error only as an option', () => {
    expect(USER_DISABLED_SCHEMA).toMatchObject({
      required: ['username', 'disabled', 'sessions_closed'],
      properties: {
        disabled: { type: 'boolean', enum: [true] },
        sessions_closed: { type: 'integer', minimum: 0, nullable: true },
        sessions_close_error: { type: 'string' },
      },
    });
    expect(USER_KEY_SET_SCHEMA.required).toEqual([...USER_SCHEMA.required!, 'sessions_closed']);
  });

  it.each(Object.entries(RESPONSE_SCHEMAS))(
    '%s carries nothing of zod that is not the API: no closed objects, date-time patterns or 2^53 bounds',
    (_name, schema) => {
      for (const [path, node] of nodes(schema)) {
        expect([path, node.additionalProperties]).not.toEqual([path, false]);
        if (node.format === 'date-time') expect([path, node.pattern]).toEqual([path, undefined]);
        expect([path, node.minimum]).not.toEqual([path, Number.MIN_SAFE_INTEGER]);
        expect([path, node.maximum]).not.toEqual([path, Number.MAX_SAFE_INTEGER]);
      }
    },
  );
});
