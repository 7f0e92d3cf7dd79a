/** zod building blocks shared by the frame and message schemas. */
import { z } from 'zod';

import { decodeCanonicalBase64 } from '../encoding';
import { type ErrorCode } from '../errors/error-codes';
import { ProtocolError } from '../errors/protocol-error';

/**
 * A PROTOCOL.md §2 binary field: canonical padded base64, of exactly `length` decoded bytes or
 * within `min..max`. Stays a string after parsing; callers decode with `fromBase64`.
 */
export function base64Field(size: number | { min: number; max: number }) {
  const [min, max] = typeof size === 'number' ? [size, size] : [size.min, size.max];
  return z
    .string()
    .max(Math.ceil(max / 3) * 4)
    .refine(
      (s) => {
        const length = decodeCanonicalBase64(s)?.length;
        return length !== undefined && length >= min && length <= max;
      },
      { message: 'not canonical base64 of the right length' },
    );
}

/** A non-negative integer that fits JSON numbers exactly (counts, timestamps). */
export const safeUint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * Turns a schema failure into a ProtocolError. Only member paths go into the message, never
 * values: a value may be a password.
 */
export function schemaError(error: z.ZodError, code: ErrorCode, what: string): ProtocolError {
  const where = error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.code}`)
    .join('; ');
  return new ProtocolError(code, `invalid ${what}: ${where}`);
}

/** Parses `value` with `schema`, or throws `bad_frame` (PROTOCOL.md §2). */
export function parseStrict<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw schemaError(result.error, 'bad_frame', what);
  return result.data;
}
