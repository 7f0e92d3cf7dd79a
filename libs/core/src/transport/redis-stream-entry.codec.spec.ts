/**
 * The Redis Streams entry and reply format without Redis: what the client writes the server
 * reads back unchanged, and what neither could have written is refused, not guessed at.
 */
import fc from 'fast-check';

import {
  decodeStreamEntry,
  decodeStreamReply,
  encodeStreamEntry,
  encodeStreamReply,
  type StreamEvent,
  type StreamReply,
  type StreamRequest,
} from './redis-stream-entry.codec';

/** Payloads as they come out of JSON.parse: no undefined, no -0, no functions. */
const payload = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const pattern = fc.string({ minLength: 1 });

const request: fc.Arbitrary<StreamRequest> = fc.record({
  kind: fc.constant('request' as const),
  pattern,
  data: payload,
  replyTo: fc.string(),
  requestId: fc.string(),
});
const event: fc.Arbitrary<StreamEvent> = fc.record({
  kind: fc.constant('event' as const),
  pattern,
  data: payload,
});

const sendFields = ['p', 'relay.send', 'd', '{"to":"bob"}', 'r', 'sc:reply:c1', 'i', '7'];

describe('stream entries', () => {
  it('decode to what was encoded, requests and events alike', () => {
    fc.assert(
      fc.property(fc.oneof(request, event), (entry) => {
        expect(decodeStreamEntry(encodeStreamEntry(entry))).toEqual(entry);
      }),
    );
  });

  it('are the field letters the deployed format uses', () => {
    expect(
      encodeStreamEntry({
        kind: 'request',
        pattern: 'relay.send',
        data: { to: 'bob' },
        replyTo: 'sc:reply:c1',
        requestId: '7',
      }),
    ).toEqual(sendFields);
    expect(encodeStreamEntry({ kind: 'event', pattern: 'relay.note', data: undefined })).toEqual([
      'p',
      'relay.note',
      'd',
      'null',
    ]);
  });

  it('ignore fields of letters this version does not know, in any order', () => {
    const reordered = [
      'x',
      'later',
      'i',
      '7',
      'r',
      'sc:reply:c1',
      'd',
      '{"to":"bob"}',
      'p',
      'relay.send',
    ];
    expect(decodeStreamEntry(reordered)).toEqual(decodeStreamEntry(sendFields));
    expect(decodeStreamEntry(reordered)).toMatchObject({ kind: 'request', requestId: '7' });
  });

  it.each([
    ['no pattern', ['d', 'null', 'r', 'c', 'i', '1'], 'no pattern'],
    ['an empty pattern', ['p', '', 'd', 'null'], 'no pattern'],
    ['no data', ['p', 'relay.send', 'r', 'c', 'i', '1'], 'no data'],
    ['data that is not JSON', ['p', 'relay.send', 'd', '{', 'r', 'c', 'i', '1'], 'not JSON'],
    ['a reply channel without an id', ['p', 'relay.send', 'd', 'null', 'r', 'c'], 'request id'],
    ['an id without a reply channel', ['p', 'relay.send', 'd', 'null', 'i', '1'], 'request id'],
    ['a field given twice', [...sendFields, 'p', 'auth.login'], 'given twice'],
    ['an odd field list', [...sendFields, 'p'], 'odd number'],
  ])('refuse %s', (_, fields, reason) => {
    expect(decodeStreamEntry(fields)).toMatchObject({
      kind: 'malformed',
      reason: expect.stringContaining(reason) as unknown,
    });
  });

  it('say where to report a malformed entry only when it names both channel and id', () => {
    expect(decodeStreamEntry(['d', 'null', 'r', 'c', 'i', '1'])).toMatchObject({
      replyTo: 'c',
      requestId: '1',
    });
    expect(decodeStreamEntry(['p', 'relay.send', 'd', 'null', 'r', 'c'])).toMatchObject({
      replyTo: undefined,
      requestId: undefined,
    });
  });

  it('never throw, whatever the field list', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom('p', 'd', 'r', 'i'), fc.string())),
        (fields) => {
          const entry = decodeStreamEntry(fields);
          expect(['request', 'event', 'malformed']).toContain(entry.kind);
        },
      ),
    );
  });
});

describe('replies', () => {
  const reply: fc.Arbitrary<StreamReply> = fc.oneof(
    fc.record({ requestId: fc.string(), response: payload }),
    fc.record({ requestId: fc.string(), err: fc.string() }),
  );

  it('decode to what was encoded', () => {
    fc.assert(
      fc.property(reply, (r) => {
        expect(decodeStreamReply(encodeStreamReply(r))).toEqual(r);
      }),
    );
  });

  it('are the JSON the deployed format uses', () => {
    expect(encodeStreamReply({ requestId: '7', response: { ok: true } })).toBe(
      '{"i":"7","response":{"ok":true}}',
    );
    expect(encodeStreamReply({ requestId: '7', err: 'handler failed' })).toBe(
      '{"i":"7","err":"handler failed"}',
    );
  });

  it('fail the request when the error is not a string, rather than leave the caller waiting', () => {
    expect(decodeStreamReply('{"i":"7","err":{"code":1}}')).toEqual({
      requestId: '7',
      err: 'failed',
    });
  });

  it.each([
    ['not JSON', '{"i":'],
    ['not an object', '"7"'],
    ['an array', '["7"]'],
    ['null', 'null'],
    ['no request id', '{"response":1}'],
    ['a request id that is not a string', '{"i":7,"response":1}'],
  ])('refuse %s', (_, message) => {
    expect(decodeStreamReply(message)).toBeUndefined();
  });

  it('never throw, whatever arrives on the channel', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (m) => {
          decodeStreamReply(m);
        },
      ),
    );
  });
});
