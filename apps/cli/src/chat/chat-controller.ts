/**
 * Connects the chat model to a SecureChatClient: incoming messages and state changes go into
 * the model, typed lines become requests. Failures of one request are shown in the
 * conversation and never end the chat; only /quit, end of input or a final connection failure
 * do (a lost connection is retried, and shown as "offline" meanwhile).
 */
import {
  ClientRequestError,
  type IncomingMessage,
  type JoinedRoomsStore,
  type PeerKeyStore,
  type SecureChatClient,
  trustPeerKey,
} from '@securechat/client';

import { type ChatModel, type Conversation, STATUS_KEY } from './chat-model';
import { CHAT_HELP, type ChatInput, HISTORY_DEFAULT, parseChatInput } from './chat-input';
import { sanitizeName } from './sanitize';

/** Messages shown when a conversation is first opened: a screenful and some. */
export const RECENT_HISTORY = HISTORY_DEFAULT;

export interface ChatControllerOptions {
  readonly client: SecureChatClient;
  readonly model: ChatModel;
  readonly peerKeys: PeerKeyStore;
  /** Where joined rooms are remembered (per server and user); none: they are not. */
  readonly joinedRooms?: JoinedRoomsStore;
  /** Called for /quit. */
  readonly quit: () => void;
  readonly now?: () => number;
}

function describe(error: unknown): string {
  if (error instanceof ClientRequestError) return `${error.code}: ${error.peerMessage}`;
  return error instanceof Error ? error.message : String(error);
}

function isRequestError(error: unknown, code: string): boolean {
  return error instanceof ClientRequestError && error.code === code;
}

