import { type LoggerService } from '@nestjs/common';
import {
  type SendCommand,
  type SendResult,
  ServiceUnavailableError,
  type StoredMessage,
} from '@securechat/core';
import {
  type ClientMessage,
  type Deliver,
  HISTORY_LIMIT_DEFAULT,
  isMsgId,
  ProtocolError,
  type SendMessage,
  type ServerMessage,
  ServerSession,
  serializeJson,
} from '@securechat/protocol';

import { protocolErrorFor, type ServiceFailure } from './request-errors';
import { type AuthClient, type RelayClient } from './service-clients';

/** What the rules need of the session: who the user is, and how much a frame can carry. */
export type RequestSession = Pick<
  ServerSession,
  'username' | 'fits' | 'maxPlaintextBytes' | 'verifySendSignature'
>;

/** Requests answered one at a time (sends and `delivered` go in batches; `bye` closes). */
export type SingleRequest = Extract<
  ClientMessage,
  { type: 'ping' | 'key_update' | 'join' | 'leave' | 'get_key' | 'history' }
>;

/** A `send` that passed the gateway's checks, or the error that answers it, in request order. */
export type CheckedSend =
  | { readonly ok: true; readonly command: SendCommand }
  | { readonly ok: false; readonly error: ProtocolError };

/** A `history.before` that names no stored message: the relay's ids are decimal numbers. */
const NO_SUCH_MSG_ID = '-';

/** The widest ids a stored message can carry, to size a `send` before it is stored. */
const WIDEST_STORED = { msg_id: '9'.repeat(20), server_ts: Number.MAX_SAFE_INTEGER };

/**
 * The rules of each request inside a session (PROTOCOL.md §6, docs/PROTOCOL.md §10) and the
 * calls to auth and relay they take. It answers with messages to send and never writes: the
 * connection owns the socket and the order of what goes out.
 */
export class RequestHandler {
  constructor(
    private readonly session: RequestSession,
    private readonly services: {
      readonly auth: Pick<AuthClient, 'getKey'>;
      readonly relay: Pick<
        RelayClient,
        'sendBatch' | 'deliveredBatch' | 'join' | 'leave' | 'history'
      >;
    },
    private readonly logger: LoggerService,
  ) {}

  /** The gateway's own checks of a `send` (see checkSend below). */
  checkSend(message: SendMessage): CheckedSend {
    return checkSend(this.session, message);
  }

  /**
   * Stores the checked sends of one batch in their order and answers every request of it in
   * request order: `ack`, or the error (the check's, or the relay's refusal).
   */
  async sendBatch(checked: readonly CheckedSend[]): Promise<ServerMessage[]> {
    const commands = checked.flatMap((c) => (c.ok ? [c.command] : []));
    let results: SendResult[] = [];
    let unavailable = false;
    if (commands.length > 0) {
      try {
        results = (await this.services.relay.sendBatch({ sends: commands })).results;
        if (results.length !== commands.length) throw new Error('relay answered a short batch');
      } catch (error) {
        this.#logFailure(error);
        unavailable = true;
      }
    }
    let next = 0;
    return checked.map((c) => {
      if (!c.ok) return errorFor(c.error, this.session);
      const id = c.command.id;
      const result = results[next++];
      if (unavailable || !result) return refusal('unavailable', id);
      if (!result.ok) {
        return refusal(
          result.code,
          id,
          result.code === 'rate_limited' ? result.retryAfter : undefined,
        );
      }
      return { type: 'ack', id, msg_id: result.msgId, server_ts: result.serverTs };
    });
  }

  /**
   * PROTOCOL.md §6 `delivered`, a run of them at once (the relay group-commits them). No answer; a
   * relay that cannot be reached is said once, as `internal`. A `msg_id` that cannot be one of ours
   * (isMsgId) names no pending message and is ignored here (PROTOCOL.md §9), without asking the
   * relay.
   */
  async delivered(msgIds: readonly string[]): Promise<ServerMessage[]> {
    const ours = msgIds.filter(isMsgId);
    if (ours.length === 0) return [];
    try {
      await this.services.relay.deliveredBatch(this.session.username, ours);
      return [];
    } catch (error) {
      this.#logFailure(error);
      return [refusal('unavailable')];
    }
  }

  /** Every other request: the answer, if it has one (PROTOCOL.md §6). */
  async handle(message: SingleRequest): Promise<ServerMessage | undefined> {
    try {
      return await this.#handle(message);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableError)) throw error;
      this.#logFailure(error);
      return refusal('unavailable');
    }
  }

