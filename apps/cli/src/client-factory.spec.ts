import { PassThrough } from 'node:stream';

import { type CliIo } from './cli-io';
import { askPassword } from './client-factory';
import { EXIT } from './exit-codes';
import { UsageError } from './usage.error';

interface FakeTerminal extends CliIo {
  readonly stdin: PassThrough;
  written(): string;
}

function terminal(env: NodeJS.ProcessEnv = {}): FakeTerminal {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
  const stderr = new PassThrough();
  const chunks: string[] = [];
  stderr.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return {
    env,
    stdin,
    stdout: new PassThrough(),
    stderr,
    interrupted: new Promise<void>(() => undefined),
    written: () => chunks.join(''),
  };
}

/** Types `answer` once `question` is on the screen, as a person would. */
async function answer(io: FakeTerminal, question: string, text: string): Promise<void> {
  while (!io.written().includes(question)) await new Promise((r) => setImmediate(r));
  io.stdin.write(`${text}\r`);
}

describe('askPassword', () => {
  it('asks a new password twice on a terminal', async () => {
    const io = terminal();
    const asked = askPassword(io, 'alice@host:7777', true);
    await answer(io, 'New password for alice@host:7777: ', 'correct horse');
    await answer(io, 'Same password again: ', 'correct horse');
    await expect(asked).resolves.toBe('correct horse');
  });

  it('refuses a new password typed differently the second time', async () => {
    const io = terminal();
    const asked = askPassword(io, 'alice@host:7777', true);
    await answer(io, 'New password for', 'correct horse');
    await answer(io, 'Same password again: ', 'correct hosre');
    const error: unknown = await asked.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toBe('the passwords differ; nothing was sent');
    expect((error as UsageError).exitCode).toBe(EXIT.usage);
  });

  it('asks a login password once', async () => {
    const io = terminal();
    const asked = askPassword(io, 'alice@host:7777', false);
    await answer(io, 'Password for alice@host:7777: ', 'correct horse');
    await expect(asked).resolves.toBe('correct horse');
    expect(io.written()).not.toContain('again');
  });

  it('takes SECURECHAT_PASSWORD as it is, also for a new account', async () => {
    const io = terminal({ SECURECHAT_PASSWORD: 'from the environment' });
    await expect(askPassword(io, 'alice@host:7777', true)).resolves.toBe('from the environment');
    expect(io.written()).toBe('');
  });

  it.each([
    ['short', 'seven77'],
    ['long', 'x'.repeat(1025)],
    ['long in UTF-8 bytes', 'é'.repeat(513)],
  ])('refuses a %s password with a usage error', async (_name, password) => {
    const io = terminal({ SECURECHAT_PASSWORD: password });
    await expect(askPassword(io, 'alice@host:7777', false)).rejects.toThrow(
      'the password must be 8 to 1024 bytes of UTF-8',
    );
  });
});
