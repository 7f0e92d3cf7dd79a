/**
 * What the page does with the messages the server hands it, without any DOM: each `deliver`
 * (live, or in a `history` answer) is refused unless its names are well formed — `from` a
 * username, `to` a username or a `#room` (docs/PROTOCOL.md constants: look-alike names, bidi or
 * zero-width characters never get as far as a mark) — and it was addressed to the conversation it
 * is shown in: a direct message to this user (or, in history, from this user to the other party
 * asked for), a room message to a room this page joined. Then it is stored and verified in the
 * background; a check that found no key (no connection yet, a failed `get_key`) runs again when
 * the next session starts.
 */
import { type Deliver, ROOM_PATTERN, USERNAME_PATTERN } from '@securechat/protocol';

import { type ChatMessage, type ChatState } from './chat-state';
import { type Verification } from './peer-verifier';

/** Where a message came from: a live delivery, or the `history` asked for one conversation. */
export type Origin = { readonly live: true } | { readonly live: false; readonly with: string };

export interface Verifier {
  verify(deliver: Deliver): Promise<Verification>;
  reset(): void;
}

/** Why `deliver` is not shown (undefined: it is). */
export function refusal(
  deliver: Pick<Deliver, 'from' | 'to'>,
  me: string,
  origin: Origin,
  rooms: ReadonlySet<string>,
): string | undefined {
  const { from, to } = deliver;
  if (!USERNAME_PATTERN.test(from)) return 'the sender is not a valid username';
  if (ROOM_PATTERN.test(to)) {
    if (!rooms.has(to)) return 'a room this page has not joined';
    if (!origin.live && origin.with !== to) return 'not in the conversation asked for';
    return undefined;
  }
  if (!USERNAME_PATTERN.test(to)) return 'the recipient is neither a username nor a room';
  if (origin.live) return to === me ? undefined : 'not addressed to this user';
  if (from === me && to === origin.with) return undefined;
  if (to === me && from === origin.with) return undefined;
  return 'not in the conversation asked for';
}

export class Inbox {
  readonly #rooms = new Set<string>();
  /** Messages whose check found no key: checked again on the next session. */
  #unknown: { deliver: Deliver; message: ChatMessage }[] = [];

  constructor(
    private readonly state: ChatState,
    private readonly verifier: Verifier,
    private readonly onRefused: (deliver: Deliver, reason: string) => void = () => undefined,
  ) {}

  /** A room this page joined (its messages may be shown). */
  joined(room: string): void {
    this.#rooms.add(room);
  }

  /** A live `deliver`: shown at once (unless refused), verified in the background. */
  onDeliver(deliver: Deliver): void {
    this.#take(deliver, { live: true });
  }

  /** The messages of a `history` answer for `withName` (the conversation asked for). */
  onHistory(withName: string, messages: readonly Deliver[]): void {
    for (const deliver of messages) this.#take(deliver, { live: false, with: withName });
  }

  /** A session began: keys are asked again, and checks that found none run again. */
  onSession(): void {
    this.verifier.reset();
    const retry = this.#unknown;
    this.#unknown = [];
    for (const { deliver, message } of retry) {
      this.state.setMark(message, 'checking');
      void this.#verify(deliver, message);
    }
  }

  #take(deliver: Deliver, origin: Origin): void {
    const reason = refusal(deliver, this.state.me, origin, this.#rooms);
    if (reason !== undefined) {
      this.onRefused(deliver, reason);
      return;
    }
    const { message, added } = this.state.addDelivered(deliver, origin.live);
    if (added) void this.#verify(deliver, message);
  }

  async #verify(deliver: Deliver, message: ChatMessage): Promise<void> {
    let mark: Verification;
    try {
      mark = await this.verifier.verify(deliver);
    } catch {
      mark = 'unknown_sender_key';
    }
    if (mark === 'unknown_sender_key') this.#unknown.push({ deliver, message });
    this.state.setMark(message, mark);
  }
}
