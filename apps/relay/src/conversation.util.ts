/**
 * Pure helpers for the relay's addressing rules (docs/PROTOCOL.md §7.4, §7.5): what a `to` or
 * `with` names, which conversation a message belongs to, and how a `msg_id` maps to a row id.
 */

/** The largest value of a Postgres `bigint`, the type of `messages.id`. */
export const MAX_MESSAGE_ID = 2n ** 63n - 1n;

/** docs/PROTOCOL.md §7.5: a leading `#` means a room; anything else is a username. */
export function isRoomName(target: string): boolean {
  return target.startsWith('#');
}

/**
 * The conversation key history pages through (docs/PROTOCOL.md §7.4 "Order", "History"): the room
 * name for a room; `dm:<a>:<b>` with both usernames sorted for a pair of users, so that both
 * directions of a direct conversation share one key. Usernames cannot contain `:` (docs/PROTOCOL.md
 * §7.5), so the key is unambiguous.
 */
export function conversationKey(from: string, to: string): string {
  if (isRoomName(to)) return to;
  const [a, b] = from <= to ? [from, to] : [to, from];
  return `dm:${a}:${b}`;
}

/**
 * The row id a `msg_id` names, or undefined when the text cannot be one of ours. msg_ids are
 * opaque to clients (docs/PROTOCOL.md §7.2), so a client may send anything here; the caller decides
 * what an invalid one means.
 */
export function parseMessageId(text: string): bigint | undefined {
  if (!/^[0-9]{1,19}$/.test(text)) return undefined;
  const id = BigInt(text);
  return id >= 1n && id <= MAX_MESSAGE_ID ? id : undefined;
}
