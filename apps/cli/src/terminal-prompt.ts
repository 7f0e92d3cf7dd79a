/**
 * Questions asked on the terminal: secrets without echo (password, passphrase) and yes/no
 * questions (first contact with a server). Only ever on a terminal: a script must pass secrets
 * through the environment instead, and is told so.
 */
import { EXIT } from './exit-codes';
import { CliError } from './cli.error';
import { type CliInput, type CliOutput } from './cli-io';
import { UsageError } from './usage.error';

/** Longest answer read: well above the protocol's 1024-byte password limit. */
const MAX_ANSWER_CHARS = 4096;

export interface PromptOptions {
  /** Echo the typed characters (yes/no questions) or not (secrets). */
  readonly echo: boolean;
  /** Named in the error when there is no terminal to ask on, e.g. "SECURECHAT_PASSWORD". */
  readonly envHint?: string;
}

/** Reads one line from the terminal; Ctrl-C rejects with exit 130, Ctrl-D on an empty line too. */
export function askLine(
  input: CliInput,
  output: CliOutput,
  question: string,
  options: PromptOptions,
): Promise<string> {
  if (input.isTTY !== true || typeof input.setRawMode !== 'function') {
    const hint = options.envHint ? `; set ${options.envHint}` : '';
    return Promise.reject(new UsageError(`cannot ask "${question.trim()}": no terminal${hint}`));
  }
  const setRawMode = input.setRawMode.bind(input);
  output.write(question);
  return new Promise<string>((resolvePromise, reject) => {
    let answer = '';
    const finish = (error?: Error): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      setRawMode(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolvePromise(answer);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const char of chunk.toString()) {
        switch (char) {
          case '\r':
          case '\n':
            finish();
            return;
          case '\u0003':
            finish(new CliError('interrupted', EXIT.interrupted));
            return;
          case '\u0004':
            if (answer === '') {
              finish(new CliError('no answer (end of input)', EXIT.interrupted));
              return;
            }
            break;
          case '\u007f':
          case '\b':
            if (answer.length > 0) {
              answer = [...answer].slice(0, -1).join('');
              if (options.echo) output.write('\b \b');
            }
            break;
          case '\u0015': // Ctrl-U: start over
            if (options.echo) output.write('\b \b'.repeat([...answer].length));
            answer = '';
            break;
          default:
            if (char >= ' ' && answer.length < MAX_ANSWER_CHARS) {
              answer += char;
              if (options.echo) output.write(char);
            }
        }
      }
    };
    // The terminal went away mid-question (hang-up): no answer will come.
    const onEnd = (): void => finish(new CliError('no answer (end of input)', EXIT.interrupted));
    setRawMode(true);
    input.resume();
    input.on('data', onData);
    input.once('end', onEnd);
  });
}

/** A secret from the environment, or asked without echo. */
export async function secret(
  env: NodeJS.ProcessEnv,
  envName: string,
  input: CliInput,
  output: CliOutput,
  question: string,
): Promise<string> {
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return askLine(input, output, question, { echo: false, envHint: envName });
}

/** y/yes → true; anything else → false (the safe answer). */
export async function confirm(
  input: CliInput,
  output: CliOutput,
  question: string,
  envHint?: string,
): Promise<boolean> {
  const answer = await askLine(input, output, `${question} [y/N] `, {
    echo: true,
    ...(envHint ? { envHint } : {}),
  });
  return /^y(es)?$/i.test(answer.trim());
}
