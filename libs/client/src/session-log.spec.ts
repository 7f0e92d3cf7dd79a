import { generateKeyPairSync } from 'node:crypto';

import {
  CHALLENGE_BYTES,
  type RawFrame,
  type RecordEvent,
  X25519_KEY_BYTES,
  encodeFrame,
  exportSpki,
  fingerprint,
  toBase64,
} from '@securechat/protocol';

import { SessionLog, type SessionLogHeader } from './session-log';
import { MemoryTranscriptSink, type TranscriptSink } from './transcript-log';

const spki = exportSpki(generateKeyPairSync('ed25519').publicKey);
const serverFingerprint = fingerprint(spki);

function frame(value: object): RawFrame {
  const body = Buffer.from(JSON.stringify(value));
  return { body, bytes: encodeFrame(body) };
}

const serverHello = frame({
  type: 'server_hello',
  server_version: 'securechat/1',
  challenge: toBase64(Buffer.alloc(CHALLENGE_BYTES, 1)),
  dh_pub: toBase64(Buffer.alloc(X25519_KEY_BYTES, 2)),
  server_key: toBase64(spki),
});

function record(sequence: number, text: string): RecordEvent {
  return { direction: 's2c', sequence, plaintext: Buffer.from(text), chained: true };
}

function header(overrides: Partial<SessionLogHeader> = {}): SessionLogHeader {
  return {
    sessionId: 'session-1',
    server: 'chat.example:7777',
    serverFingerprint,
    username: 'alice',
    h2: Buffer.alloc(32, 3),
    startedAt: new Date(0),
    ...overrides,
  };
}

/** The `text` of every record line, and the kinds of the lines. */
function lines(sink: MemoryTranscriptSink, index = 0) {
  const entry = sink.sessions[index]!;
  return {
    kinds: entry.lines.map((l) => (l as { kind: string }).kind),
    texts: entry.lines.flatMap((l) => ('text' in l ? [(l as { text: string }).text] : [])),
    header: entry.header as unknown as Record<string, unknown>,
    finished: entry.finished,
  };
}

describe('SessionLog', () => {
  it("holds the handshake's records until the log opens, with the server key of server_hello", () => {
    const sink = new MemoryTranscriptSink();
    const errors: Error[] = [];
    const log = new SessionLog(sink, (e) => errors.push(e));
    log.observeHandshakeFrame(frame({ type: 'client_hello' })); // not parsed as one: ignored
    log.observeHandshakeFrame(serverHello);
    log.record(record(0, '{"type":"login_ok"}'));
    expect(sink.sessions).toHaveLength(0);
    log.open(header());
    log.record(record(1, '{"type":"pong"}'));
    expect(errors).toEqual([]);
    expect(log.location).toBe('memory:0');
    const written = lines(sink);
    expect(written.texts).toEqual(['{"type":"login_ok"}', '{"type":"pong"}']);
    expect(written.header).toMatchObject({
      server_key: toBase64(spki),
      server_fingerprint: serverFingerprint,
      session_id: 'session-1',
    });
  });

  it('writes the end line once, however often the connection is said to end', async () => {
    const sink = new MemoryTranscriptSink();
    const log = new SessionLog(sink, () => undefined);
    log.observeHandshakeFrame(serverHello);
    log.open(header());
    await log.finish({ reason: 'connection_lost' });
    await log.finish({ reason: 'closed', viewsMatch: true, signatureValid: true });
    expect(lines(sink).kinds).toEqual(['header', 'end']);
    expect(lines(sink).finished).toBe(true);
  });

  it('refuses to open a log whose server key is not the one the handshake verified', () => {
    const sink = new MemoryTranscriptSink();
    const errors: Error[] = [];
    const log = new SessionLog(sink, (e) => errors.push(e));
    log.observeHandshakeFrame(serverHello);
    log.open(header({ serverFingerprint: `sha256:${'0'.repeat(64)}` }));
    log.record(record(1, 'dropped'));
    expect(sink.sessions).toHaveLength(0);
    expect(log.location).toBeUndefined();
    expect(errors.map((e) => e.message)).toEqual([
      'the transcript of this session could not be opened',
    ]);

    const noHello = new SessionLog(sink, (e) => errors.push(e));
    noHello.open(header());
    expect(errors).toHaveLength(2);
  });

  it('reports a sink that fails, and the session goes on', async () => {
    const failing: TranscriptSink = {
      open: () => ({
        location: '/full/disk',
        record: () => undefined,
        finish: () => Promise.reject(new Error('ENOSPC')),
      }),
    };
    const errors: Error[] = [];
    const log = new SessionLog(failing, (e) => errors.push(e));
    log.observeHandshakeFrame(serverHello);
    log.open(header());
    await expect(log.finish({ reason: 'closed' })).resolves.toBeUndefined();
    expect(errors.map((e) => e.message)).toEqual(['ENOSPC']);
  });

  it('without a sink keeps nothing', async () => {
    const log = new SessionLog(undefined, () => undefined);
    log.observeHandshakeFrame(serverHello);
    log.record(record(0, 'login_ok'));
    log.open(header());
    expect(log.location).toBeUndefined();
    await expect(log.finish({ reason: 'closed' })).resolves.toBeUndefined();
  });
});
