import { access, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { writeLine } from '../cli-io';
import { EXIT } from '../exit-codes';
import {
  MIN_PASSPHRASE_CHARS,
  RSA_MAX_BITS,
  RSA_MIN_BITS,
  generateUserKey,
  writeUserKey,
} from '../key-files';
import { askLine } from '../terminal-prompt';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';

const HELP = `Usage: securechat keygen [--type rsa|ed25519] [--bits N] [--out FILE] [--force]

Creates your signing key pair. Every message you send is signed with it, and the server
identifies you by it. The private key is written as passphrase-encrypted PKCS#8 PEM with
mode 0600; the public key beside it as FILE.pub. Prints the key's fingerprint.

Options:
  -t, --type rsa|ed25519  key type (default rsa)
  -b, --bits N            RSA modulus size, ${RSA_MIN_BITS}-${RSA_MAX_BITS} (default 3072)
  -o, --out FILE          where to write (default: id_securechat in the config directory)
  -f, --force             replace an existing key file (the old key is lost)
  -h, --help              show this help
The passphrase (at least ${MIN_PASSPHRASE_CHARS} characters) is asked twice without echo, or read from
SECURECHAT_KEY_PASSPHRASE.

Examples:
  securechat keygen
  securechat keygen --type ed25519 --out ~/.config/securechat/work.key
  SECURECHAT_KEY_PASSPHRASE=… securechat keygen --bits 4096`;

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'create your key pair (encrypted private key + public key)',
  help: HELP,
  async run(args, io, paths) {
    const { values } = parseCommandArgs('keygen', args, {
      type: { type: 'string', short: 't', default: 'rsa' },
      bits: { type: 'string', short: 'b' },
      out: { type: 'string', short: 'o' },
      force: { type: 'boolean', short: 'f', default: false },
      help: { type: 'boolean', short: 'h' },
    });
    const type = values.type;
    if (type !== 'rsa' && type !== 'ed25519') {
      throw new UsageError('--type must be rsa or ed25519', 'keygen');
    }
    if (type === 'ed25519' && values.bits !== undefined) {
      throw new UsageError('--bits applies to RSA keys only', 'keygen');
    }
    const bits = values.bits === undefined ? 3072 : Number(values.bits);
    if (!/^\d+$/.test(values.bits ?? '3072') || bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
      throw new UsageError(
        `--bits must be a number from ${RSA_MIN_BITS} to ${RSA_MAX_BITS}`,
        'keygen',
      );
    }
    const out = resolve(values.out ?? paths.defaultKey);
    // Everything that can refuse is checked before the key is made: an RSA key takes seconds.
    if (values.force !== true && (await exists(out))) {
      throw new UsageError(`${out} exists; choose another --out, or --force to replace it`);
    }
    await mkdir(dirname(out), { recursive: true, mode: 0o700 });
    const passphrase = await newPassphrase(io);
    io.stderr.write(
      type === 'rsa' ? `Generating a ${bits}-bit RSA key… ` : 'Generating an Ed25519 key… ',
    );
    const key = await generateUserKey(type, bits, passphrase);
    writeLine(io.stderr, 'done.');
    await writeUserKey(out, key, values.force === true);
    writeLine(io.stdout, `private key: ${out}`);
    writeLine(io.stdout, `public key:  ${out}.pub`);
    writeLine(io.stdout, `fingerprint: ${key.fingerprint}`);
    return EXIT.ok;
  },
};

async function newPassphrase(io: Parameters<Command['run']>[1]): Promise<string> {
  const fromEnv = io.env.SECURECHAT_KEY_PASSPHRASE;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < MIN_PASSPHRASE_CHARS) {
      throw new UsageError(
        `SECURECHAT_KEY_PASSPHRASE must have at least ${MIN_PASSPHRASE_CHARS} characters`,
      );
    }
    return fromEnv;
  }
  const hint = { echo: false, envHint: 'SECURECHAT_KEY_PASSPHRASE' } as const;
  const first = await askLine(io.stdin, io.stderr, 'New passphrase for the key: ', hint);
  if (first.length < MIN_PASSPHRASE_CHARS) {
    throw new UsageError(`the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`);
  }
  const second = await askLine(io.stdin, io.stderr, 'Same passphrase again: ', hint);
  if (first !== second) throw new UsageError('the passphrases differ; nothing was written');
  return first;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
