/**
 * The relay's rules (docs/PROTOCOL.md §7.4): who receives a message, what `ack` promises,
 * idempotent sends, pending deliveries, rooms and history. Everything with a side effect sits
 * behind an injected repository or port, so these rules are unit-tested with mocks.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';

import {
  ClockRepository,
  CONFIG,
  type DeliveredBatchCommand,
  type DeliveredBatchResult,
  type DeliveredCommand,
  type DeliveredResult,
  type FanoutEvent,
  FanoutPort,
  type HistoryQuery,
  type HistoryResult,
  type JoinResult,
  type LeaveResult,
  type PendingQuery,
  type PendingResult,
  type RoomCommand,
  type SecureChatConfig,
  type SendBatchCommand,
  type SendBatchResult,
  type SendCommand,
  type SendResult,
  type TranscriptAppendResult,
  type TranscriptBatch,
} from '@securechat/core';

import { conversationKey, isRoomName, MAX_MESSAGE_ID, parseMessageId } from './conversation.util';
import { MessageRepository, type NewMessage, type StoreOutcome } from './message.repository';
import { describeError } from './relay-failure.error';
import { RoomRepository } from './room.repository';
import { TranscriptRepository } from './transcript.repository';
import { SendQuotaRepository } from './send-quota.repository';
import { UserDirectoryRepository } from './user-directory.repository';

type Recipients =
  | { readonly ok: true; readonly recipients: string[] }
  | { readonly ok: false; readonly code: 'not_found' | 'forbidden'; readonly message: string };

/**
 * How long a direct-message recipient found to exist (and not deleted) is taken on trust
 * before it is looked up again. The lookup was one query per send outside the group commit,
 * the relay's largest cost after the commit itself. The staleness this allows is harmless:
 * for a few seconds after an account is deleted, a message to it is still stored pending
 * (and never delivered, since the account cannot log in). Rooms are never cached: a member
 * who left must stop receiving at once.
 */
export const RECIPIENT_CACHE_TTL_MS = 5_000;
/** Most recipients remembered (oldest forgotten first): the bound on memory. */
export const RECIPIENT_CACHE_MAX = 10_000;

@Injectable()
export class RelayService {
  readonly #logger = new Logger(RelayService.name);
  /** username → time it was last confirmed to exist, in insertion (and so age) order. */
  readonly #knownRecipients = new Map<string, number>();

  constructor(
    private readonly messages: MessageRepository,
    private readonly rooms: RoomRepository,
    private readonly users: UserDirectoryRepository,
    private readonly transcripts: TranscriptRepository,
    private readonly fanout: FanoutPort,
    private readonly clock: ClockRepository,
    private readonly quotas: SendQuotaRepository,
    @Inject(CONFIG) private readonly config: SecureChatConfig,
  ) {}

  /**
   * SECURECHAT_ROOM_HISTORY; `since-join` also when a config leaves it out (tests build
   * partial ones): showing a room's past to newcomers is the choice an operator must make.
   */
  get roomHistory(): 'since-join' | 'all' {
    return this.config.roomHistory ?? 'since-join';
  }

  /**
   * docs/PROTOCOL.md §7.4 send: checks the recipient, stores the message with one pending delivery
   * per recipient user (durable before this resolves: the gateway's `ack` relies on it), then
   * hands it to the fan-out. A repeated (from, id) answers the first msg_id with
   * `duplicate: true` and neither stores nor publishes anything.
   */
  async send(cmd: SendCommand): Promise<SendResult> {
    const target = await this.#recipients(cmd.from, cmd.to);
    if (!target.ok) return target;
    const [quota] = await this.#chargeQuotas([cmd]);
    if (quota !== undefined) return quota;
    return this.#storeAndPublish(cmd, target.recipients);
  }

