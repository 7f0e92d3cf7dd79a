/**
 * What the chat screen shows, without any I/O: conversations (people and rooms) with unread
 * counts, each with a bounded list of lines, the current conversation, the input line and the
 * connection status. The terminal UI renders it; the line mode prints its new lines.
 */
import { type IncomingMessage, type MessageVerification } from '@securechat/client';

import { sanitizeForTerminal, sanitizeName } from './sanitize';

/** Lines kept per conversation, and conversations kept: the bound on memory. */
export const MAX_LINES = 1000;
export const MAX_CONVERSATIONS = 200;
/** The pseudo-conversation for status and command output. */
export const STATUS_KEY = '*';

export type LineState =
  | { readonly kind: 'incoming'; readonly verification: MessageVerification }
  | {
      readonly kind: 'own';
      readonly sent: 'sending' | 'stored' | 'failed';
      readonly detail?: string;
    }
  | { readonly kind: 'info' }
  | { readonly kind: 'error' };

export interface ChatLine {
  /** ms since the epoch: server time for messages, local time otherwise. */
  readonly ts: number;
  /** Already sanitized for the terminal, as a name (sanitizeName). */
  readonly from?: string;
  /** Already sanitized for the terminal. */
  readonly text: string;
  state: LineState;
  /** Set for own messages once acked. */
  msgId?: string;
}

export interface Conversation {
  /** A username or `#room`, or STATUS_KEY. */
  readonly key: string;
  readonly lines: ChatLine[];
  unread: number;
  /** Its recent history was asked for (once, when it was first opened); /history goes further. */
  historyRequested: boolean;
}

export type ChatEvent =
  | { readonly type: 'line'; readonly conversation: string; readonly line: ChatLine }
  | { readonly type: 'updated'; readonly conversation: string; readonly line: ChatLine }
  /** `tick`: the same state, counted down (e.g. the seconds to the next attempt). */
  | { readonly type: 'status'; readonly status: string; readonly tick?: true }
  | { readonly type: 'view' };

/** What a verification state looks like next to a message. */
export function verificationMark(state: LineState): string {
  switch (state.kind) {
    case 'incoming':
      switch (state.verification) {
        case 'verified':
          return '✓';
        case 'bad_signature':
          return '⚠ BAD SIGNATURE';
        case 'key_changed':
          return '⚠ KEY CHANGED';
        case 'unknown_sender_key':
          return '⚠ UNVERIFIED';
      }
      break;
    case 'own':
      switch (state.sent) {
        case 'sending':
          return '…';
        case 'stored':
          return '✓';
        case 'failed':
          return `✗ ${state.detail ?? 'not sent'}`;
      }
      break;
    case 'info':
      return '';
    case 'error':
      return '!';
  }
}

export class ChatModel {
  readonly #conversations = new Map<string, Conversation>();
  readonly #listeners = new Set<(event: ChatEvent) => void>();
  #current = STATUS_KEY;
  #status = 'connecting';
  input = '';
  /** Lines scrolled up from the bottom of the current conversation. */
  scroll = 0;

