/**
 * RecordReader: records opened strictly in arrival order, runs of `send`/`delivered` grouped
 * into units of at most maxRun from what has already arrived, with one record read ahead.
 * Mostly over a scripted session (each frame names the record it "opens" to), plus a real
 * ServerSession/ClientSession pair from libs/protocol.
 */
import { generateKeyPairSync } from 'node:crypto';

import {
  type ClientMessage,
  type ClientSession,
  type CountersignCheck,
  encodeFrame,
  exportSpki,
  FrameDecoder,
  parseJsonObject,
  ProtocolError,
  type RawFrame,
  type SendMessage,
  serializeJson,
  type ServerReceived,
  ServerHandshake,
  type ServerSession,
  toBase64,
} from '@securechat/protocol';
import fc from 'fast-check';

import { type RecordChecks, RecordReader, type RecordUnit } from './record-reader';
import { type CheckedSend } from './request-handler';
import { aliceHandshake } from '../test/alice-handshake';

// ------------------------------------------------------------------ a scripted session

type Kind =
  | 'send'
  | 'delivered'
  | 'join'
  | 'bye'
  | 'countersign'
  | 'fail'
  | 'bare_countersign'
  /** A request the value rules refuse (`bad_request`, thrown after the record was taken in). */
  | 'refuse';

/** What a frame opens to: its kind, and a tag that identifies it in the units. */
interface Item {
  readonly kind: Kind;
  readonly tag: string;
}

/** The frames that have arrived and not been taken (the FramedSocket side). */
class Inbox {
  readonly #queue: RawFrame[] = [];
  arrived = 0;

  get hasFrame(): boolean {
    return this.#queue.length > 0;
  }

  next(): RawFrame | undefined {
    return this.#queue.shift();
  }

  push(...frames: RawFrame[]): void {
    this.#queue.push(...frames);
    this.arrived += frames.length;
  }
}

function frameOf(item: Item): RawFrame {
  const body = Buffer.from(JSON.stringify(item));
  return { bytes: body, body };
}

function messageOf(item: Item): ClientMessage {
  switch (item.kind) {
    case 'send':
      return {
        type: 'send',
        id: item.tag,
        to: 'bob',
        body: `body ${item.tag}`,
        ts: 1,
        sig: 'AA==',
      };
    case 'delivered':
      return { type: 'delivered', msg_id: item.tag };
    case 'join':
    case 'refuse':
      return { type: 'join', room: item.tag };
    case 'bye':
      return { type: 'bye' };
    case 'countersign':
    case 'bare_countersign':
    case 'fail':
      return {
        type: 'countersign',
        c2s_count: 0,
        c2s_chain: toBase64(Buffer.alloc(32)),
        s2c_count: 0,
        s2c_chain: toBase64(Buffer.alloc(32)),
        signature: 'AA==',
      };
  }
}

/**
 * Opens a frame to the item it names; `fail` throws, `refuse` throws `bad_request`. Records
 * what it opened, in order, in `opened` and in the shared `log`.
 */
function scriptedSession(log: string[] = []): {
  session: Pick<ServerSession, 'receive'>;
  opened: string[];
  thrown: Map<string, Error>;
} {
  const opened: string[] = [];
  const thrown = new Map<string, Error>();
  const session = {
    receive(frame: RawFrame): ServerReceived {
      const item = JSON.parse(frame.body.toString()) as Item;
      opened.push(item.tag);
      log.push(`open:${item.tag}`);
      if (item.kind === 'fail' || item.kind === 'refuse') {
        const error =
          item.kind === 'fail'
            ? new Error(item.tag)
            : new ProtocolError('bad_request', `room: ${item.tag}`);
        thrown.set(item.tag, error);
        throw error;
      }
      const message = messageOf(item);
      const plaintext = serializeJson(message);
      if (item.kind === 'countersign') {
        return {
          message,
          plaintext,
          countersign: { tag: item.tag } as unknown as CountersignCheck,
        };
      }
      return { message, plaintext };
    },
  };
  return { session, opened, thrown };
}