  /**
   * Consecutive sends of one connection, stored in their order (PROTOCOL.md §6: per sender, the
   * order the client sent). Recipients are looked up together, then the sender's quota is charged
   * for the sends that would be stored (the longest run it allows, in order; the rest are
   * `rate_limited` and not stored); the accepted sends are then stored as one unit of group
   * commit (one transaction: all or none), and their events published right after the commit,
   * in storage order like `send`. One result per send; a storage failure fails the whole
   * request (the gateway answers each `internal`, and the client resends: sends are
   * idempotent).
   */
  async sendBatch(cmd: SendBatchCommand): Promise<SendBatchResult> {
    const targets = await Promise.all(
      cmd.sends.map((send) => this.#recipients(send.from, send.to)),
    );
    const addressed = cmd.sends.flatMap((send, i) => {
      const target = targets[i]!;
      return target.ok ? [{ send, recipients: target.recipients, index: i }] : [];
    });
    const quotas = await this.#chargeQuotas(addressed.map(({ send }) => send));
    const results: (SendResult | undefined)[] = targets.map((t) => (t.ok ? undefined : t));
    const accepted = addressed.filter(({ index }, k) => {
      results[index] = quotas[k];
      return quotas[k] === undefined;
    });
    // One transaction for the run (MessageRepository.storeAll): a failure stores none of it.
    const outcomes = await this.messages.storeAll(
      accepted.map(({ send, recipients }) => newMessage(send, recipients)),
    );
    // Nothing awaited between the commit and these publishes: storage order (docs/PROTOCOL.md §7.4
    // "Order").
    await Promise.all(
      outcomes.map((outcome, i) => this.#publishStored(outcome, accepted[i]!.recipients)),
    );
    accepted.forEach(({ index }, i) => {
      const { message, duplicate } = outcomes[i]!;
      results[index] = { ok: true, msgId: message.msg_id, serverTs: message.server_ts, duplicate };
    });
    return { results: results.map((result) => result!) };
  }

  /**
   * Charges each sender's quota for its sends, in order (SendQuotaRepository.charge): one
   * entry per send, `undefined` where it may be stored, a `rate_limited` result where not.
   */
  async #chargeQuotas(sends: readonly SendCommand[]): Promise<(SendResult | undefined)[]> {
    const bySender = new Map<string, number[]>();
    sends.forEach((send, i) => {
      const indexes = bySender.get(send.from);
      if (indexes === undefined) bySender.set(send.from, [i]);
      else indexes.push(i);
    });
    const now = this.clock.now();
    const out: (SendResult | undefined)[] = new Array<SendResult | undefined>(sends.length);
    await Promise.all(
      [...bySender].map(async ([from, indexes]) => {
        const sizes = indexes.map((i) => Buffer.byteLength(sends[i]!.body, 'utf8'));
        const { accepted, retryAfter } = await this.quotas.charge(from, sizes, now);
        for (const i of indexes.slice(accepted)) {
          out[i] = {
            ok: false,
            code: 'rate_limited',
            message: 'sending quota exceeded',
            retryAfter,
          };
        }
      }),
    );
    return out;
  }

  async #storeAndPublish(cmd: SendCommand, recipients: string[]): Promise<SendResult> {
    const outcome = await this.messages.store(newMessage(cmd, recipients));
    // Group commit resolves its callers in storage order and nothing is awaited between here
    // and the publish call, so events leave in storage order (docs/PROTOCOL.md §7.4 "Order").
    await this.#publishStored(outcome, recipients);
    const { message, duplicate } = outcome;
    return { ok: true, msgId: message.msg_id, serverTs: message.server_ts, duplicate };
  }

