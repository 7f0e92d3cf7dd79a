import { type IncomingMessage } from '@securechat/client';

import { terminalSafeJson } from './chat/sanitize';

/**
 * One incoming message as the JSON line `securechat listen` prints. The verification state is
 * always there: a flagged message is printed like any other, never dropped (scripts decide).
 * Bidi controls, zero-width and other invisible characters are written as `\uXXXX` escapes:
 * the same strings for a JSON parser, nothing hidden on a terminal.
 */
export function messageJson(message: IncomingMessage): string {
  const { deliver } = message;
  return terminalSafeJson({
    msg_id: deliver.msg_id,
    from: deliver.from,
    to: deliver.to,
    body: deliver.body,
    ts: deliver.ts,
    server_ts: deliver.server_ts,
    verification: message.verification,
    sender_fingerprint: message.senderFingerprint ?? null,
    ...(message.pinnedFingerprint !== undefined &&
    message.pinnedFingerprint !== message.senderFingerprint
      ? { pinned_fingerprint: message.pinnedFingerprint }
      : {}),
  });
}
