/**
 * Draws a ChatState: the sidebar (conversations with unread counts) and the open conversation's
 * messages with their marks. Everything is rebuilt on each change — conversations are small —
 * and all text goes in through textContent.
 */
import { type ChatMessage, type ChatState, type Mark } from '../chat-state';
import { byId, element } from './dom';

const MARK_TEXT: Record<Mark, string> = {
  verified: '✓ verified',
  bad_signature: '✗ bad signature',
  key_changed: '⚠ key changed',
  unknown_sender_key: '? no key for sender',
  own: 'sent',
  sending: 'sending…',
  refused: '✗ refused',
  checking: 'checking…',
};

function messageItem(message: ChatMessage): HTMLLIElement {
  const item = element('li', { 'data-mark': message.mark });
  item.append(
    element('span', { class: 'from' }, message.from),
    element('span', { class: 'body' }, message.body),
    element(
      'span',
      { class: 'mark' },
      message.note ? `${MARK_TEXT[message.mark]}: ${message.note}` : MARK_TEXT[message.mark],
    ),
  );
  return item;
}

export function renderChat(state: ChatState, onSelect: (name: string) => void): void {
  const list = byId('conversations');
  list.replaceChildren(
    ...state.conversations().map((conversation) => {
      const item = element('li', {
        'data-conversation': conversation.name,
        'aria-current': String(conversation.name === state.active),
      });
      item.append(element('span', { class: 'name' }, conversation.name));
      if (conversation.unread > 0) {
        item.append(element('span', { class: 'unread' }, String(conversation.unread)));
      }
      item.addEventListener('click', () => onSelect(conversation.name));
      return item;
    }),
  );
  const active = state.active === undefined ? undefined : state.conversation(state.active);
  byId('conversation-title').textContent = active?.name ?? 'No conversation open';
  byId('messages').replaceChildren(...(active?.messages ?? []).map(messageItem));
}
