/**
 * PROTOCOL.md §3 and §6 value rules for a client's requests, applied after the structural schema
 * passed. A failure here is an answer (`bad_request`, `too_large`), not a broken session: the error
 * carries the request's `id` when it has one (PROTOCOL.md §10.2), even one that breaks its pattern,
 * and the connection stays open.
 *
 * `msg_id` has no pattern (PROTOCOL.md §6: the server's opaque string), so `delivered.msg_id` and
 * `history.before` break no value rule: a text that names no message of ours is ignored
 * (PROTOCOL.md §9) or precedes nothing (PROTOCOL.md §10.11). `isMsgId` tells whether a text can be
 * one of ours at all.
 */
import {
  CLIENT_ID_PATTERN,
  DEFAULT_MAX_BODY_BYTES,
  HISTORY_LIMIT_MAX,
  HISTORY_LIMIT_MIN,
  MAX_MSG_ID_LENGTH,
  MAX_TIMESTAMP,
  ROOM_PATTERN,
  USERNAME_PATTERN,
} from '../constants';
import { ProtocolError } from '../errors/protocol-error';
import { type ClientMessage } from './client-messages';

export interface RequestLimits {
  /** Largest `send.body` in UTF-8 bytes (PROTOCOL.md §6: 16384 unless configured otherwise). */
  readonly maxBodyBytes?: number;
}

export const isUsername = (s: string): boolean => USERNAME_PATTERN.test(s);
export const isRoom = (s: string): boolean => ROOM_PATTERN.test(s);
export const isClientId = (s: string): boolean => CLIENT_ID_PATTERN.test(s);
/**
 * Whether `s` can be a `msg_id` this implementation hands out (and its services take); any
 * other text names no stored message. Not a value rule: PROTOCOL.md §6 gives `msg_id` no pattern.
 */
export const isMsgId = (s: string): boolean => s.length >= 1 && s.length <= MAX_MSG_ID_LENGTH;
export const isTimestamp = (n: number): boolean =>
  Number.isSafeInteger(n) && n >= 0 && n <= MAX_TIMESTAMP;

function reject(field: string, rule: string, id?: string): never {
  throw new ProtocolError('bad_request', `${field}: ${rule}`, id === undefined ? {} : { id });
}

/** Throws `bad_request` or `too_large` when `message` breaks a PROTOCOL.md §3/§6 value rule. */
export function checkRequest(message: ClientMessage, limits: RequestLimits = {}): void {
  switch (message.type) {
    case 'send': {
      const { id } = message;
      if (!isClientId(id)) reject('id', 'must match ^[A-Za-z0-9_-]{1,64}$', id);
      if (!isUsername(message.to) && !isRoom(message.to))
        reject('to', 'not a username or room', id);
      if (!isTimestamp(message.ts)) reject('ts', 'must be an integer in 0..2^53-1', id);
      const maxBody = limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
      if (Buffer.byteLength(message.body, 'utf8') > maxBody) {
        throw new ProtocolError('too_large', `body: more than ${maxBody} UTF-8 bytes`, { id });
      }
      return;
    }
    case 'delivered':
      return; // any msg_id: one that is not pending is ignored (PROTOCOL.md §9)
    case 'join':
    case 'leave':
      if (!isRoom(message.room)) reject('room', 'must match ^#[a-z0-9_-]{1,32}$');
      return;
    case 'get_key':
      if (!isUsername(message.user)) reject('user', 'must match ^[a-z0-9_]{3,32}$');
      return;
    case 'history':
      if (!isUsername(message.with) && !isRoom(message.with))
        reject('with', 'not a username or room');
      if (
        message.limit !== undefined &&
        !(
          Number.isInteger(message.limit) &&
          message.limit >= HISTORY_LIMIT_MIN &&
          message.limit <= HISTORY_LIMIT_MAX
        )
      ) {
        reject('limit', `must be an integer in ${HISTORY_LIMIT_MIN}..${HISTORY_LIMIT_MAX}`);
      }
      return;
    case 'ping':
      if (message.n !== undefined && !isTimestamp(message.n))
        reject('n', 'must be an integer in 0..2^53-1');
      return;
    case 'key_update':
    case 'bye':
    case 'countersign':
      return;
  }
}
