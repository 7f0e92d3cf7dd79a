/**
 * A whole securechat/1 session run in memory with libs/protocol (login, sends and pings with
 * key updates on both sides, bye, receipt, countersign), collected as a gateway ships it to
 * the transcript store: the relay's transcript tests store, verify and export it. With
 * `refusals`, requests the gateway refuses itself are shipped by digest, as the gateway does
 * (docs/PROTOCOL.md §10 item 25).
 */
import {
  encodeChunk,
  toTranscriptViewContract,
  type TranscriptChunk,
  type TranscriptView,
} from '@securechat/core';
import {
  type CountersignCheck,
  ProtocolError,
  type RecordEvent,
  ServerSession,
  sha256,
  type TranscriptView as ProtocolView,
} from '@securechat/protocol';

import { ALICE_PASSWORD, connectAlice } from '../../../libs/protocol/test/in-memory-pair';

/** alice's password in these sessions: an export must never contain it. */
export const PASSWORD = ALICE_PASSWORD;

export const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** A protocol view as the relay contracts carry it (base64 chains). */
export const wireView = (view: ProtocolView): TranscriptView => toTranscriptViewContract(view);

/**
 * One record as the gateway saw it, at its position in the session: its plaintext in base64,
 * or (a request the gateway refused) only the plaintext's SHA-256 in base64.
 */
export type ShippedRecord = {
  readonly sessionId: string;
  readonly position: number;
  readonly direction: 'c2s' | 's2c';
  readonly chained: boolean;
} & (
  | { readonly plaintext: string; readonly digest?: undefined }
  | { readonly digest: string; readonly plaintext?: undefined }
);

/**
 * Records packed as a gateway ships them (TranscriptShipper): one chunk per run of
 * consecutive positions of a session.
 */
export function chunksOf(records: readonly ShippedRecord[]): TranscriptChunk[] {
  const runs: ShippedRecord[][] = [];
  for (const record of records) {
    const last = runs.at(-1)?.at(-1);
    if (last && last.sessionId === record.sessionId && last.position + 1 === record.position) {
      runs.at(-1)!.push(record);
    } else {
      runs.push([record]);
    }
  }
  return runs.map((run) => ({
    sessionId: run[0]!.sessionId,
    firstPosition: run[0]!.position,
    records: encodeChunk(
      run.map((r) =>
        r.digest !== undefined
          ? { direction: r.direction, chained: r.chained, digest: Buffer.from(r.digest, 'base64') }
          : {
              direction: r.direction,
              chained: r.chained,
              plaintext: Buffer.from(r.plaintext, 'base64'),
            },
      ),
    ).toString('base64'),
  }));
}

/** What a gateway collects for one session that ends with bye, receipt and countersign. */
export interface CollectedSession {
  readonly sessionId: string;
  readonly h2: Buffer;
  /** What the gateway ships (server-side onRecord, by position). */
  readonly records: ShippedRecord[];
  /** The same session's records as the client saw them (for the client's own log). */
  readonly clientEvents: RecordEvent[];
  readonly check: CountersignCheck;
}

/** What the client sends that the gateway refuses itself, answered with `error`. */
export const REFUSED = {
  /** A `send` whose body was changed after signing: its signature does not verify. */
  forgedBody: 'FORGED: not what alice signed',
  /** A `join` whose room breaks the docs/PROTOCOL.md §7.5 pattern. */
  badRoom: '#NOT A ROOM',
} as const;

/**
 * Runs `exchanges` send/ack and ping/pong rounds between alice and the server, then closes.
 * With `refusals`, every round also has a forged `send` and a `join` of a bad room name, each
 * answered with `bad_request` and shipped by digest.
 */
export async function runCollectedSession(
  sessionId: string,
  exchanges: number,
  options: { readonly refusals?: boolean } = {},
): Promise<CollectedSession> {
  const serverEvents: RecordEvent[] = [];
  const clientEvents: RecordEvent[] = [];
  const run = await connectAlice({
    sessionId,
    clientSession: { keyUpdateInterval: 5, onRecord: (event) => clientEvents.push(event) },
    serverSession: { keyUpdateInterval: 7, onRecord: (event) => serverEvents.push(event) },
  });
  const { h2 } = run;
  const client = run.clientSession;
  const server = run.serverSession;
  const toServer = (bytes: Buffer) =>
    run.toServer.frames(bytes).map((frame) => server.receive(frame));
  const toClient = (bytes: Buffer) =>
    run.toClient.frames(bytes).map((frame) => client.receive(frame));
  // Positions of the records the gateway refused itself: shipped by digest.
  const refused = new Set<number>();
  const refuse = (error: ProtocolError) => {
    refused.add(serverEvents.length - 1);
    toClient(server.send(ServerSession.errorMessage(error.code, error.message, { id: error.id })));
  };
  for (let i = 0; i < exchanges; i++) {
    const send = client.signedSend({ id: `m-${i}`, to: 'bob', body: `hello ${i} ✓`, ts: 1000 + i });
    toServer(client.send(send));
    toClient(server.send({ type: 'ack', id: send.id, msg_id: String(i + 1), server_ts: 2000 + i }));
    toServer(client.send({ type: 'ping', n: i }));
    toClient(server.send({ type: 'pong', n: i }));
    if (!options.refusals) continue;
    const forged = client.signedSend({ id: `f-${i}`, to: 'bob', body: 'signed', ts: 1000 + i });
    // The last record: a key update may go first.
    const received = toServer(client.send({ ...forged, body: REFUSED.forgedBody })).at(-1);
    if (received?.message.type !== 'send' || server.verifySendSignature(received.message)) {
      throw new Error('the forged send was not opened, or verified');
    }
    refuse(
      new ProtocolError('bad_request', 'sig: does not verify with your key', { id: forged.id }),
    );
    try {
      toServer(client.send({ type: 'join', room: REFUSED.badRoom }));
      throw new Error('the bad room was not refused');
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== 'bad_request') throw error;
      refuse(error);
    }
  }
  toServer(client.bye());
  toClient(server.receipt());
  const [final] = toServer(client.countersign());
  if (!final?.countersign) throw new Error('the session did not close properly');
  return {
    sessionId,
    h2,
    records: serverEvents.map((event, position) => ({
      sessionId,
      position,
      direction: event.direction,
      chained: event.chained,
      ...(refused.has(position)
        ? { digest: b64(sha256(event.plaintext)) }
        : { plaintext: b64(event.plaintext) }),
    })),
    clientEvents,
    check: final.countersign,
  };
}