const send = (tag: string): Item => ({ kind: 'send', tag });
const delivered = (tag: string): Item => ({ kind: 'delivered', tag });
const join = (tag: string): Item => ({ kind: 'join', tag });
const bye = (tag = 'bye'): Item => ({ kind: 'bye', tag });
const fail = (tag: string): Item => ({ kind: 'fail', tag });
const countersign = (tag: string): Item => ({ kind: 'countersign', tag });

/**
 * Checks that refuse a send whose id starts with `bad` (as checkSend refuses a bad signature)
 * and log every call in `log`, after the session's own `open:` entries.
 */
function recordingChecks(log: string[] = []): RecordChecks {
  return {
    checkSend(message: SendMessage): CheckedSend {
      log.push(`check:${message.id}`);
      return message.id.startsWith('bad')
        ? { ok: false, error: new ProtocolError('bad_request', 'sig', { id: message.id }) }
        : {
            ok: true,
            command: { from: 'alice', ...message },
          };
    },
    judged(refused: boolean): void {
      log.push(refused ? 'refused' : 'accepted');
    },
  };
}

function setup(maxRun: number, items: Item[] = []) {
  const inbox = new Inbox();
  const log: string[] = [];
  const scripted = scriptedSession(log);
  const reader = new RecordReader(inbox, scripted.session, maxRun, recordingChecks(log));
  inbox.push(...items.map(frameOf));
  return { inbox, reader, log, ...scripted };
}

/** A unit as labels, one per record it holds, in the form `label(item)` gives. */
function labels(unit: RecordUnit): string[] {
  switch (unit.kind) {
    case 'sends':
      return unit.sends.map((s) => `send:${s.id}`);
    case 'delivered':
      return unit.msgIds.map((id) => `delivered:${id}`);
    case 'request':
      return [`join:${(unit.message as { room: string }).room}`];
    case 'bye':
      return ['bye'];
    case 'countersign':
      return [`countersign:${(unit.check as unknown as { tag: string }).tag}`];
    case 'failure':
      return unit.error instanceof ProtocolError
        ? [`refuse:${unit.error.message.slice('room: '.length)}`]
        : [`fail:${(unit.error as Error).message}`];
  }
}

function label(item: Item): string {
  return item.kind === 'bye' ? 'bye' : `${item.kind}:${item.tag}`;
}

/** Every unit until next() says undefined. */
function drain(reader: RecordReader): RecordUnit[] {
  const units: RecordUnit[] = [];
  for (let unit = reader.next(); unit; unit = reader.next()) units.push(unit);
  return units;
}

const sendIds = (unit: RecordUnit | undefined) =>
  unit?.kind === 'sends' ? unit.sends.map((s) => s.id) : unit;

