/**
 * The Redis Streams transport's wire format, in one place: what RedisStreamsClient appends to a
 * service's request stream and what RedisStreamsServer publishes on the caller's reply channel.
 * Both sides run the same version of this file; an entry or reply it does not accept is dropped
 * by whoever reads it (the caller then fails or times out), never half-understood.
 *
 * Request entry fields (one letter each: entries carry passwords and message bodies, and a
 * stream of them is worth keeping small):
 *   p  the message pattern (`relay.send`)
 *   d  the payload, JSON
 *   r  the caller's reply channel   } both for a request,
 *   i  the request id, echoed back  } neither for an event (no reply)
 * Reply: a JSON object `{"i": requestId, "response": …}` or `{"i": requestId, "err": "…"}`.
 */

const PATTERN = 'p';
const DATA = 'd';
const REPLY_TO = 'r';
const REQUEST_ID = 'i';
const KNOWN_FIELDS: ReadonlySet<string> = new Set([PATTERN, DATA, REPLY_TO, REQUEST_ID]);

/** A request: exactly one answer goes to `replyTo`, tagged with `requestId`. */
export interface StreamRequest {
  readonly kind: 'request';
  readonly pattern: string;
  readonly data: unknown;
  readonly replyTo: string;
  readonly requestId: string;
}

/** An event: handled once, answered never. */
export interface StreamEvent {
  readonly kind: 'event';
  readonly pattern: string;
  readonly data: unknown;
}

/**
 * An entry that is neither. `replyTo` and `requestId` are there when the entry had both, so
 * that the caller can be told at once instead of running into its timeout.
 */
export interface MalformedStreamEntry {
  readonly kind: 'malformed';
  readonly reason: string;
  readonly pattern: string | undefined;
  readonly replyTo: string | undefined;
  readonly requestId: string | undefined;
}

export type StreamEntry = StreamRequest | StreamEvent | MalformedStreamEntry;

/** A reply on the caller's channel: the handler's response, or why there is none. */
export type StreamReply =
  | { readonly requestId: string; readonly response: unknown }
  | { readonly requestId: string; readonly err: string };

/** JSON.stringify(undefined) is undefined: a payload-less call still sends valid JSON. */
const json = (value: unknown): string => JSON.stringify(value) ?? 'null';

/** The XADD field list of a request or an event (`XADD stream * ...fields`). */
export function encodeStreamEntry(entry: StreamRequest | StreamEvent): string[] {
  const fields = [PATTERN, entry.pattern, DATA, json(entry.data)];
  if (entry.kind === 'request') fields.push(REPLY_TO, entry.replyTo, REQUEST_ID, entry.requestId);
  return fields;
}

/** A stream entry's field list as Redis returns it (XREADGROUP, XCLAIM, XAUTOCLAIM). */
export function decodeStreamEntry(fields: readonly string[]): StreamEntry {
  const values = new Map<string, string>();
  let problem: string | undefined;
  if (fields.length % 2 !== 0) problem = 'odd number of field list items';
  for (let k = 0; k + 1 < fields.length; k += 2) {
    const [name, value] = [fields[k]!, fields[k + 1]!];
    // Unknown letters are ignored: a later version may add some without breaking this one.
    if (!KNOWN_FIELDS.has(name)) continue;
    if (values.has(name)) problem ??= `field ${name} given twice`;
    else values.set(name, value);
  }
  const pattern = values.get(PATTERN);
  const replyTo = values.get(REPLY_TO);
  const requestId = values.get(REQUEST_ID);
  const data = values.get(DATA);
  const answerable = replyTo !== undefined && requestId !== undefined;
  const malformed = (reason: string): MalformedStreamEntry => ({
    kind: 'malformed',
    reason,
    pattern,
    replyTo: answerable ? replyTo : undefined,
    requestId: answerable ? requestId : undefined,
  });

  if (problem !== undefined) return malformed(problem);
  if (pattern === undefined || pattern === '') return malformed('no pattern');
  if (data === undefined) return malformed('no data');
  if ((replyTo === undefined) !== (requestId === undefined)) {
    return malformed('a reply channel without a request id, or the other way round');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return malformed('data is not JSON');
  }
  return answerable
    ? { kind: 'request', pattern, data: parsed, replyTo, requestId }
    : { kind: 'event', pattern, data: parsed };
}

/** The message published on the caller's reply channel. */
export function encodeStreamReply(reply: StreamReply): string {
  return 'err' in reply
    ? JSON.stringify({ [REQUEST_ID]: reply.requestId, err: reply.err })
    : JSON.stringify({ [REQUEST_ID]: reply.requestId, response: reply.response });
}

/**
 * A message from the reply channel; undefined when it is not a reply (not JSON, no request id).
 * An error that is not a string still fails the request, as `failed`: the caller must not wait.
 */
export function decodeStreamReply(message: string): StreamReply | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const reply = value as Record<string, unknown>;
  const requestId = reply[REQUEST_ID];
  if (typeof requestId !== 'string') return undefined;
  if (reply.err !== undefined) {
    return { requestId, err: typeof reply.err === 'string' ? reply.err : 'failed' };
  }
  return { requestId, response: reply.response };
}
