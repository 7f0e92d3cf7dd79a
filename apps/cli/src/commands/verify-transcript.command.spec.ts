/**
 * `securechat verify-transcript` on files in the transcript-log format: the client's own log,
 * and a server's export in which a request the gateway refused is kept by digest
 * (docs/PROTOCOL.md §10 item 25). The session is a real one, run in memory with libs/protocol.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { MemoryTranscriptSink } from '@securechat/client';
import {
  exportSpki,
  type TranscriptPlaintextRecordLine,
  type RecordEvent,
  type SendMessage,
  ServerSession,
  sha256,
} from '@securechat/protocol';

import {
  aliceKey,
  connectAlice,
  serverFingerprint,
  serverIdentity,
} from '../../../../libs/protocol/test/in-memory-pair';
import { runCli } from '../cli';
import { EXIT } from '../exit-codes';

const FORGED_BODY = 'not what alice signed';

/**
 * One session — a send, a forged send the server refuses, a ping, bye, receipt, countersign —
 * as the lines of the client's own log.
 */
async function sessionLog(): Promise<object[]> {
  const clientEvents: RecordEvent[] = [];
  const run = await connectAlice({
    sessionId: 's-cli',
    clientSession: { onRecord: (event) => clientEvents.push(event) },
  });
  const { h2 } = run;
  const client = run.clientSession;
  const server = run.serverSession;
  const toServer = (bytes: Buffer) =>
    run.toServer.frames(bytes).map((frame) => server.receive(frame));
  const toClient = (bytes: Buffer) =>
    run.toClient.frames(bytes).map((frame) => client.receive(frame));

  const good = client.signedSend({ id: 'good', to: 'bob', body: 'hello', ts: 1 });
  toServer(client.send(good));
  toClient(server.send({ type: 'ack', id: 'good', msg_id: '1', server_ts: 2 }));
  const forged: SendMessage = {
    ...client.signedSend({ id: 'forged', to: 'bob', body: 'signed', ts: 1 }),
    body: FORGED_BODY,
  };
  const [received] = toServer(client.send(forged));
  expect(server.verifySendSignature(received!.message as SendMessage)).toBe(false);
  toClient(
    server.send(
      ServerSession.errorMessage('bad_request', 'sig: does not verify with your key', {
        id: 'forged',
      }),
    ),
  );
  toServer(client.send({ type: 'ping', n: 1 }));
  toClient(server.send({ type: 'pong', n: 1 }));
  toServer(client.bye());
  toClient(server.receipt());
  toServer(client.countersign());

  const sink = new MemoryTranscriptSink();
  const log = sink.open({
    sessionId: 's-cli',
    server: 'gw-test',
    serverKey: exportSpki(serverIdentity),
    serverFingerprint,
    username: 'alice',
    h2,
    startedAt: new Date('2026-12-01T00:00:00Z'),
  });
  for (const event of clientEvents) log.record(event);
  await log.finish({ reason: 'closed', viewsMatch: true, signatureValid: true });
  return sink.sessions[0]!.lines;
}

/** The log as a server exports it: the refused send by digest, in its place. */
function asExport(lines: readonly object[]): object[] {
  return lines.map((line) => {
    const record = line as Partial<TranscriptPlaintextRecordLine>;
    if (record.kind !== 'record' || !record.text?.includes(FORGED_BODY)) return line;
    const { plaintext, text: _text, ...rest } = record as TranscriptPlaintextRecordLine;
    return { ...rest, digest: sha256(Buffer.from(plaintext, 'base64')).toString('base64') };
  });
}

const jsonLines = (lines: readonly object[]) => lines.map((l) => JSON.stringify(l)).join('\n');

describe('verify-transcript', () => {
  let dir: string;
  let lines: object[];
  let keyFile: string;

  beforeAll(async () => {
    lines = await sessionLog();
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'verify-transcript-'));
    keyFile = join(dir, 'alice.pub');
    writeFileSync(
      keyFile,
      createPublicKey(aliceKey).export({ format: 'pem', type: 'spki' }).toString(),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function verify(text: string, ...extra: string[]): Promise<{ code: number; out: string }> {
    const file = join(dir, 'transcript.jsonl');
    writeFileSync(file, text);
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const code = await runCli(['verify-transcript', file, '--user-key', keyFile, ...extra], {
      env: { HOME: dir },
      stdin: new PassThrough(),
      stdout,
      stderr: new PassThrough(),
      interrupted: new Promise<void>(() => undefined),
    });
    await new Promise((resolve) => setImmediate(resolve));
    return { code, out: Buffer.concat(chunks).toString() };
  }

  it('verifies the client’s own log, which has no digest records', async () => {
    const { code, out } = await verify(jsonLines(lines));
    expect(code).toBe(EXIT.ok);
    expect(out).toMatch(/^ {2}\d+ records$/m);
    expect(out).not.toContain('digest');
    expect(out).toContain('transcript verified');
  });

  it('verifies an export that keeps a refused send by digest, and counts it', async () => {
    const exported = jsonLines(asExport(lines));
    expect(exported).toContain('"digest"');
    expect(exported).not.toContain(FORGED_BODY);
    const { code, out } = await verify(exported);
    expect(code).toBe(EXIT.ok);
    expect(out).toMatch(/^ {2}\d+ records, 1 of them kept by digest /m);
    expect(out).toMatch(/^ok {3}records match receipt: .*\(1 of them kept by digest\)/m);
    expect(out).toMatch(/^ok {3}countersignature/m);
    expect(out).toContain('transcript verified');

    const json = await verify(exported, '--json');
    expect(json.code).toBe(EXIT.ok);
    expect(JSON.parse(json.out)).toMatchObject({
      ok: true,
      records: lines.length - 2, // without the header and end lines
      digest_records: 1,
    });
  });

  it('fails an export whose digest is not the refused record’s', async () => {
    const exported = asExport(lines).map((line) =>
      'digest' in line ? { ...line, digest: Buffer.alloc(32, 1).toString('base64') } : line,
    );
    const { code, out } = await verify(jsonLines(exported));
    expect(code).toBe(EXIT.verificationFailed);
    expect(out).toMatch(/^FAIL records match receipt/m);
    expect(out).toContain('transcript DOES NOT verify');
  });

  it.each([
    ['a digest of 31 bytes', { digest: Buffer.alloc(31).toString('base64') }],
    ['a digest with text beside it', { text: 'shown but not covered' }],
    ['a digest and a plaintext', { plaintext: Buffer.from('{}').toString('base64') }],
  ])('refuses a digest line with %s as malformed', async (_what, change) => {
    const exported = asExport(lines).map((line) =>
      'digest' in line ? { ...line, ...change } : line,
    );
    const { code, out } = await verify(jsonLines(exported));
    expect(code).toBe(EXIT.verificationFailed);
    expect(out).toMatch(/^FAIL input well-formed/m);
  });
});