describe('RecordReader', () => {
  describe('runs of sends', () => {
    it('makes one unit of a run of sends that has arrived, in order', () => {
      const { reader, opened } = setup(16, [send('a'), send('b'), send('c'), send('d')]);
      expect(sendIds(reader.next())).toEqual(['a', 'b', 'c', 'd']);
      expect(opened).toEqual(['a', 'b', 'c', 'd']);
      expect(reader.next()).toBeUndefined();
    });

    it('stops a run at maxRun without reading past it', () => {
      const { reader, opened, inbox } = setup(2, [
        send('a'),
        send('b'),
        send('c'),
        send('d'),
        send('e'),
      ]);
      expect(sendIds(reader.next())).toEqual(['a', 'b']);
      expect(opened).toEqual(['a', 'b']); // no lookahead at maxRun
      expect(inbox.hasFrame).toBe(true);
      expect(sendIds(reader.next())).toEqual(['c', 'd']);
      expect(sendIds(reader.next())).toEqual(['e']);
      expect(reader.next()).toBeUndefined();
    });

    it('with maxRun 1 makes every send its own unit and never reads ahead', () => {
      const { reader, opened } = setup(1, [send('a'), send('b'), join('r')]);
      expect(sendIds(reader.next())).toEqual(['a']);
      expect(opened).toEqual(['a']);
      expect(sendIds(reader.next())).toEqual(['b']);
      expect(opened).toEqual(['a', 'b']);
      expect(reader.next()).toEqual({ kind: 'request', message: { type: 'join', room: 'r' } });
    });

    it('stops a run at the first record that is not a send, which is the next unit', () => {
      const { reader, opened } = setup(16, [send('a'), send('b'), join('r'), send('c')]);
      expect(sendIds(reader.next())).toEqual(['a', 'b']);
      expect(opened).toEqual(['a', 'b', 'r']); // the join was read ahead
      expect(reader.next()).toEqual({ kind: 'request', message: { type: 'join', room: 'r' } });
      expect(sendIds(reader.next())).toEqual(['c']);
      expect(reader.next()).toBeUndefined();
    });

    it('does not mix a delivered into a run of sends', () => {
      const { reader } = setup(16, [send('a'), delivered('m1'), send('b')]);
      expect(drain(reader).map(labels)).toEqual([['send:a'], ['delivered:m1'], ['send:b']]);
    });

    it('gathers only what has arrived: a send arriving later is the next unit', () => {
      const { reader, inbox } = setup(16, [send('a')]);
      expect(sendIds(reader.next())).toEqual(['a']);
      expect(reader.next()).toBeUndefined();
      inbox.push(frameOf(send('b')), frameOf(send('c')));
      expect(sendIds(reader.next())).toEqual(['b', 'c']);
    });
  });

  describe('runs of delivered', () => {
    it('makes one unit of a run of delivered, stopping at maxRun', () => {
      const { reader, opened } = setup(3, [
        delivered('m1'),
        delivered('m2'),
        delivered('m3'),
        delivered('m4'),
      ]);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m1', 'm2', 'm3'] });
      expect(opened).toEqual(['m1', 'm2', 'm3']);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m4'] });
      expect(reader.next()).toBeUndefined();
    });

    it('stops a run of delivered at the first other record, which is the next unit', () => {
      const { reader } = setup(16, [delivered('m1'), delivered('m2'), send('a'), delivered('m3')]);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m1', 'm2'] });
      expect(sendIds(reader.next())).toEqual(['a']);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m3'] });
      expect(reader.next()).toBeUndefined();
    });

    it('ends a run of delivered at a record that fails to open, which comes next', () => {
      const { reader, thrown } = setup(16, [delivered('m1'), fail('x'), delivered('m2')]);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m1'] });
      const failure = reader.next();
      expect(failure).toEqual({ kind: 'failure', error: thrown.get('x') });
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m2'] });
    });
  });

  describe('records that fail to open', () => {
    it('ends the run, and comes next as a failure after the run', () => {
      const { reader, opened, thrown } = setup(16, [send('a'), send('b'), fail('x'), send('c')]);
      expect(sendIds(reader.next())).toEqual(['a', 'b']);
      expect(opened).toEqual(['a', 'b', 'x']);
      const failure = reader.next();
      expect(failure?.kind).toBe('failure');
      expect((failure as { error: unknown }).error).toBe(thrown.get('x'));
      expect(sendIds(reader.next())).toEqual(['c']);
      expect(reader.next()).toBeUndefined();
    });

    it('is a failure unit when it is the first record', () => {
      const { reader, thrown } = setup(16, [fail('x'), send('a')]);
      const failure = reader.next();
      expect(failure).toEqual({ kind: 'failure', error: thrown.get('x') });
      expect((failure as { error: unknown }).error).toBe(thrown.get('x'));
      expect(sendIds(reader.next())).toEqual(['a']);
    });

    it('reports a countersign the session gave no check for as a failure', () => {
      const { reader } = setup(16, [{ kind: 'bare_countersign', tag: 'c' }]);
      const unit = reader.next();
      expect(unit?.kind).toBe('failure');
      expect((unit as { error: Error }).error).toBeInstanceOf(Error);
    });
  });

  describe('closing records', () => {
    it('hands a bye read ahead at the end of a run out as the next unit', () => {
      const { reader, opened, inbox } = setup(16, [send('a'), send('b'), bye()]);
      expect(sendIds(reader.next())).toEqual(['a', 'b']);
      expect(opened).toEqual(['a', 'b', 'bye']);
      expect(inbox.hasFrame).toBe(false);
      expect(reader.idle).toBe(false); // the bye waits in the lookahead
      expect(reader.next()).toEqual({ kind: 'bye' });
      expect(reader.next()).toBeUndefined();
      expect(reader.idle).toBe(true);
    });

    it('hands out a bye after a run of delivered too', () => {
      const { reader } = setup(16, [delivered('m1'), bye()]);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m1'] });
      expect(reader.next()).toEqual({ kind: 'bye' });
    });

    it('hands out a countersign with its check, also when read ahead', () => {
      const { reader } = setup(16, [send('a'), countersign('k')]);
      expect(sendIds(reader.next())).toEqual(['a']);
      const unit = reader.next();
      expect(unit?.kind).toBe('countersign');
      expect(labels(unit!)).toEqual(['countersign:k']);
    });
  });

  describe('idle and clear', () => {
    it('is idle only with nothing read ahead and no frame waiting', () => {
      const { reader, inbox } = setup(16);
      expect(reader.idle).toBe(true);
      inbox.push(frameOf(send('a')));
      expect(reader.idle).toBe(false); // a frame is waiting
      expect(sendIds(reader.next())).toEqual(['a']);
      expect(reader.idle).toBe(true);
      inbox.push(frameOf(send('b')), frameOf(join('r')));
      expect(sendIds(reader.next())).toEqual(['b']);
      expect(inbox.hasFrame).toBe(false);
      expect(reader.idle).toBe(false); // the join is read ahead
      expect(reader.next()?.kind).toBe('request');
      expect(reader.idle).toBe(true);
    });

    it('is not idle when the run stopped at maxRun with frames still waiting', () => {
      const { reader } = setup(1, [send('a'), send('b')]);
      reader.next();
      expect(reader.idle).toBe(false);
      reader.next();
      expect(reader.idle).toBe(true);
    });

    it('clear() drops what was read ahead, and reading goes on with the next frame', () => {
      const { reader, inbox, opened } = setup(16, [send('a'), join('r')]);
      expect(sendIds(reader.next())).toEqual(['a']);
      expect(reader.idle).toBe(false);
      reader.clear();
      expect(reader.idle).toBe(true);
      expect(reader.next()).toBeUndefined();
      inbox.push(frameOf(send('b')));
      expect(sendIds(reader.next())).toEqual(['b']);
      expect(opened).toEqual(['a', 'r', 'b']); // the dropped join is not opened again
    });
  });

  // docs/PROTOCOL.md §10 item 25: the transcript keeps a refused request by digest, so it must
  // know the verdict on each record before the next one is opened (ConnectionTranscript).
  describe('verdicts', () => {
    it('judges every record right after opening it, before the next is opened', () => {
      const { reader, log } = setup(16, [
        send('a'),
        send('bad-sig'),
        send('b'),
        join('r'),
        { kind: 'refuse', tag: 'x' },
        fail('y'),
        delivered('m1'),
        bye(),
      ]);
      const units = drain(reader);
      expect(log).toEqual([
        'open:a',
        'check:a',
        'accepted',
        'open:bad-sig',
        'check:bad-sig',
        'refused',
        'open:b',
        'check:b',
        'accepted',
        'open:r', // read ahead at the end of the run: judged at once, not when handed out
        'accepted',
        'open:x',
        'refused', // the value rules refused it: bad_request after the record was taken in
        'open:y',
        'accepted', // failed to open: nothing taken in, nothing refused by the gateway
        'open:m1',
        'accepted',
        'open:bye',
        'accepted',
      ]);
      expect(units.map(labels)).toEqual([
        ['send:a', 'send:bad-sig', 'send:b'],
        ['join:r'],
        ['refuse:x'],
        ['fail:y'],
        ['delivered:m1'],
        ['bye'],
      ]);
    });

    it('hands each send of a run out with the verdict made as it was read', () => {
      const { reader, log } = setup(16, [send('a'), send('bad'), send('b')]);
      const unit = reader.next();
      expect(unit?.kind).toBe('sends');
      const { sends, checked } = unit as Extract<RecordUnit, { kind: 'sends' }>;
      expect(sends.map((s) => s.id)).toEqual(['a', 'bad', 'b']);
      expect(checked.map((c) => (c.ok ? c.command.id : `refused ${c.error.id}`))).toEqual([
        'a',
        'refused bad',
        'b',
      ]);
      // Checked once each: not again when the unit is handled.
      expect(log.filter((l) => l.startsWith('check:'))).toEqual([
        'check:a',
        'check:bad',
        'check:b',
      ]);
    });

    it('keeps the verdict of a send read ahead after a run of delivered', () => {
      const { reader } = setup(16, [delivered('m1'), send('bad-1'), send('c')]);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['m1'] });
      const unit = reader.next() as Extract<RecordUnit, { kind: 'sends' }>;
      expect(unit.checked.map((c) => c.ok)).toEqual([false, true]);
    });
  });

  describe('constructor', () => {
    it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects maxRun %p', (maxRun) => {
      expect(
        () => new RecordReader(new Inbox(), scriptedSession().session, maxRun, recordingChecks()),
      ).toThrow(RangeError);
    });

    it('accepts maxRun 1', () => {
      expect(
        () => new RecordReader(new Inbox(), scriptedSession().session, 1, recordingChecks()),
      ).not.toThrow();
    });
  });

  it('keeps the input order exactly, no unit over maxRun, runs greedy, one record ahead at most (property)', () => {
    const kinds: Kind[] = ['send', 'delivered', 'join', 'bye', 'countersign', 'fail', 'refuse'];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...kinds), { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 10 }),
        (sequence, maxRun, batches) => {
          const items = sequence.map((kind, i): Item => ({ kind, tag: `t${i}` }));
          const { reader, inbox, opened } = setup(maxRun);
          const units: RecordUnit[] = [];
          let emitted = 0;
          let batch = 0;
          for (;;) {
            const arrivedBefore = inbox.arrived;
            const unit = reader.next();
            if (!unit) {
              expect(opened.length).toBe(emitted); // nothing is held back
              if (inbox.arrived === items.length) break;
              const size = batches[batch++ % batches.length]!;
              inbox.push(...items.slice(inbox.arrived, inbox.arrived + size).map(frameOf));
              continue;
            }
            units.push(unit);
            const held = labels(unit);
            emitted += held.length;
            // Opened strictly in order, at most one record read past what was handed out.
            expect(opened).toEqual(items.slice(0, opened.length).map((item) => item.tag));
            expect(opened.length - emitted).toBeGreaterThanOrEqual(0);
            expect(opened.length - emitted).toBeLessThanOrEqual(1);
            expect(reader.idle).toBe(opened.length === emitted && !inbox.hasFrame);
            if (unit.kind === 'sends' || unit.kind === 'delivered') {
              expect(held.length).toBeGreaterThanOrEqual(1);
              expect(held.length).toBeLessThanOrEqual(maxRun);
              // Greedy: a short run is followed by another kind, or by nothing arrived yet.
              const runKind = unit.kind === 'sends' ? 'send' : 'delivered';
              const after = items[emitted];
              if (held.length < maxRun && after?.kind === runKind) {
                expect(emitted).toBe(arrivedBefore);
              }
            } else {
              expect(held).toHaveLength(1);
            }
          }
          expect(units.flatMap(labels)).toEqual(items.map(label));
        },
      ),
      { numRuns: 300 },
    );
  });

  describe('over a real ServerSession', () => {
    const serverKey = generateKeyPairSync('ed25519');
    const userKey = generateKeyPairSync('ed25519');

    const decode = (bytes: Buffer): RawFrame[] => new FrameDecoder().push(bytes);

    async function sessionPair(): Promise<{ server: ServerSession; client: ClientSession }> {
      const serverHandshake = new ServerHandshake({
        identity: { privateKey: serverKey.privateKey },
        sessionId: 'sess-reader',
        verifyLogin: () => Promise.resolve({ ok: true, publicKey: exportSpki(userKey.publicKey) }),
      });
      const clientHandshake = aliceHandshake(userKey.privateKey);
      let toServer = decode(clientHandshake.start());
      let server: ServerSession | undefined;
      let client: ClientSession | undefined;
      for (let round = 0; round < 4 && !(server && client); round++) {
        const toClient: RawFrame[] = [];
        for (const frame of toServer) {
          const step = await serverHandshake.receive(frame);
          if (step.error) throw step.error;
          toClient.push(...step.send.flatMap(decode));
          server ??= step.session;
        }
        toServer = [];
        for (const frame of toClient) {
          const step = await clientHandshake.receive(frame);
          if (step.error) throw step.error;
          toServer.push(...step.send.flatMap(decode));
          client ??= step.session;
        }
      }
      if (!server || !client) throw new Error('no session');
      return { server, client };
    }

    const signedSend = (client: ClientSession, id: string) =>
      client.send(client.signedSend({ id, to: 'bob', body: `hello ${id}`, ts: 1 }));

    /** The same record with one ciphertext bit flipped: it fails to authenticate. */
    function tampered(bytes: Buffer): Buffer {
      const [frame] = decode(bytes);
      const ct = Buffer.from(parseJsonObject(frame!.body).ct as string, 'base64');
      ct[0]! ^= 1;
      return encodeFrame(serializeJson({ type: 'enc', ct: toBase64(ct) }));
    }

    it('groups real records, hands out bye, then the countersign with its check', async () => {
      const { server, client } = await sessionPair();
      const inbox = new Inbox();
      const reader = new RecordReader(inbox, server, 3, recordingChecks());
      const bytes = Buffer.concat([
        signedSend(client, 'm0'),
        signedSend(client, 'm1'),
        signedSend(client, 'm2'),
        signedSend(client, 'm3'),
        client.send({ type: 'delivered', msg_id: '17' }),
        client.send({ type: 'delivered', msg_id: '18' }),
        client.send({ type: 'ping', n: 4 }),
        signedSend(client, 'm4'),
        client.bye(),
      ]);
      inbox.push(...decode(bytes));
      expect(sendIds(reader.next())).toEqual(['m0', 'm1', 'm2']);
      expect(sendIds(reader.next())).toEqual(['m3']);
      expect(reader.next()).toEqual({ kind: 'delivered', msgIds: ['17', '18'] });
      expect(reader.next()).toEqual({ kind: 'request', message: { type: 'ping', n: 4 } });
      expect(sendIds(reader.next())).toEqual(['m4']);
      expect(server.state).toBe('closing'); // the bye was opened, read ahead
      expect(reader.next()).toEqual({ kind: 'bye' });
      expect(reader.next()).toBeUndefined();
      expect(reader.idle).toBe(true);

      const [receipt] = decode(server.receipt());
      client.receive(receipt!);
      inbox.push(...decode(client.countersign()));
      const unit = reader.next();
      expect(unit?.kind).toBe('countersign');
      expect((unit as { check: CountersignCheck }).check.outcome).toBe('agreed');
    });

    it('hands a record that fails to authenticate out after the run it ended', async () => {
      const { server, client } = await sessionPair();
      const inbox = new Inbox();
      const reader = new RecordReader(inbox, server, 16, recordingChecks());
      const bytes = Buffer.concat([
        signedSend(client, 'a'),
        signedSend(client, 'b'),
        tampered(signedSend(client, 'c')),
        signedSend(client, 'd'),
      ]);
      inbox.push(...decode(bytes));
      expect(sendIds(reader.next())).toEqual(['a', 'b']);
      expect(reader.next()?.kind).toBe('failure');
      // The session is closed now: what follows fails too, each as its own unit.
      expect(reader.next()?.kind).toBe('failure');
      expect(reader.next()).toBeUndefined();
    });
  });
});