  constructor(readonly me: string) {
    this.#conversations.set(STATUS_KEY, {
      key: STATUS_KEY,
      lines: [],
      unread: 0,
      historyRequested: true,
    });
  }

  onEvent(listener: (event: ChatEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get status(): string {
    return this.#status;
  }

  set status(status: string) {
    this.#status = status;
    this.#emit({ type: 'status', status });
  }

  /** A new text for the same state: redrawn on the screen, not printed again by line mode. */
  tickStatus(status: string): void {
    this.#status = status;
    this.#emit({ type: 'status', status, tick: true });
  }

  get current(): string {
    return this.#current;
  }

  /** Conversations in list order: status first, then by first appearance. */
  get conversations(): readonly Conversation[] {
    return [...this.#conversations.values()];
  }

  conversation(key: string): Conversation | undefined {
    return this.#conversations.get(key);
  }

  /** The conversation a delivery belongs to: the room, or the other person. */
  conversationOf(from: string, to: string): string {
    if (to.startsWith('#')) return to;
    return from === this.me ? to : from;
  }

  open(key: string): Conversation {
    let conversation = this.#conversations.get(key);
    if (conversation === undefined) {
      if (this.#conversations.size >= MAX_CONVERSATIONS) this.#evictOldest();
      conversation = { key, lines: [], unread: 0, historyRequested: false };
      this.#conversations.set(key, conversation);
    }
    return conversation;
  }

  select(key: string): void {
    const conversation = this.open(key);
    this.#current = key;
    conversation.unread = 0;
    this.scroll = 0;
    this.#emit({ type: 'view' });
  }

  /** Next (+1) or previous (-1) conversation in list order, wrapping around. */
  cycle(step: 1 | -1): void {
    const keys = [...this.#conversations.keys()];
    const index = keys.indexOf(this.#current);
    const next = keys[(index + step + keys.length) % keys.length] ?? STATUS_KEY;
    this.select(next);
  }

  close(key: string): void {
    if (key === STATUS_KEY) return;
    this.#conversations.delete(key);
    if (this.#current === key) this.select(STATUS_KEY);
    else this.#emit({ type: 'view' });
  }

  /**
   * A delivery, live or from history; a msg_id already shown is not shown twice. Tells
   * whether it was added.
   */
  addIncoming(message: IncomingMessage): boolean {
    const { deliver } = message;
    const key = this.conversationOf(deliver.from, deliver.to);
    const conversation = this.open(key);
    if (conversation.lines.some((line) => line.msgId === deliver.msg_id)) return false;
    const own = deliver.from === this.me;
    const line: ChatLine = {
      ts: deliver.server_ts,
      // The server chooses `from` as freely as the body: it reaches the terminal sanitized too,
      // as a name, so that no look-alike or invisible character can pass for someone else.
      from: sanitizeName(deliver.from),
      text: sanitizeForTerminal(deliver.body),
      state: own
        ? { kind: 'own', sent: 'stored' }
        : { kind: 'incoming', verification: message.verification },
      msgId: deliver.msg_id,
    };
    this.#insertSorted(conversation, line);
    if (key !== this.#current) conversation.unread += 1;
    this.#emit({ type: 'line', conversation: key, line });
    return true;
  }

  /** The msg_id of the oldest message shown in a conversation: where /history goes on. */
  oldestMsgId(key: string): string | undefined {
    return this.#conversations.get(key)?.lines.find((line) => line.msgId !== undefined)?.msgId;
  }

  /** Our message, shown at once as "sending" until the server acks it. */
  addOwn(to: string, body: string, now: number): ChatLine {
    const line: ChatLine = {
      ts: now,
      from: sanitizeName(this.me),
      text: sanitizeForTerminal(body),
      state: { kind: 'own', sent: 'sending' },
    };
    this.#append(this.open(to), line);
    this.#emit({ type: 'line', conversation: to, line });
    return line;
  }

  settleOwn(to: string, line: ChatLine, outcome: { msgId: string } | { error: string }): void {
    // A failure's reason may quote the server's message: sanitized like a body.
    line.state =
      'msgId' in outcome
        ? { kind: 'own', sent: 'stored' }
        : { kind: 'own', sent: 'failed', detail: sanitizeForTerminal(outcome.error) };
    if ('msgId' in outcome) line.msgId = outcome.msgId;
    this.#emit({ type: 'updated', conversation: to, line });
  }

  info(text: string, key: string = STATUS_KEY, now = Date.now()): void {
    this.#note(key, text, { kind: 'info' }, now);
  }

  error(text: string, key: string = STATUS_KEY, now = Date.now()): void {
    this.#note(key, text, { kind: 'error' }, now);
  }

  #note(key: string, text: string, state: LineState, now: number): void {
    const line: ChatLine = { ts: now, text: sanitizeForTerminal(text), state };
    this.#append(this.open(key), line);
    this.#emit({ type: 'line', conversation: key, line });
  }

  #append(conversation: Conversation, line: ChatLine): void {
    conversation.lines.push(line);
    if (conversation.lines.length > MAX_LINES) conversation.lines.shift();
  }

  /** History arrives after live messages: keep each conversation in server-time order. */
  #insertSorted(conversation: Conversation, line: ChatLine): void {
    const lines = conversation.lines;
    let index = lines.length;
    while (index > 0 && (lines[index - 1]?.ts ?? 0) > line.ts) index -= 1;
    lines.splice(index, 0, line);
    if (lines.length > MAX_LINES) lines.shift();
  }

  #evictOldest(): void {
    for (const key of this.#conversations.keys()) {
      if (key !== STATUS_KEY && key !== this.#current) {
        this.#conversations.delete(key);
        return;
      }
    }
  }

  #emit(event: ChatEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
