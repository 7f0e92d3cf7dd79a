/** PROTOCOL.md §2 and §5: the JSON text of a frame or record, checked before any schema sees it. */
import { ProtocolError } from '../errors/protocol-error';

// fatal: invalid UTF-8 is an error, not U+FFFD. ignoreBOM: keep a BOM so JSON.parse rejects it
// (RFC 8259 §8.1: a BOM is not part of JSON text).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type JsonObject = Record<string, unknown>;

/**
 * Whether every string (member names included) inside `value` is well-formed UTF-16. JSON's
 * `\uXXXX` escapes can spell an unpaired surrogate in perfectly valid UTF-8; such a string has
 * no UTF-8 form, so nothing could hash or sign it (PROTOCOL.md §1 "text is UTF-8 first").
 * Iterative, so a deeply nested array cannot exhaust the stack.
 */
function isWellFormedDeep(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (!value.isWellFormed()) return false;
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (!key.isWellFormed()) return false;
        stack.push(item);
      }
    }
  }
  return true;
}

/**
 * Decodes a frame or record body into a JSON object. Invalid UTF-8, invalid JSON, a value
 * other than an object, or an unpaired surrogate: `bad_frame` (PROTOCOL.md §2).
 */
export function parseJsonObject(body: Uint8Array): JsonObject {
  let text: string;
  try {
    text = utf8Decoder.decode(body);
  } catch {
    throw new ProtocolError('bad_frame', 'frame is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('bad_frame', 'frame is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('bad_frame', 'frame is not a JSON object');
  }
  if (!isWellFormedDeep(value)) {
    throw new ProtocolError('bad_frame', 'frame has a string with an unpaired surrogate');
  }
  return value as JsonObject;
}

/** The UTF-8 JSON text of an outgoing object. */
export function serializeJson(value: object): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
