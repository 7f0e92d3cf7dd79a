import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import {
  countDigestRecords,
  type TranscriptFile,
  parseTranscript,
  verifyTranscriptLog,
} from '@securechat/protocol';

import { sanitizeForTerminal, sanitizeName, terminalSafeJson } from '../chat/sanitize';
import { writeLine } from '../cli-io';
import { EXIT } from '../exit-codes';
import { UsageError } from '../usage.error';
import { type Command, parseCommandArgs } from './command';

const HELP = `Usage: securechat verify-transcript FILE [--user-key FILE.pub] [--json]

Checks a session transcript offline: your client's own log (in the data directory, under
transcripts/) or an export from the server ("securechat admin transcript export"). It
recomputes both hash chains from the recorded messages, compares them with the server's signed
receipt, checks the receipt's signature under the server key named in the file (and that key's
fingerprint), and with --user-key also the client's countersignature. Prints each check; exits
0 only if every check passed, 6 on any mismatch.

An export may hold records kept by digest (a "digest" line instead of "plaintext"): requests
the server refused before doing anything with them, such as a send with a bad signature, stored
as the SHA-256 of their bytes. They count in the chains like any record; their text is not
there to show. The output says how many there are.

Options:
      --user-key FILE   the user's public key (PEM, e.g. id_securechat.pub) to check the
                        countersignature
      --json            print the result as JSON
  -h, --help            show this help

Examples:
  securechat verify-transcript ~/.local/share/securechat/transcripts/alice@127.0.0.1_7777/*.jsonl
  securechat verify-transcript export.jsonl --user-key alice.pub`;

export const verifyTranscriptCommand: Command = {
  name: 'verify-transcript',
  summary: 'check a transcript file against its receipt and signatures, offline',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      'verify-transcript',
      args,
      {
        'user-key': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      true,
    );
    if (positionals.length !== 1) {
      throw new UsageError('give exactly one transcript FILE', 'verify-transcript');
    }
    const path = positionals[0] as string;
    const text = await readText(path);
    const userKey =
      values['user-key'] === undefined ? undefined : await readPublicKey(values['user-key']);

    let transcript: TranscriptFile | undefined;
    let parseProblem: string | undefined;
    try {
      transcript = parseTranscript(text);
    } catch (error) {
      parseProblem = (error as Error).message;
    }
    const result =
      transcript === undefined
        ? {
            ok: false,
            checks: [{ name: 'file readable as a transcript', ok: false, detail: parseProblem }],
          }
        : verifyTranscriptLog(transcript, userKey);

    const byDigest = transcript === undefined ? 0 : countDigestRecords(transcript);
    // The file may be an export from a server: every field of it is shown sanitized.
    if (values.json === true) {
      writeLine(
        io.stdout,
        terminalSafeJson({
          file: path,
          ok: result.ok,
          ...(transcript === undefined
            ? {}
            : { records: transcript.records.length, digest_records: byDigest }),
          checks: result.checks,
        }),
      );
    } else {
      if (transcript) {
        const h = transcript.header;
        const n = sanitizeName;
        writeLine(io.stdout, `transcript ${sanitizeForTerminal(path)}`);
        writeLine(
          io.stdout,
          `  session ${n(h.session_id)}, user ${n(h.username)}, server ${n(h.server)}`,
        );
        writeLine(io.stdout, `  server key ${n(h.server_fingerprint)}, started ${n(h.started_at)}`);
        writeLine(
          io.stdout,
          byDigest === 0
            ? `  ${transcript.records.length} records`
            : `  ${transcript.records.length} records, ${byDigest} of them kept by digest ` +
                '(requests the server refused before any work; no text)',
        );
      }
      for (const check of result.checks) {
        const detail = check.detail ? `: ${sanitizeForTerminal(check.detail)}` : '';
        writeLine(io.stdout, `${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${detail}`);
      }
      if (userKey === undefined && transcript?.end?.countersign) {
        writeLine(io.stdout, 'note: countersignature not checked (pass --user-key)');
      }
      writeLine(io.stdout, result.ok ? 'transcript verified' : 'transcript DOES NOT verify');
    }
    return result.ok ? EXIT.ok : EXIT.verificationFailed;
  },
};

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`, 'verify-transcript');
  }
}

async function readPublicKey(path: string) {
  const text = await readText(path);
  try {
    return createPublicKey(text);
  } catch {
    throw new UsageError(`${path} is not a PEM public key`, 'verify-transcript');
  }
}
