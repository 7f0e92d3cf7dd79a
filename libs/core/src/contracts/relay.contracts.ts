/** What the gateway asks the relay service, and what it answers. */
import { type TranscriptView as ProtocolTranscriptView, toBase64 } from '@securechat/protocol';

/** A stored message as PROTOCOL.md §6 `deliver` carries it (without `type`). */
export interface StoredMessage {
  readonly msg_id: string;
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly ts: number;
  readonly server_ts: number;
  readonly sig: string;
}

/** A `send` whose signature the gateway has verified; `from` is the session's user. */
export interface SendCommand {
  readonly from: string;
  readonly id: string;
  readonly to: string;
  readonly body: string;
  readonly ts: number;
  readonly sig: string;
}

export type SendResult =
  | {
      readonly ok: true;
      readonly msgId: string;
      readonly serverTs: number;
      readonly duplicate: boolean;
    }
  | {
      readonly ok: false;
      readonly code: 'not_found' | 'forbidden' | 'conflict';
      readonly message: string;
    }
  | {
      /** Over the sender's quota (config.quotas): not stored; may pass after `retryAfter` s. */
      readonly ok: false;
      readonly code: 'rate_limited';
      readonly message: string;
      readonly retryAfter: number;
    };

/**
 * Consecutive `send`s of one connection, stored in this order (PROTOCOL.md §6 order per sender):
 * the gateway has one batch of a connection with the relay at a time, so the order holds across
 * any number of relay instances.
 */
export interface SendBatchCommand {
  readonly sends: SendCommand[];
}

/** One result per send, in the batch's order. */
export interface SendBatchResult {
  readonly results: SendResult[];
}

export interface DeliveredCommand {
  readonly username: string;
  readonly msgId: string;
}

/** A run of one session's `delivered` confirmations, marked together. */
export interface DeliveredBatchCommand {
  readonly username: string;
  readonly msgIds: string[];
}

/** How many of the batch's confirmations marked a pending delivery. */
export interface DeliveredBatchResult {
  readonly ok: true;
  readonly marked: number;
}

/** The client gets no answer to `delivered` (PROTOCOL.md §6); the gateway gets this one. */
export interface DeliveredResult {
  readonly ok: true;
  /** Whether a pending delivery was marked; false for unknown, foreign or repeated ids. */
  readonly marked: boolean;
}

/** Undelivered messages of a user, oldest first, after `after` (a msg_id) when given. */
export interface PendingQuery {
  readonly username: string;
  readonly after?: string;
  readonly limit: number;
  /**
   * Stop once the messages listed carry about this many bytes of body (at least one message
   * is listed): a page of large messages stays small for the gateway that writes it out.
   */
  readonly maxBytes?: number;
}

export interface PendingResult {
  readonly messages: StoredMessage[];
  /** Set when `maxBytes` cut the page short: more may follow even below `limit`. */
  readonly more?: boolean;
}

export interface RoomCommand {
  readonly username: string;
  readonly room: string;
}

export type JoinResult = { readonly ok: true; readonly room: string; readonly members: string[] };

export type LeaveResult =
  | { readonly ok: true; readonly room: string }
  | { readonly ok: false; readonly code: 'not_found'; readonly message: string };

export interface HistoryQuery {
  readonly username: string;
  readonly with: string;
  readonly before?: string;
  readonly limit: number;
}

export type HistoryResult =
  | { readonly ok: true; readonly with: string; readonly messages: StoredMessage[] }
  | { readonly ok: false; readonly code: 'not_found' | 'forbidden'; readonly message: string };

/** Fan-out from the relay to every gateway: deliver `message` to these users' live sessions. */
export interface FanoutEvent {
  readonly recipients: string[];
  readonly message: StoredMessage;
}

// ------------------------------------------------------------------ transcripts

export type TranscriptMode = 'full' | 'digest';
export type TranscriptStatus = 'open' | 'agreed' | 'disputed' | 'incomplete';

export interface TranscriptOpen {
  readonly sessionId: string;
  readonly username: string;
  readonly gateway: string;
  readonly mode: TranscriptMode;
  /** base64 of H2. */
  readonly h2: string;
  readonly startedAt: number;
}

/**
 * Consecutive records of one session, packed (libs/core transcript-chunk.ts): the first at
 * `firstPosition`, the others one after the other. Positions count every record of the
 * session from 0, both directions interleaved in the order the gateway saw them.
 */
export interface TranscriptChunk {
  readonly sessionId: string;
  readonly firstPosition: number;
  /** base64 of `encodeChunk(records)`: byte-exact plaintexts with direction and chain flag. */
  readonly records: string;
}

export interface TranscriptView {
  readonly c2sCount: number;
  /** base64 */
  readonly c2sChain: string;
  readonly s2cCount: number;
  /** base64 */
  readonly s2cChain: string;
}

/** A protocol view as this contract carries it; the relay decodes it in relay.schemas.ts. */
export function toTranscriptViewContract(
  view: Omit<ProtocolTranscriptView, 'sessionId'>,
): TranscriptView {
  return {
    c2sCount: view.c2sCount,
    c2sChain: toBase64(view.c2sChain),
    s2cCount: view.s2cCount,
    s2cChain: toBase64(view.s2cChain),
  };
}

export interface TranscriptClose {
  readonly sessionId: string;
  readonly endedAt: number;
  readonly status: Exclude<TranscriptStatus, 'open'>;
  /** The server's view at the end (the receipt's view when one was sent). */
  readonly serverView: TranscriptView;
  /** base64, when a receipt was sent. */
  readonly receiptSignature?: string;
  /** From `countersign`, when one arrived. */
  readonly clientView?: TranscriptView;
  readonly countersignature?: string;
}

/** What a transcript batch added (0 on a retry of a stored batch). */
export interface TranscriptAppendResult {
  readonly ok: true;
  readonly opened: number;
  /** Records in chunks not stored before. */
  readonly recorded: number;
  readonly closed: number;
}

/** One batch from a gateway: applied in order opens, chunks, closes. */
export interface TranscriptBatch {
  readonly opens: TranscriptOpen[];
  readonly chunks: TranscriptChunk[];
  readonly closes: TranscriptClose[];
}
