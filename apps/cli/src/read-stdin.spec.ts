import { PassThrough } from 'node:stream';

import { readAllInput } from './read-stdin';
import { UsageError } from './usage.error';

describe('readAllInput', () => {
  it('reads everything until the end, across chunks', async () => {
    const input = new PassThrough();
    const read = readAllInput(input, 1024);
    input.write('hello ');
    input.write(Buffer.from('wörld'));
    input.end('\n');
    await expect(read).resolves.toBe('hello wörld\n');
  });

  it('joins a UTF-8 character split between chunks', async () => {
    const input = new PassThrough();
    const read = readAllInput(input, 1024);
    const bytes = Buffer.from('é😀');
    input.write(bytes.subarray(0, 1));
    input.write(bytes.subarray(1, 4));
    input.end(bytes.subarray(4));
    await expect(read).resolves.toBe('é😀');
  });

  it('accepts exactly the bound', async () => {
    const input = new PassThrough();
    const read = readAllInput(input, 8);
    input.end('12345678');
    await expect(read).resolves.toBe('12345678');
  });

  it('refuses input above the bound and stops reading', async () => {
    const input = new PassThrough();
    const read = readAllInput(input, 8);
    input.write('12345');
    input.write('6789');
    const error: unknown = await read.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe('standard input is larger than 8 bytes');
    expect(input.destroyed).toBe(true);
  });

  it('reads empty input as an empty string', async () => {
    const input = new PassThrough();
    const read = readAllInput(input, 8);
    input.end();
    await expect(read).resolves.toBe('');
  });
});
