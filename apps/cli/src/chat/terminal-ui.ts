/**
 * The full-screen chat on a terminal: alternate screen, raw keyboard input, a redraw of the
 * whole (small) screen on every change, coalesced to one per tick. Restores the terminal on
 * every way out.
 */
import { type CliInput, type CliOutput } from '../cli-io';
import { type ChatController } from './chat-controller';
import { type ChatModel } from './chat-model';
import { renderChat } from './chat-screen';
import { codePoints } from './sanitize';

const ESC = '\u001b[';
/** Longest input line: above any body the server accepts, bounded still. */
const MAX_INPUT_CHARS = 16_384;

export interface TerminalUiOptions {
  readonly input: CliInput;
  readonly output: CliOutput;
  readonly model: ChatModel;
  readonly controller: ChatController;
  /** Ctrl-C, Ctrl-D on an empty line. */
  readonly quit: () => void;
}

export class TerminalUi {
  readonly #options: TerminalUiOptions;
  #scheduled = false;
  #stopped = false;
  /**
   * Submitted lines are handled one after another, in the order typed (as in LineUi): a
   * command still waiting for the server never lets a later line overtake it.
   */
  #chain: Promise<void> = Promise.resolve();
  readonly #unsubscribe: () => void;
  readonly #onData = (chunk: Buffer | string): void => this.#keys(chunk.toString());
  readonly #onResize = (): void => this.#schedule();

  constructor(options: TerminalUiOptions) {
    this.#options = options;
    this.#unsubscribe = options.model.onEvent(() => this.#schedule());
  }

  start(): void {
    const { input, output } = this.#options;
    output.write(`${ESC}?1049h${ESC}H${ESC}2J`);
    input.setRawMode?.(true);
    input.resume();
    input.on('data', this.#onData);
    output.on('resize', this.#onResize);
    this.#draw();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const { input, output } = this.#options;
    this.#unsubscribe();
    input.off('data', this.#onData);
    output.off('resize', this.#onResize);
    input.setRawMode?.(false);
    input.pause();
    output.write(`${ESC}0m${ESC}?25h${ESC}?1049l`);
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#stopped) this.#draw();
    });
  }

  #submit(line: string): void {
    const { model, controller } = this.#options;
    this.#chain = this.#chain
      .then(() => controller.submit(line))
      .catch((error: unknown) => {
        // One line's failure must not stop the ones after it.
        model.error(error instanceof Error ? error.message : String(error));
      });
  }

  #draw(): void {
    const { output, model } = this.#options;
    const screen = renderChat(model, output.columns ?? 80, output.rows ?? 24);
    const [status = '', ...rest] = screen.rows;
    const painted = [`${ESC}7m${status}${ESC}0m`, ...rest.map((row) => highlight(row))];
    output.write(
      `${ESC}?25l${ESC}H${painted.join('\r\n')}` +
        `${ESC}${screen.cursorRow + 1};${screen.cursorColumn + 1}H${ESC}?25h`,
    );
  }

  #keys(data: string): void {
    const { model, quit } = this.#options;
    let rest = data;
    while (rest.length > 0) {
      // eslint-disable-next-line no-control-regex -- terminal escape sequences are the input
      const sequence = /^\u001b(\[[0-9;]*[A-Za-z~]|O[A-Za-z])/.exec(rest);
      if (sequence) {
        rest = rest.slice(sequence[0].length);
        switch (sequence[1]) {
          case '[5~':
            model.scroll += 10;
            break;
          case '[6~':
            model.scroll = Math.max(0, model.scroll - 10);
            break;
          case '[Z':
            model.cycle(-1);
            break;
          default:
            break; // arrows and function keys: nothing to do
        }
        this.#schedule();
        continue;
      }
      const [char = ''] = codePoints(rest);
      rest = rest.slice(char.length);
      switch (char) {
        case '\r':
        case '\n': {
          const line = model.input;
          model.input = '';
          model.scroll = 0;
          this.#submit(line);
          break;
        }
        case '\u0003':
          quit();
          return;
        case '\u0004':
          if (model.input === '') {
            quit();
            return;
          }
          break;
        case '\u007f':
        case '\b':
          model.input = codePoints(model.input).slice(0, -1).join('');
          break;
        case '\u0015':
          model.input = '';
          break;
        case '\t':
        case '\u000e':
          model.cycle(1);
          break;
        case '\u0010':
          model.cycle(-1);
          break;
        case '\u001b':
          break; // a lone Escape
        default:
          if (char >= ' ' && codePoints(model.input).length < MAX_INPUT_CHARS) model.input += char;
      }
      this.#schedule();
    }
  }
}

/** Flags in red, so that a problem with a message is the first thing seen. */
function highlight(row: string): string {
  return row.replace(/(⚠ [A-Z ]+[A-Z]|✗ [^:]*)/g, `${ESC}1;31m$1${ESC}0m`);
}
