import { type CliInput } from './cli-io';
import { UsageError } from './usage.error';

/**
 * All of standard input as UTF-8, bounded: a message body is small (the server's limit is
 * 16 KiB by default), so anything far larger is a mistake (a wrong file piped in), refused
 * before it is read whole.
 */
export async function readAllInput(input: CliInput, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buffer.length;
    if (total > maxBytes) {
      input.destroy();
      throw new UsageError(`standard input is larger than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
