/**
 * The conversations the page shows, without any DOM: direct messages by the other user's name,
 * rooms by their `#name`; messages deduplicated by `msg_id` (delivery is at least once,
 * docs/PROTOCOL.md §7.4) and by the signed `(from, id)`, and kept in server order; unread counts for the conversations not open.
 */
import { type Deliver } from '@securechat/protocol';

import { type Verification } from './peer-verifier';

export type Mark = Verification | 'own' | 'sending' | 'refused' | 'checking';

export interface ChatMessage {
  /** The server's id once known; own messages have only `localId` until acknowledged. */
  msgId?: string;
  readonly localId: string;
  /** The client id the author signed (docs/PROTOCOL.md §7.3). */
  readonly id: string;
  readonly from: string;
  readonly body: string;
  serverTs: number;
  mark: Mark;
  /** Why a send was refused. */
  note?: string;
}

export interface Conversation {
  readonly name: string;
  readonly messages: ChatMessage[];
  unread: number;
  historyLoaded: boolean;
}

export class ChatState {
  readonly #conversations = new Map<string, Conversation>();
  #active: string | undefined;
  #listeners: (() => void)[] = [];

  constructor(readonly me: string) {}

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  changed(): void {
    for (const listener of this.#listeners) listener();
  }

  get active(): string | undefined {
    return this.#active;
  }

  conversations(): Conversation[] {
    return [...this.#conversations.values()];
  }

  conversation(name: string): Conversation {
    let conversation = this.#conversations.get(name);
    if (conversation === undefined) {
      conversation = { name, messages: [], unread: 0, historyLoaded: false };
      this.#conversations.set(name, conversation);
      this.changed();
    }
    return conversation;
  }

  open(name: string): Conversation {
    const conversation = this.conversation(name);
    this.#active = name;
    conversation.unread = 0;
    this.changed();
    return conversation;
  }

  /** Which conversation a message belongs to, seen from this user. */
  conversationOf(deliver: Pick<Deliver, 'from' | 'to'>): string {
    if (deliver.to.startsWith('#')) return deliver.to;
    return deliver.from === this.me ? deliver.to : deliver.from;
  }

  /**
   * Adds a delivered (or history) message unless its `msg_id`, or its author's signed id, is
   * there already; resolves the
   * message, new or existing. `live` counts it as unread when its conversation is not open.
   */
  addDelivered(deliver: Deliver, live: boolean): { message: ChatMessage; added: boolean } {
    const conversation = this.conversation(this.conversationOf(deliver));
    const existing = conversation.messages.find(
      (m) => m.msgId === deliver.msg_id || (m.from === deliver.from && m.id === deliver.id),
    );
    if (existing) return { message: existing, added: false };
    const message: ChatMessage = {
      msgId: deliver.msg_id,
      localId: deliver.msg_id,
      id: deliver.id,
      from: deliver.from,
      body: deliver.body,
      serverTs: deliver.server_ts,
      mark: 'checking',
    };
    conversation.messages.push(message);
    conversation.messages.sort((a, b) => a.serverTs - b.serverTs);
    if (live && this.#active !== conversation.name && deliver.from !== this.me) {
      conversation.unread += 1;
    }
    this.changed();
    return { message, added: true };
  }

  addOwn(to: string, body: string, localId: string): ChatMessage {
    const message: ChatMessage = {
      localId,
      id: localId,
      from: this.me,
      body,
      serverTs: Number.MAX_SAFE_INTEGER,
      mark: 'sending',
    };
    this.conversation(to).messages.push(message);
    this.changed();
    return message;
  }

  acknowledged(to: string, message: ChatMessage, msgId: string, serverTs: number): void {
    const conversation = this.conversation(to);
    // History may have brought the same message in meanwhile.
    const duplicate = conversation.messages.findIndex(
      (m) =>
        m !== message && (m.msgId === msgId || (m.from === message.from && m.id === message.id)),
    );
    if (duplicate >= 0) conversation.messages.splice(duplicate, 1);
    message.msgId = msgId;
    message.serverTs = serverTs;
    message.mark = 'own';
    conversation.messages.sort((a, b) => a.serverTs - b.serverTs);
    this.changed();
  }

  setMark(message: ChatMessage, mark: Mark, note?: string): void {
    message.mark = mark;
    if (note !== undefined) message.note = note;
    this.changed();
  }
}