/** "1 earlier message", "3 earlier messages" (English: the singular for exactly one). */
export function countOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** Whole seconds, rounded up, so that "retrying in 0 s" is never shown while still waiting. */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export class ChatController {
  readonly #client: SecureChatClient;
  readonly #model: ChatModel;
  readonly #peerKeys: PeerKeyStore;
  readonly #joinedRooms: JoinedRoomsStore | undefined;
  readonly #quit: () => void;
  readonly #now: () => number;
  /** The server's key fingerprint, once known: the joined rooms are remembered under it. */
  #server: string | undefined;
  /** While offline: when the next attempt is due, and the timer counting down to it. */
  #retryAt = 0;
  #countdown: NodeJS.Timeout | undefined;
  #offline = false;
  /** The key a plain /trust showed last: the same /trust again is the "yes". */
  #trustShown: { readonly user: string; readonly offered: string } | undefined;
  /** Recent-history loads under way, so that a second look at a conversation waits for it. */
  readonly #loading = new Map<Conversation, Promise<void>>();
  readonly #unsubscribe: () => void;

  constructor(options: ChatControllerOptions) {
    this.#client = options.client;
    this.#model = options.model;
    this.#peerKeys = options.peerKeys;
    this.#joinedRooms = options.joinedRooms;
    this.#quit = options.quit;
    this.#now = options.now ?? Date.now;
    this.#client.on('message', (message: IncomingMessage) => {
      this.#model.addIncoming(message);
    });
    this.#client.on('state', (state, detail) => {
      switch (state) {
        case 'connected':
          this.#stopCountdown();
          this.#offline = false;
          this.#model.status = 'connected';
          this.#model.info(`connected (session ${detail.sessionId ?? '?'})`);
          break;
        case 'reconnecting':
          // One line per outage, not per attempt: the attempts go on for as long as it lasts.
          if (!this.#offline) {
            this.#model.info(
              `connection lost${detail.error ? ` (${detail.error.message})` : ''}; retrying`,
            );
          }
          this.#offline = true;
          this.#retryAt = this.#now() + (detail.delayMs ?? 0);
          this.#model.status = this.#countdownText();
          this.#countdown ??= setInterval(
            () => this.#model.tickStatus(this.#countdownText()),
            1000,
          );
          // A countdown alone must not keep the process alive.
          this.#countdown.unref();
          break;
        case 'closed':
          this.#stopCountdown();
          this.#model.status = 'closed';
          if (detail.error) this.#model.error(`disconnected: ${detail.error.message}`);
          break;
        case 'connecting':
          this.#stopCountdown();
          this.#model.status = this.#offline ? 'offline, reconnecting…' : 'connecting';
          break;
        case 'idle':
          this.#model.status = state;
          break;
      }
    });
    this.#client.on('error', (error) => this.#model.error(error.message));
    // Tab, Ctrl-N or a click of the list select conversations without a command: the first
    // time one is shown, its recent history is fetched.
    this.#unsubscribe = this.#model.onEvent((event) => {
      if (event.type === 'view') void this.#loadRecent(this.#model.current);
    });
  }

  /**
   * Lists the rooms remembered for this user on the server with key fingerprint `server`
   * (known once connected), and remembers joins and leaves under it from now on.
   */
  async restoreRooms(server: string): Promise<void> {
    this.#server = server;
    if (this.#joinedRooms === undefined) return;
    try {
      const rooms = await this.#joinedRooms.list(server, this.#model.me);
      for (const room of rooms) this.#model.open(room);
      if (rooms.length > 0) this.#model.info(`your rooms: ${rooms.map(sanitizeName).join(', ')}`);
    } catch (error) {
      this.#model.error(`joined rooms: ${describe(error)}`);
    }
  }

  /**
   * Resolves once the recent-history loads under way are in (or failed): line mode waits for
   * them before it quits, so that a script's output shows what it asked for.
   */
  async settled(): Promise<void> {
    while (this.#loading.size > 0) await Promise.allSettled(this.#loading.values());
  }

  /** Stops the timers and listeners the controller started. */
  dispose(): void {
    this.#stopCountdown();
    this.#unsubscribe();
  }

  #countdownText(): string {
    return `offline, retrying in ${seconds(this.#retryAt - this.#now())} s`;
  }

  #stopCountdown(): void {
    if (this.#countdown !== undefined) clearInterval(this.#countdown);
    this.#countdown = undefined;
  }

  /**
   * Handles one typed line; resolves when its request is answered (or failed). A conversation's
   * recent history is not waited for: it comes in the background.
   */
  async submit(line: string): Promise<void> {
    await this.execute(parseChatInput(line));
  }

  async execute(input: ChatInput): Promise<void> {
    const model = this.#model;
    switch (input.kind) {
      case 'none':
        return;
      case 'invalid':
        model.error(input.problem, model.current);
        return;
      case 'help':
        for (const text of CHAT_HELP) model.info(text, model.current);
        return;
      case 'quit':
        this.#quit();
        return;
      case 'say':
        if (model.current === STATUS_KEY) {
          model.error('no conversation open: /msg NAME or /join #room first', STATUS_KEY);
          return;
        }
        await this.#send(model.current, input.text);
        return;
      case 'msg':
        // Selected at once: whatever is typed next goes there, not to the previous one.
        this.#openConversation(input.to);
        if (input.text !== undefined) await this.#send(input.to, input.text);
        return;
      case 'join':
        try {
          const joined = await this.#client.join(input.room);
          await this.#remember(joined.room, 'add');
          // Names from the server: shown as names (notes sanitize the rest of the text).
          const members = joined.members.map(sanitizeName).join(', ');
          model.info(`joined ${sanitizeName(joined.room)}; members: ${members}`, joined.room);
          model.select(joined.room); // its recent history is fetched in the background
        } catch (error) {
          model.error(`join ${input.room}: ${describe(error)}`, model.current);
        }
        return;
      case 'leave': {
        const room = input.room ?? (model.current.startsWith('#') ? model.current : undefined);
        if (room === undefined) {
          model.error('not in a room: /leave #room', model.current);
          return;
        }
        try {
          await this.#client.leave(room);
          model.close(room);
          model.info(`left ${sanitizeName(room)}`);
        } catch (error) {
          if (!isRequestError(error, 'not_found')) {
            model.error(`leave ${sanitizeName(room)}: ${describe(error)}`, model.current);
            return;
          }
          // Not a member (left from another client): what the user wanted is already so.
          model.close(room);
          model.info(`left ${sanitizeName(room)} (you were no longer a member)`);
        }
        await this.#remember(room, 'remove');
        return;
      }
      case 'history':
        await this.#history(input.limit);
        return;
      case 'whois':
        await this.#whois(input.user);
        return;
      case 'trust':
        await this.#trust(input.user, input.fingerprint);
        return;
    }
  }

  async #send(to: string, body: string): Promise<void> {
    const line = this.#model.addOwn(to, body, this.#now());
    try {
      const ack = await this.#client.send(to, body);
      this.#model.settleOwn(to, line, { msgId: ack.msgId });
    } catch (error) {
      this.#model.settleOwn(to, line, { error: describe(error) });
    }
  }

  /**
   * Opens and selects a conversation the user asked for, at once; a new one's recent history
   * is fetched in the background (see #loadRecent), which is also how a username is found not
   * to exist or a room not to be ours.
   */
  #openConversation(key: string): void {
    const model = this.#model;
    if (model.conversation(key) === undefined) {
      const previous = model.current;
      model.open(key);
      void this.#loadRecent(key, previous);
    }
    model.select(key);
  }

  /**
   * The recent history of a conversation shown for the first time, once per conversation;
   * resolves when it is in (a load already under way is shared). `openedFrom`: the conversation
   * was opened by /msg just now, from that one (see #refusedAtOpen).
   */
  #loadRecent(key: string, openedFrom?: string): Promise<void> {
    const conversation = this.#model.conversation(key);
    if (conversation === undefined) return Promise.resolve();
    let loading = this.#loading.get(conversation);
    if (loading === undefined && !conversation.historyRequested) {
      conversation.historyRequested = true;
      loading = this.#loadRecentOnce(key, conversation, openedFrom).finally(() =>
        this.#loading.delete(conversation),
      );
      this.#loading.set(conversation, loading);
    }
    return loading ?? Promise.resolve();
  }

  async #loadRecentOnce(
    key: string,
    conversation: Conversation,
    openedFrom: string | undefined,
  ): Promise<void> {
    const model = this.#model;
    try {
      const messages = await this.#fetchHistory(key, { limit: RECENT_HISTORY });
      // Closed meanwhile (/leave): nothing to show it in.
      if (model.conversation(key) !== conversation) return;
      for (const message of messages) model.addIncoming(message);
    } catch (error) {
      if (model.conversation(key) !== conversation) return;
      if (openedFrom !== undefined && this.#refusedAtOpen(key, conversation, openedFrom, error)) {
        if (key.startsWith('#')) await this.#remember(key, 'remove');
        return;
      }
      // Offline too long, or refused for another reason: the conversation stays open.
      model.error(`history: ${describe(error)}`, key);
      if (key.startsWith('#') && isRequestError(error, 'forbidden')) {
        await this.#remember(key, 'remove');
      }
    }
  }

  /**
   * A conversation just opened by /msg whose history was refused because the user does not
   * exist (`not_found`) or the room is not ours (`forbidden`): says so. Unless something was
   * sent to it meanwhile, it leaves no entry behind, and the user is taken back to where they
   * were (if still looking at it). What was sent stays in view with the server's refusal on
   * each line, and the note after it. Tells whether the failure was one of these.
   */
  #refusedAtOpen(
    key: string,
    conversation: Conversation,
    openedFrom: string,
    error: unknown,
  ): boolean {
    const model = this.#model;
    const room = key.startsWith('#');
    if (!isRequestError(error, room ? 'forbidden' : 'not_found')) return false;
    const name = sanitizeName(key);
    const note = room ? `you are not in ${name}: /join ${name} first` : `no such user: ${name}`;
    if (conversation.lines.some((line) => line.state.kind === 'own')) {
      model.error(note, key);
      return true;
    }
    const looking = model.current === key;
    model.close(key);
    if (looking && model.conversation(openedFrom) !== undefined) model.select(openedFrom);
    model.error(note, model.current);
    return true;
  }

  /** /history: the messages before the oldest one shown, verified like live ones. */
  async #history(limit: number): Promise<void> {
    const model = this.#model;
    const key = model.current;
    if (key === STATUS_KEY) {
      model.error('open a conversation first (/msg NAME or /join #room)', key);
      return;
    }
    const before = model.oldestMsgId(key);
    try {
      const messages = await this.#fetchHistory(key, {
        limit,
        ...(before === undefined ? {} : { before }),
      });
      let added = 0;
      for (const message of messages) if (model.addIncoming(message)) added += 1;
      model.info(
        added === 0 ? 'no earlier messages' : `loaded ${countOf(added, 'earlier message')}`,
        key,
      );
    } catch (error) {
      model.error(`history: ${describe(error)}`, key);
    }
  }

  async #fetchHistory(
    key: string,
    options: { limit: number; before?: string },
  ): Promise<IncomingMessage[]> {
    const history = await this.#client.history(key, options);
    const messages: IncomingMessage[] = [];
    for (const deliver of history.messages) {
      messages.push({ deliver, ...(await this.#client.verifyDeliver(deliver)) });
    }
    return messages;
  }

  /** Keeps the joined-rooms store in step; a failure is shown, never fatal. */
  async #remember(room: string, change: 'add' | 'remove'): Promise<void> {
    const store = this.#joinedRooms;
    const server = this.#server;
    if (store === undefined || server === undefined) return;
    try {
      if (change === 'add') await store.add(server, this.#model.me, room);
      else await store.remove(server, this.#model.me, room);
    } catch (error) {
      this.#model.error(`could not remember the rooms you are in: ${describe(error)}`);
    }
  }

  /**
   * Pins a user's current key over the old pin (after a rotation), showing both. The chat has
   * no yes/no prompt: a plain /trust shows the change, and the same /trust again pins the key
   * it showed (a key that changed in between is shown again instead); with a fingerprint
   * checked out of band, that key and no other is pinned at once.
   */
  async #trust(user: string, expected: string | undefined): Promise<void> {
    const model = this.#model;
    const where = model.current;
    try {
      const result = await trustPeerKey({
        username: user,
        store: this.#peerKeys,
        fetchKey: (name) => this.#client.getKey(name),
        ...(expected === undefined ? {} : { expected }),
        confirm: (change) =>
          this.#trustShown?.user === user && this.#trustShown.offered === change.offered,
      });
      const { pinned, offered } = result.change;
      const current = pinned === undefined ? 'no key pinned' : `pinned key ${pinned}`;
      switch (result.status) {
        case 'unchanged':
          model.info(`${user}: already pinned to ${offered}`, where);
          break;
        case 'declined':
          this.#trustShown = { user, offered };
          model.info(`${user}: ${current}`, where);
          model.info(`${user}: the server now gives ${offered}`, where);
          model.info(
            `check it with ${user} out of band, then /trust ${user} again to pin it`,
            where,
          );
          break;
        case 'trusted':
          this.#trustShown = undefined;
          model.info(
            pinned === undefined
              ? `${user}: pinned ${offered} (nothing was pinned before)`
              : `${user}: pinned ${offered}, replacing ${pinned}`,
            where,
          );
          break;
        case 'mismatch':
          model.error(
            `${user}: the server gives ${offered}, not ${result.expected}; nothing changed (${current})`,
            where,
          );
          break;
      }
    } catch (error) {
      model.error(`trust ${user}: ${describe(error)}`, where);
    }
  }

  async #whois(user: string): Promise<void> {
    const model = this.#model;
    try {
      const [answer, pinned] = await Promise.all([
        this.#client.getKey(user),
        this.#peerKeys.get(user),
      ]);
      model.info(
        `${user}: the server gives key ${sanitizeName(answer.fingerprint)}`,
        model.current,
      );
      model.info(
        pinned === undefined
          ? `${user}: no key pinned yet (pinned at their first message)`
          : pinned === answer.fingerprint
            ? `${user}: matches the pinned key`
            : `${user}: ⚠ DIFFERS from the pinned key ${pinned} — verify out of band`,
        model.current,
      );
    } catch (error) {
      model.error(`whois ${user}: ${describe(error)}`, model.current);
    }
  }
}
