/**
 * Connects the chat model to a SecureChatClient: incoming messages and state changes go into
 * the model, typed lines become requests. Failures of one request are shown in the
 * conversation and never end the chat; only /quit, end of input or a final connection failure
 * do.
 */
import {
  ClientRequestError,
  type IncomingMessage,
  type PeerKeyStore,
  type SecureChatClient,
} from '@securechat/client';

import { type ChatModel, STATUS_KEY } from './chat-model';
import { CHAT_HELP, type ChatInput, parseChatInput } from './chat-input';
import { sanitizeName } from './sanitize';

export interface ChatControllerOptions {
  readonly client: SecureChatClient;
  readonly model: ChatModel;
  readonly peerKeys: PeerKeyStore;
  /** Called for /quit. */
  readonly quit: () => void;
  readonly now?: () => number;
}

function describe(error: unknown): string {
  if (error instanceof ClientRequestError) return `${error.code}: ${error.peerMessage}`;
  return error instanceof Error ? error.message : String(error);
}

export class ChatController {
  readonly #client: SecureChatClient;
  readonly #model: ChatModel;
  readonly #peerKeys: PeerKeyStore;
  readonly #quit: () => void;
  readonly #now: () => number;

  constructor(options: ChatControllerOptions) {
    this.#client = options.client;
    this.#model = options.model;
    this.#peerKeys = options.peerKeys;
    this.#quit = options.quit;
    this.#now = options.now ?? Date.now;
    this.#client.on('message', (message: IncomingMessage) => this.#model.addIncoming(message));
    this.#client.on('state', (state, detail) => {
      switch (state) {
        case 'connected':
          this.#model.status = 'connected';
          this.#model.info(`connected (session ${detail.sessionId ?? '?'})`);
          break;
        case 'reconnecting':
          this.#model.status = `reconnecting (attempt ${detail.attempt ?? '?'})…`;
          this.#model.info(
            `connection lost${detail.error ? ` (${detail.error.message})` : ''}; ` +
              `reconnecting in ${Math.round((detail.delayMs ?? 0) / 100) / 10} s`,
          );
          break;
        case 'closed':
          this.#model.status = 'closed';
          if (detail.error) this.#model.error(`disconnected: ${detail.error.message}`);
          break;
        case 'connecting':
        case 'idle':
          this.#model.status = state;
          break;
      }
    });
    this.#client.on('error', (error) => this.#model.error(error.message));
  }

  /** Handles one typed line; resolves when its request is answered (or failed). */
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
        model.select(input.to);
        if (input.text !== undefined) await this.#send(input.to, input.text);
        return;
      case 'join':
        try {
          const joined = await this.#client.join(input.room);
          model.select(joined.room);
          // Names from the server: shown as names (notes sanitize the rest of the text).
          const members = joined.members.map(sanitizeName).join(', ');
          model.info(`joined ${sanitizeName(joined.room)}; members: ${members}`, joined.room);
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
          model.error(`leave ${sanitizeName(room)}: ${describe(error)}`, model.current);
        }
        return;
      }
      case 'history':
        await this.#history(input.limit);
        return;
      case 'whois':
        await this.#whois(input.user);
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

  async #history(limit: number): Promise<void> {
    const model = this.#model;
    const key = model.current;
    if (key === STATUS_KEY) {
      model.error('open a conversation first (/msg NAME or /join #room)', key);
      return;
    }
    try {
      const history = await this.#client.history(key, { limit });
      for (const deliver of history.messages) {
        const verification = await this.#client.verifyDeliver(deliver);
        model.addIncoming({ deliver, ...verification });
      }
      model.info(`loaded ${history.messages.length} earlier messages`, key);
    } catch (error) {
      model.error(`history: ${describe(error)}`, key);
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
