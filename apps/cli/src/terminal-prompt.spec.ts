import { PassThrough } from 'node:stream';

import { CliError } from './cli.error';
import { type CliInput } from './cli-io';
import { EXIT } from './exit-codes';
import { askLine, confirm, secret } from './terminal-prompt';
import { UsageError } from './usage.error';

interface FakeTerminal {
  readonly input: PassThrough & CliInput;
  readonly setRawMode: jest.Mock<unknown, [boolean]>;
  readonly output: PassThrough;
  /** Everything written to the output so far. */
  written(): string;
}

function fakeTerminal(isTTY = true): FakeTerminal {
  const setRawMode = jest.fn<unknown, [boolean]>();
  const input = Object.assign(new PassThrough(), { isTTY, setRawMode });
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { input, setRawMode, output, written: () => chunks.join('') };
}

/** Lets the output's 'data' listener see every write made so far. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('askLine', () => {
  it('reads a secret in raw mode without echoing it, then restores the terminal', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Password: ', { echo: false });
    t.input.write('s3cr3t-pass\r');
    await expect(answer).resolves.toBe('s3cr3t-pass');
    await flush();
    expect(t.written()).toBe('Password: \n');
    expect(t.setRawMode.mock.calls).toEqual([[true], [false]]);
    expect(t.input.listenerCount('data')).toBe(0);
  });

  it('reads input split over several chunks and ends at a newline', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('ab');
    t.input.write('c\nignored');
    await expect(answer).resolves.toBe('abc');
  });

  it('handles backspace and DEL', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('abcd\u007f\u007fx\by\r');
    await expect(answer).resolves.toBe('aby');
    await flush();
    expect(t.written()).toBe('Q: \n');
  });

  it('removes a whole code point with backspace', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('a😀\u007f\r');
    await expect(answer).resolves.toBe('a');
  });

  it('starts over on Ctrl-U', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('wrong\u0015right\r');
    await expect(answer).resolves.toBe('right');
  });

  it('ignores other control characters', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('a\u0001b\u0002\u001bc\r');
    await expect(answer).resolves.toBe('abc');
  });

  it('echoes typed characters and erasures when asked to', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Trust? ', { echo: true });
    t.input.write('yx\u007fes\r');
    await expect(answer).resolves.toBe('yes');
    await flush();
    expect(t.written()).toBe('Trust? yx\b \bes\n');
  });

  it('rejects with exit 130 on Ctrl-C and restores the terminal', async () => {
    const t = fakeTerminal();
    const answer = askLine(t.input, t.output, 'Password: ', { echo: false });
    t.input.write('half\u0003');
    const error: unknown = await answer.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect(error).not.toBeInstanceOf(UsageError);
    expect((error as CliError).exitCode).toBe(EXIT.interrupted);
    expect(t.setRawMode).toHaveBeenLastCalledWith(false);
    expect(t.input.listenerCount('data')).toBe(0);
  });

  it('rejects with exit 130 on Ctrl-D on an empty line, and ignores it otherwise', async () => {
    const t = fakeTerminal();
    const empty = askLine(t.input, t.output, 'Q: ', { echo: false });
    t.input.write('\u0004');
    await expect(empty).rejects.toMatchObject({ exitCode: EXIT.interrupted });

    const u = fakeTerminal();
    const typed = askLine(u.input, u.output, 'Q: ', { echo: false });
    u.input.write('ab\u0004c\r');
    await expect(typed).resolves.toBe('abc');
  });

  it('refuses to ask without a terminal, naming the environment variable', async () => {
    const t = fakeTerminal(false);
    const error: unknown = await askLine(t.input, t.output, 'Password: ', {
      echo: false,
      envHint: 'SECURECHAT_PASSWORD',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain('SECURECHAT_PASSWORD');
    expect(t.setRawMode).not.toHaveBeenCalled();
    await flush();
    expect(t.written()).toBe('');
  });

  it('refuses a TTY without setRawMode', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    await expect(askLine(input, new PassThrough(), 'Q: ', { echo: false })).rejects.toBeInstanceOf(
      UsageError,
    );
  });
});

describe('secret', () => {
  it('prefers the environment value and does not touch the terminal', async () => {
    const t = fakeTerminal();
    const value = await secret(
      { SECURECHAT_PASSWORD: 'from-env' },
      'SECURECHAT_PASSWORD',
      t.input,
      t.output,
      'Password: ',
    );
    expect(value).toBe('from-env');
    expect(t.setRawMode).not.toHaveBeenCalled();
    await flush();
    expect(t.written()).toBe('');
  });

  it('asks without echo when the variable is unset or empty', async () => {
    const t = fakeTerminal();
    const asked = secret(
      { SECURECHAT_PASSWORD: '' },
      'SECURECHAT_PASSWORD',
      t.input,
      t.output,
      'Password: ',
    );
    t.input.write('typed\r');
    await expect(asked).resolves.toBe('typed');
    await flush();
    expect(t.written()).toBe('Password: \n');
  });

  it('names the variable when there is no terminal', async () => {
    const t = fakeTerminal(false);
    await expect(
      secret({}, 'SECURECHAT_KEY_PASSPHRASE', t.input, t.output, 'Passphrase: '),
    ).rejects.toThrow(/SECURECHAT_KEY_PASSPHRASE/);
  });
});

describe('confirm', () => {
  it.each([
    ['y', true],
    ['YES', true],
    [' yes ', true],
    ['n', false],
    ['', false],
    ['yeah', false],
  ])('reads %j as %s', async (typed, expected) => {
    const t = fakeTerminal();
    const answer = confirm(t.input, t.output, 'Trust it?');
    t.input.write(`${typed}\r`);
    await expect(answer).resolves.toBe(expected);
    await flush();
    expect(t.written()).toMatch(/^Trust it\? \[y\/N\] /);
  });
});
