/**
 * Strict zod schemas for every relay payload. The gateway has already applied the protocol's
 * rules (docs/PROTOCOL.md §7.5, §10 item 2) and answered the client; these checks are the
 * relay's own guard against a gateway bug or a foreign caller on the service transport, so a
 * payload that fails them is a failure of the call (the gateway answers `internal`), not a
 * client error.
 */
import { z } from 'zod';

import {
  base64Field,
  CLIENT_ID_PATTERN,
  ED25519_SIGNATURE_BYTES,
  HASH_BYTES,
  HISTORY_LIMIT_MAX,
  HISTORY_LIMIT_MIN,
  MAX_MSG_ID_LENGTH,
  MAX_USER_SIGNATURE_BYTES,
  ROOM_PATTERN,
  safeUint,
  USERNAME_PATTERN,
} from '@securechat/protocol';

/** A gateway seals a session's chunk at 1 MiB of records; its last record may add a frame. */
const MAX_CHUNK_BYTES = 1024 * 1024 + 5 + 16 * 1024 * 1024;

/** Most sends in one `relay.send_batch` request. */
export const MAX_SEND_BATCH = 65_536;

/** Largest page of pending messages the gateway may ask for at once. */
export const MAX_PENDING_LIMIT = 10_000;

/** Columns `c2s_count`, `position` and friends are Postgres `integer`. */
const int32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

const username = z.string().regex(USERNAME_PATTERN);
const room = z.string().regex(ROOM_PATTERN);
const target = z.union([username, room]);
const msgId = z.string().min(1).max(MAX_MSG_ID_LENGTH);

export interface SchemaLimits {
  /** SECURECHAT_MAX_BODY_BYTES: the gateway's `too_large` limit (docs/PROTOCOL.md §7.5). */
  readonly maxBodyBytes: number;
  /** SECURECHAT_MAX_FRAME: no record plaintext can be longer than a frame (docs/PROTOCOL.md §3). */
  readonly maxFrame: number;
}

export function relaySchemas(limits: SchemaLimits) {
  const send = z.strictObject({
    from: username,
    id: z.string().regex(CLIENT_ID_PATTERN),
    to: target,
    body: z
      .string()
      .refine((body) => Buffer.byteLength(body, 'utf8') <= limits.maxBodyBytes, {
        error: 'longer than the body limit',
      })
      // JSON allows U+0000 but Postgres `text` cannot hold it: a body with one would fail
      // its whole group-commit batch, taking the other senders' messages down with it.
      .refine((body) => !body.includes('\u0000'), { error: 'contains U+0000' }),
    ts: safeUint,
    sig: base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES }),
  });

  // One connection's batch: never more than the gateway's inbound frame bound; this cap is
  // the relay's own guard.
  const sendBatch = z.strictObject({ sends: z.array(send).min(1).max(MAX_SEND_BATCH) });

  const delivered = z.strictObject({ username, msgId });

  const deliveredBatch = z.strictObject({
    username,
    msgIds: z.array(msgId).min(1).max(MAX_SEND_BATCH),
  });

  const pending = z.strictObject({
    username,
    after: z
      .string()
      .regex(/^[0-9]{1,20}$/)
      .optional(),
    limit: z.number().int().min(1).max(MAX_PENDING_LIMIT),
    maxBytes: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1)
      .optional(),
  });

  const roomCommand = z.strictObject({ username, room });

  const history = z.strictObject({
    username,
    with: target,
    before: msgId.optional(),
    limit: z.number().int().min(HISTORY_LIMIT_MIN).max(HISTORY_LIMIT_MAX),
  });

  const sessionId = z.string().min(1).max(256);
  const view = z.strictObject({
    c2sCount: int32,
    c2sChain: base64Field(HASH_BYTES),
    s2cCount: int32,
    s2cChain: base64Field(HASH_BYTES),
  });
  const transcriptBatch = z.strictObject({
    opens: z.array(
      z.strictObject({
        sessionId,
        username,
        gateway: z.string().min(1).max(255),
        mode: z.enum(['full', 'digest']),
        h2: base64Field(HASH_BYTES),
        startedAt: safeUint,
      }),
    ),
    // Canonical base64 here; the chunk format where it is decoded (TranscriptRepository).
    chunks: z.array(
      z.strictObject({
        sessionId,
        firstPosition: int32,
        records: base64Field({ min: 1, max: MAX_CHUNK_BYTES }),
      }),
    ),
    closes: z.array(
      z.strictObject({
        sessionId,
        endedAt: safeUint,
        status: z.enum(['agreed', 'disputed', 'incomplete']),
        serverView: view,
        receiptSignature: base64Field(ED25519_SIGNATURE_BYTES).optional(),
        clientView: view.optional(),
        countersignature: base64Field({ min: 1, max: MAX_USER_SIGNATURE_BYTES }).optional(),
      }),
    ),
  });

  return {
    send,
    sendBatch,
    delivered,
    deliveredBatch,
    pending,
    roomCommand,
    history,
    transcriptBatch,
  };
}

export type RelaySchemas = ReturnType<typeof relaySchemas>;