  async #handle(message: SingleRequest): Promise<ServerMessage | undefined> {
    const { relay, auth } = this.services;
    const username = this.session.username;
    switch (message.type) {
      case 'ping':
        return { type: 'pong', ...(message.n === undefined ? {} : { n: message.n }) };
      case 'key_update':
        return undefined; // the session already switched its receiving key (PROTOCOL.md §4)
      case 'join': {
        const result = await relay.join({ username, room: message.room });
        const joined = { type: 'joined' as const, room: result.room, members: result.members };
        // A room too large to list in one frame (docs/PROTOCOL.md §10): list as many as fit.
        while (joined.members.length > 0 && !this.session.fits(joined)) {
          joined.members = joined.members.slice(0, Math.floor(joined.members.length * 0.9));
        }
        return joined;
      }
      case 'leave': {
        const result = await relay.leave({ username, room: message.room });
        return result.ok ? { type: 'left', room: result.room } : refusal(result.code);
      }
      case 'get_key': {
        const result = await auth.getKey(message.user);
        if (!result.ok) return refusal(result.code);
        return {
          type: 'key',
          user: result.user,
          public_key: result.publicKey,
          fingerprint: result.fingerprint,
        };
      }
      case 'history': {
        const { before } = message;
        const result = await relay.history({
          username,
          with: message.with,
          limit: message.limit ?? HISTORY_LIMIT_DEFAULT,
          // One that cannot be ours names no stored message (PROTOCOL.md §10.11): the relay is
          // asked with a text that is not one of its (decimal) ids either, which precedes nothing —
          // an empty page, after the same access checks as any other.
          ...(before === undefined ? {} : { before: isMsgId(before) ? before : NO_SUCH_MSG_ID }),
        });
        if (!result.ok) return refusal(result.code);
        return {
          type: 'history',
          with: result.with,
          messages: this.#newestThatFit(result.with, result.messages),
        };
      }
    }
  }

  /**
   * The newest messages of a history page that fit one frame, oldest first (docs/PROTOCOL.md
   * §10: 200 bodies of 16 KiB cannot). Linear: each entry is measured once. A message too large
   * to fit even alone is skipped, not allowed to empty the page.
   */
  #newestThatFit(withWhom: string, messages: StoredMessage[]): Deliver[] {
    const room = this.session.maxPlaintextBytes;
    const envelope = serializeJson({ type: 'history', with: withWhom, messages: [] }).length;
    let budget = room - envelope;
    const kept: Deliver[] = [];
    for (let i = messages.length - 1; i >= 0; i--) {
      const deliver = toDeliver(messages[i]!);
      const alone = serializeJson(deliver).length;
      if (alone > room - envelope) continue;
      const size = alone + (kept.length > 0 ? 1 : 0); // and a comma
      if (size > budget) break;
      budget -= size;
      kept.push(deliver);
    }
    return kept.reverse();
  }

  #logFailure(error: unknown): void {
    const cause =
      error instanceof ServiceUnavailableError ? (error.cause as Error | undefined) : undefined;
    this.logger.error(`${(error as Error).message}${cause ? `: ${cause.message}` : ''}`);
  }
}

/**
 * PROTOCOL.md §6 send, before anything is stored: U+0000 (PostgreSQL text cannot hold it; refused
 * here, alone, rather than failing the relay's whole batch), a `deliver` that could never
 * fit a frame (`too_large`, docs/PROTOCOL.md §10), and the author's signature. Synchronous
 * and decided by the gateway alone: the connection runs it as the record is read, so that a
 * refused `send` goes into the transcript by digest (docs/PROTOCOL.md §10 item 25).
 */
export function checkSend(session: RequestSession, message: SendMessage): CheckedSend {
  const refuse = (code: 'bad_request' | 'too_large', text: string): CheckedSend => ({
    ok: false,
    error: new ProtocolError(code, text, { id: message.id }),
  });
  if (message.body.includes('\u0000'))
    return refuse('bad_request', 'body: U+0000 is not supported');
  if (!session.fits(toDeliver({ ...WIDEST_STORED, ...message, from: session.username }))) {
    return refuse('too_large', 'body: the message would not fit one frame');
  }
  if (!session.verifySendSignature(message)) {
    return refuse('bad_request', 'sig: does not verify with your key');
  }
  const { id, to, body, ts, sig } = message;
  return { ok: true, command: { from: session.username, id, to, body, ts, sig } };
}

/** The PROTOCOL.md §6 `deliver` of a stored message. */
export function toDeliver(message: StoredMessage): Deliver {
  return {
    type: 'deliver',
    msg_id: message.msg_id,
    id: message.id,
    from: message.from,
    to: message.to,
    body: message.body,
    ts: message.ts,
    server_ts: message.server_ts,
    sig: message.sig,
  };
}

/**
 * A request's own error (PROTOCOL.md §2), echoing its `id` (PROTOCOL.md §6, §10.2) — as written,
 * even one that breaks its pattern. Given the session, an echo that would not fit one frame is left
 * out (PROTOCOL.md §10.5: an answer that would not fit is cut); only an `id` far beyond its pattern
 * comes near that.
 */
export function errorFor(
  error: ProtocolError,
  session?: Pick<ServerSession, 'fits'>,
): ServerMessage {
  const answer = ServerSession.errorMessage(
    error.code,
    error.message,
    error.id === undefined ? {} : { id: error.id },
  );
  if (error.id === undefined || !session || session.fits(answer)) return answer;
  return ServerSession.errorMessage(error.code, error.message);
}

/** A service's refusal as the client sees it (the edge mapping of request-errors.ts). */
function refusal(failure: ServiceFailure, id?: string, retryAfter?: number): ServerMessage {
  const { code, message } = protocolErrorFor(failure);
  return ServerSession.errorMessage(code, message, {
    ...(id === undefined ? {} : { id }),
    ...(retryAfter === undefined ? {} : { retryAfter }),
  });
}
