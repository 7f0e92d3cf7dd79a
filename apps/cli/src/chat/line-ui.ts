/**
 * The chat without a screen: typed lines (or a script's) in on stdin, one line per event out
 * on stdout — `[bob] 12:01 alice ✓: hi`. Used when stdin or stdout is not a terminal, or with
 * --line-mode.
 */
import { createInterface, type Interface } from 'node:readline';

import { type CliInput, type CliOutput, writeLine } from '../cli-io';
import { type ChatController } from './chat-controller';
import { parseChatInput } from './chat-input';
import { type ChatEvent, type ChatModel, STATUS_KEY } from './chat-model';
import { formatLine } from './chat-screen';
import { sanitizeForTerminal, sanitizeName } from './sanitize';

export class LineUi {
  #readline: Interface | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Lines are handled one after another, so a script's order is kept. */
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly input: CliInput,
    private readonly output: CliOutput,
    private readonly model: ChatModel,
    private readonly controller: ChatController,
    /** End of input: finish what is queued, then quit. */
    private readonly quit: () => void,
  ) {}

  start(): void {
    this.#unsubscribe = this.model.onEvent((event) => this.#print(event));
    this.#readline = createInterface({ input: this.input, terminal: false });
    this.#readline.on('line', (line) => {
      this.#chain = this.#chain.then(async () => {
        // Histories come in the background; a script's /quit waits for them to be shown.
        if (parseChatInput(line).kind === 'quit') await this.controller.settled();
        await this.controller.submit(line);
      });
    });
    this.#readline.on('close', () => {
      void this.#chain.then(() => this.controller.settled()).then(() => this.quit());
    });
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#readline?.close();
  }

  #print(event: ChatEvent): void {
    switch (event.type) {
      case 'line':
      case 'updated': {
        // An own message is printed once, when the server has stored it (or refused it).
        if (event.line.state.kind === 'own' && event.line.state.sent === 'sending') return;
        const where =
          event.conversation === STATUS_KEY ? '' : `[${sanitizeName(event.conversation)}] `;
        writeLine(this.output, `${where}${formatLine(event.line)}`);
        return;
      }
      case 'status':
        // A countdown would print a line a second for as long as the server is away.
        if (event.tick === true) return;
        writeLine(this.output, `* status: ${sanitizeForTerminal(event.status)}`);
        return;
      case 'view':
        return;
    }
  }
}