  /**
   * Hands a stored message to the fan-out. Only after the commit: a recipient must never see a
   * message that could still be lost. A duplicate was published when it was first stored.
   * Calls `publish` synchronously, before any await, so callers keep the storage order.
   */
  #publishStored(outcome: StoreOutcome, recipients: string[]): Promise<void> {
    if (outcome.duplicate || recipients.length === 0) return Promise.resolve();
    return this.#publish({ recipients, message: outcome.message });
  }

  /**
   * docs/PROTOCOL.md §7.4: marks the delivery done for this user if it is pending. Anything else
   * (unknown id, another user's message, already delivered, not a msg_id at all) is silently
   * ignored.
   */
  async delivered(cmd: DeliveredCommand): Promise<DeliveredResult> {
    const id = parseMessageId(cmd.msgId);
    if (id === undefined) return { ok: true, marked: false };
    const marked = await this.messages.markDelivered(cmd.username, id, new Date(this.clock.now()));
    return { ok: true, marked };
  }

  /**
   * A run of one session's confirmations (PROTOCOL.md §6 `delivered`), each marked as `delivered`
   * would; the repository group-commits them into one UPDATE.
   */
  async deliveredBatch(cmd: DeliveredBatchCommand): Promise<DeliveredBatchResult> {
    const results = await Promise.all(
      cmd.msgIds.map((msgId) => this.delivered({ username: cmd.username, msgId })),
    );
    return { ok: true, marked: results.filter((r) => r.marked).length };
  }

  /**
   * docs/PROTOCOL.md §7.4 "Redelivery": the user's unconfirmed messages, oldest first, after
   * `after`.
   */
  async pending(q: PendingQuery): Promise<PendingResult> {
    let after: bigint | undefined;
    if (q.after !== undefined) {
      if (!/^[0-9]+$/.test(q.after)) throw new Error('pending: after is not a msg_id');
      after = BigInt(q.after);
      // Past the largest id there is nothing left to page through.
      if (after >= MAX_MESSAGE_ID) return { messages: [] };
    }
    const messages = await this.messages.pending(q.username, after, q.limit);
    if (q.maxBytes === undefined) return { messages };
    // The first message always, so a page is never empty while messages are pending.
    let bytes = 0;
    const cut = messages.findIndex((message, i) => {
      bytes += Buffer.byteLength(message.body, 'utf8');
      return i > 0 && bytes > q.maxBytes!;
    });
    return cut === -1 ? { messages } : { messages: messages.slice(0, cut), more: true };
  }

  /**
   * docs/PROTOCOL.md §7.4 "Rooms": creates the room when needed and adds the caller; idempotent.
   */
  async join(cmd: RoomCommand): Promise<JoinResult> {
    const members = await this.rooms.join(cmd.room, cmd.username);
    return { ok: true, room: cmd.room, members };
  }

  /**
   * docs/PROTOCOL.md §7.4 "Rooms": removes the caller; `not_found` when the caller is not a member.
   */
  async leave(cmd: RoomCommand): Promise<LeaveResult> {
    const left = await this.rooms.leave(cmd.room, cmd.username);
    return left
      ? { ok: true, room: cmd.room }
      : { ok: false, code: 'not_found', message: 'not a member of this room' };
  }

  /**
   * docs/PROTOCOL.md §7.4 "History": the `limit` most recent messages of the conversation before
   * `before`, oldest first. A room needs membership (`forbidden`, docs/PROTOCOL.md §10 item 13); a
   * user needs to exist (`not_found`), deleted or not, since a deleted account's messages stay.
   * Marks nothing delivered.
   *
   * A room's history starts at the caller's latest join unless SECURECHAT_ROOM_HISTORY=all
   * (docs/PROTOCOL.md §10 item 24): the messages stamped (`server_ts`) at or after its
   * `joined_at`, both from the relay's clock (RoomRepository.join), cut as
   * MessageRepository.history describes. A time rather than a msg_id, because room_members
   * records only when a member joined. These are the messages the member sent or was sent: a
   * send reads the room's members before it is stored, and only they get a delivery, so
   * nothing from before a join is delivered to the newcomer either. The edge is a send
   * concurrent with the join: one stamped before the join's stamp is neither shown nor
   * delivered; one stamped after it whose members were read before the join committed is shown
   * here though never delivered. With several relays the boundary also moves by the skew
   * between their clocks.
   */
  async history(q: HistoryQuery): Promise<HistoryResult> {
    let since: number | undefined;
    if (isRoomName(q.with)) {
      const joinedAt = await this.rooms.joinedAt(q.with, q.username);
      if (joinedAt === undefined) {
        return { ok: false, code: 'forbidden', message: 'not a member of this room' };
      }
      if (this.roomHistory === 'since-join') since = joinedAt;
    } else if (!(await this.users.find(q.with))) {
      return { ok: false, code: 'not_found', message: 'no such user' };
    }

    let before: bigint | undefined;
    if (q.before !== undefined) {
      // msg_ids are opaque to clients (docs/PROTOCOL.md §7.2), so `before` may be any string
      // (docs/PROTOCOL.md §10.1 leaves the answer open). Ours: a text that is no msg_id of ours
      // precedes nothing, so the page is empty and a client paging backwards stops; a number past
      // every id bounds nothing.
      if (!/^[0-9]+$/.test(q.before)) return { ok: true, with: q.with, messages: [] };
      const value = BigInt(q.before);
      before = value > MAX_MESSAGE_ID ? undefined : value;
    }
    const messages = await this.messages.history(
      conversationKey(q.username, q.with),
      before,
      q.limit,
      since,
    );
    return { ok: true, with: q.with, messages };
  }

  /**
   * docs/PROTOCOL.md §8: stores a gateway's batch of transcript opens, records and closes
   * (append-only).
   */
  transcriptAppend(batch: TranscriptBatch): Promise<TranscriptAppendResult> {
    return this.transcripts.append(batch);
  }

  /**
   * docs/PROTOCOL.md §7.4 "Recipients": DM → the user (existing, not deleted); room → members but
   * the sender.
   */
  async #recipients(from: string, to: string): Promise<Recipients> {
    if (isRoomName(to)) {
      // A room that does not exist has no members, so this is `forbidden` as well (docs/PROTOCOL.md
      // §10.1 leaves the code open; answering like a private room reveals nothing about it).
      const members = await this.rooms.members(to);
      if (!members.includes(from)) {
        return { ok: false, code: 'forbidden', message: 'not a member of this room' };
      }
      return { ok: true, recipients: members.filter((member) => member !== from) };
    }
    const now = this.clock.now();
    const confirmedAt = this.#knownRecipients.get(to);
    if (confirmedAt !== undefined && now - confirmedAt < RECIPIENT_CACHE_TTL_MS) {
      return { ok: true, recipients: [to] };
    }
    const user = await this.users.find(to);
    if (!user || user.deleted) {
      this.#knownRecipients.delete(to);
      return { ok: false, code: 'not_found', message: 'no such user' };
    }
    this.#rememberRecipient(to, now);
    return { ok: true, recipients: [to] };
  }

  #rememberRecipient(username: string, now: number): void {
    this.#knownRecipients.delete(username);
    this.#knownRecipients.set(username, now);
    if (this.#knownRecipients.size > RECIPIENT_CACHE_MAX) {
      const oldest = this.#knownRecipients.keys().next().value;
      if (oldest !== undefined) this.#knownRecipients.delete(oldest);
    }
  }

  /**
   * Fan-out is at most once (FanoutPort): if it fails, the message is still stored and
   * pending, so its recipients get it at their next login and the sender still gets its ack.
   * Calls `publish` synchronously, before any await, to keep the storage order.
   */
  async #publish(event: FanoutEvent): Promise<void> {
    try {
      await this.fanout.publish(event);
    } catch (error) {
      this.#logger.warn(
        `fan-out of msg_id ${event.message.msg_id} failed (stays pending): ${describeError(error)}`,
      );
    }
  }
}

/** A send the service has authorised, as the repository stores it. */
function newMessage(cmd: SendCommand, recipients: string[]): NewMessage {
  return {
    sender: cmd.from,
    clientId: cmd.id,
    recipient: cmd.to,
    conversation: conversationKey(cmd.from, cmd.to),
    body: cmd.body,
    clientTs: cmd.ts,
    sig: cmd.sig,
    recipients,
  };
}
