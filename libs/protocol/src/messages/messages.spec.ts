/**
 * Property tests of the PROTOCOL.md §2/§5/§6 message parsers (structure: `bad_frame`) and of the
 * PROTOCOL.md §3/§6 value rules of checkRequest (`bad_request`, `too_large`).
 */
import fc from 'fast-check';

import {
  CLIENT_ID_PATTERN,
  DEFAULT_MAX_BODY_BYTES,
  MAX_USER_PUBLIC_KEY_BYTES,
  MAX_USER_SIGNATURE_BYTES,
  PROTOCOL_ID,
  ROOM_PATTERN,
  USERNAME_PATTERN,
} from '../constants';
import { ERROR_CODES, type ErrorCode } from '../errors/error-codes';
import { ProtocolError } from '../errors/protocol-error';
import { type ClientMessage, parseClientMessage } from './client-messages';
import { parseFrame } from './handshake-frames';
import { parseLoginPayload } from './login-payload';
import { checkRequest, isClientId, isRoom, isUsername } from './request-rules';
import { parseServerMessage } from './server-messages';

const RUNS = { numRuns: 1000 };

// ------------------------------------------------------------------ shapes of every message

type Kind = 'string' | 'number' | 'array';

interface Member {
  readonly kind: Kind;
  readonly arb: fc.Arbitrary<unknown>;
  readonly optional?: boolean;
  /** A PROTOCOL.md §2 binary field: decoded length range. */
  readonly b64?: { readonly min: number; readonly max: number };
  /** Must be an integer in 0..2^53-1 at the schema level. */
  readonly uint?: boolean;
}

interface Shape {
  readonly disc: 'type' | 'action';
  readonly tag: string;
  readonly members: Readonly<Record<string, Member>>;
}

const text = fc.string({ unit: 'grapheme', maxLength: 16 });
const anyNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.maxSafeInteger(),
);
const uintArb = fc.oneof(
  fc.nat({ max: 1000 }),
  fc.maxSafeNat(),
  fc.constant(Number.MAX_SAFE_INTEGER),
);

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

function b64Arb(min: number, max: number): fc.Arbitrary<string> {
  const small = fc.uint8Array({ minLength: min, maxLength: Math.min(max, min + 40) });
  if (max > 4096 || max === min) return small.map(b64);
  return fc
    .oneof(
      { weight: 6, arbitrary: small },
      { weight: 1, arbitrary: fc.constant(Buffer.alloc(max, 0xab)) },
    )
    .map(b64);
}

const str = (arb: fc.Arbitrary<unknown> = text): Member => ({ kind: 'string', arb });
const num = (): Member => ({ kind: 'number', arb: anyNumber });
const uint = (): Member => ({ kind: 'number', arb: uintArb, uint: true });
const bin = (min: number, max = min): Member => ({
  kind: 'string',
  arb: b64Arb(min, max),
  b64: { min, max },
});
const opt = (m: Member): Member => ({ ...m, optional: true });

const shape = (disc: Shape['disc'], tag: string, members: Record<string, Member> = {}): Shape => ({
  disc,
  tag,
  members,
});

/** The decoded ranges of the binary fields, as the spec and constants give them. */
const SIG = [1, MAX_USER_SIGNATURE_BYTES] as const;
const SPKI = [1, MAX_USER_PUBLIC_KEY_BYTES] as const;
const RECORD = [16, 1 << 30] as const;

const FRAME_SHAPES: Shape[] = [
  shape('type', 'client_hello', { protocol: str(fc.constant(PROTOCOL_ID)), nonce: bin(32) }),
  shape('type', 'server_hello', {
    server_version: str(),
    challenge: bin(32),
    dh_pub: bin(32),
    server_key: bin(...SPKI),
  }),
  shape('type', 'server_auth', { signature: bin(64) }),
  shape('type', 'login', { dh_pub: bin(32), payload: bin(...RECORD) }),
  shape('type', 'enc', { ct: bin(...RECORD) }),
];

const ERROR_SHAPE = shape('type', 'error', {
  code: str(fc.constantFrom(...ERROR_CODES)),
  message: str(),
  id: opt(str()),
  retry_after: opt(uint()),
});

const CLIENT_SHAPES: Shape[] = [
  shape('type', 'send', { id: str(), to: str(), body: str(), ts: num(), sig: bin(...SIG) }),
  shape('type', 'delivered', { msg_id: str() }),
  shape('type', 'join', { room: str() }),
  shape('type', 'leave', { room: str() }),
  shape('type', 'get_key', { user: str() }),
  shape('type', 'history', { with: str(), before: opt(str()), limit: opt(num()) }),
  shape('type', 'ping', { n: opt(num()) }),
  shape('type', 'key_update'),
  shape('type', 'bye'),
  shape('type', 'countersign', {
    c2s_count: uint(),
    c2s_chain: bin(32),
    s2c_count: uint(),
    s2c_chain: bin(32),
    signature: bin(...SIG),
  }),
];

const DELIVER_SHAPE = shape('type', 'deliver', {
  msg_id: str(),
  id: str(),
  from: str(),
  to: str(),
  body: str(),
  ts: uint(),
  server_ts: uint(),
  sig: bin(...SIG),
});

// login_ok is the handshake's last message (loginOkSchema), not a session message.
const SERVER_SHAPES: Shape[] = [
  shape('type', 'ack', { id: str(), msg_id: str(), server_ts: uint() }),
  DELIVER_SHAPE,
  ERROR_SHAPE,
  shape('type', 'receipt', {
    session_id: str(),
    c2s_count: uint(),
    c2s_chain: bin(32),
    s2c_count: uint(),
    s2c_chain: bin(32),
    signature: bin(64),
  }),
  shape('type', 'key_update'),
  shape('type', 'joined', {
    room: str(),
    members: { kind: 'array', arb: fc.array(text, { maxLength: 4 }) },
  }),
  shape('type', 'left', { room: str() }),
  shape('type', 'key', { user: str(), public_key: bin(...SPKI), fingerprint: str() }),
  shape('type', 'history', {
    with: str(),
    messages: { kind: 'array', arb: fc.array(objectArb(DELIVER_SHAPE), { maxLength: 2 }) },
  }),
  shape('type', 'pong', { n: opt(uint()) }),
];

const LOGIN_SHAPES: Shape[] = [
  shape('action', 'login', { username: str(), password: str(), signature: bin(...SIG) }),
  shape('action', 'register', {
    username: str(),
    password: str(),
    signature: bin(...SIG),
    public_key: bin(...SPKI),
  }),
];

type JsonObject = Record<string, unknown>;

/** A valid instance of `s`: the discriminator first, optional members sometimes. */
function objectArb(s: Shape): fc.Arbitrary<JsonObject> {
  const arbs = Object.fromEntries(Object.entries(s.members).map(([k, m]) => [k, m.arb]));
  const requiredKeys = Object.entries(s.members)
    .filter(([, m]) => !m.optional)
    .map(([k]) => k);
  return fc.record(arbs, { requiredKeys }).map((members) => {
    const object: JsonObject = { [s.disc]: s.tag, ...members };
    // PROTOCOL.md §2: rate_limited carries retry_after.
    if (s === ERROR_SHAPE && object.code === 'rate_limited' && object.retry_after === undefined) {
      object.retry_after = 30;
    }
    return object;
  });
}

interface Parser {
  readonly name: string;
  readonly parse: (body: Uint8Array) => unknown;
  readonly shapes: Shape[];
  readonly codes: readonly ErrorCode[];
}

const PARSERS: Parser[] = [
  {
    name: 'parseFrame',
    parse: parseFrame,
    shapes: [...FRAME_SHAPES, ERROR_SHAPE],
    codes: ['bad_frame', 'unsupported_protocol'],
  },
  {
    name: 'parseClientMessage',
    parse: parseClientMessage,
    shapes: CLIENT_SHAPES,
    codes: ['bad_frame'],
  },
  {
    name: 'parseServerMessage',
    parse: parseServerMessage,
    shapes: SERVER_SHAPES,
    codes: ['bad_frame'],
  },
  {
    name: 'parseLoginPayload',
    parse: parseLoginPayload,
    shapes: LOGIN_SHAPES,
    codes: ['bad_frame'],
  },
];

const ALL_SHAPES = PARSERS.flatMap((p) => p.shapes);
const ALL_TAGS = [...new Set(ALL_SHAPES.map((s) => s.tag))];
const ALL_MEMBERS = [...new Set(ALL_SHAPES.flatMap((s) => Object.keys(s.members)))];

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Runs a parser; returns the ProtocolError it threw, failing the test on any other throw. */
function outcome(parser: Parser, body: Uint8Array): { value?: unknown; error?: ProtocolError } {
  try {
    return { value: parser.parse(body) };
  } catch (error) {
    if (!(error instanceof ProtocolError)) {
      throw new Error(`${parser.name} threw a non-ProtocolError: ${String(error)}`);
    }
    return { error };
  }
}

function expectCode(parser: Parser, body: Uint8Array, code: ErrorCode): ProtocolError {
  const { value, error } = outcome(parser, body);
  if (error === undefined) {
    throw new Error(
      `${parser.name} accepted ${Buffer.from(body).toString('utf8')} as ${JSON.stringify(value)}`,
    );
  }
  expect([error.code, error.message]).toEqual([code, expect.any(String)]);
  return error;
}

// ------------------------------------------------------------------ valid shapes parse

describe.each(PARSERS)('$name', (parser) => {
  it('parses every valid shape to exactly its JSON value', () => {
    fc.assert(
      fc.property(fc.oneof(...parser.shapes.map(objectArb)), (object) => {
        const body = utf8(JSON.stringify(object));
        const { value, error } = outcome(parser, body);
        expect(error).toBeUndefined();
        expect(value).toEqual(JSON.parse(body.toString('utf8')));
      }),
      RUNS,
    );
  });

  it('rejects any single structural fault as bad_frame, quoting no value', () => {
    const wrongValue = (kind: Kind) =>
      fc
        .oneof(
          fc.constant(null),
          fc.boolean(),
          fc.integer(),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.string({ maxLength: 4 }),
          fc.array(fc.integer(), { maxLength: 3 }),
          fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
        )
        .filter((v) => jsonKind(v) !== kind);
    const tags = parser.shapes.map((s) => s.tag);

    const faultArb = fc.constantFrom(...parser.shapes).chain((s) => {
      const names = Object.keys(s.members);
      const required = names.filter((k) => !s.members[k]!.optional);
      const strings = names.filter((k) => s.members[k]!.kind === 'string' && !s.members[k]!.b64);
      const binaries = names.filter((k) => s.members[k]!.b64);
      const uints = names.filter((k) => s.members[k]!.uint);
      const faults: Array<fc.Arbitrary<(o: JsonObject) => string>> = [
        // A member not defined for that type (a lookalike of a real one, or anything).
        fc
          .tuple(
            fc.oneof(
              fc.constantFrom('__proto__', 'constructor', 'toString', 'Type', 'type ', 'TYPE'),
              fc.constantFrom(...ALL_MEMBERS, 'type', 'action', 'retry_after'),
              fc.string({ maxLength: 8 }),
            ),
            fc.jsonValue({ maxDepth: 2 }),
          )
          .filter(([key]) => key !== s.disc && !Object.hasOwn(s.members, key))
          .map(
            ([key, value]) =>
              (o: JsonObject) =>
                `${JSON.stringify(o).slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}`,
          ),
        // The discriminator missing, of the wrong JSON type, or an unknown tag.
        fc.constant((o: JsonObject) => JSON.stringify(omit(o, s.disc))),
        wrongValue('string').map((v) => (o: JsonObject) => JSON.stringify({ ...o, [s.disc]: v })),
        fc
          .oneof(
            fc.string({ maxLength: 12 }),
            fc.constantFrom(...ALL_TAGS, s.tag.toUpperCase(), `${s.tag} `),
          )
          .filter((t) => !tags.includes(t))
          .map((t) => (o: JsonObject) => JSON.stringify({ ...o, [s.disc]: t })),
      ];
      if (required.length > 0) {
        faults.push(
          fc.constantFrom(...required).map((k) => (o: JsonObject) => JSON.stringify(omit(o, k))),
        );
      }
      if (names.length > 0) {
        faults.push(
          fc
            .constantFrom(...names)
            .chain((k) => wrongValue(s.members[k]!.kind).map((v) => [k, v] as const))
            .map(
              ([k, v]) =>
                (o: JsonObject) =>
                  JSON.stringify({ ...o, [k]: v }),
            ),
        );
      }
      if (strings.length > 0) {
        // A string with an unpaired surrogate: JSON.stringify writes it as a \uXXXX escape.
        faults.push(
          fc
            .tuple(
              fc.constantFrom(...strings),
              text,
              fc.integer({ min: 0xd800, max: 0xdfff }),
              text,
            )
            .map(
              ([k, a, c, b]) =>
                (o: JsonObject) =>
                  JSON.stringify({ ...o, [k]: `${a}${String.fromCharCode(c)}${b}` }),
            ),
        );
      }
      if (binaries.length > 0) {
        faults.push(
          fc
            .tuple(fc.constantFrom(...binaries), fc.nat(), fc.nat())
            .map(([k, pick, at]) => (o: JsonObject) => {
              const { min, max } = s.members[k]!.b64!;
              const variants = nonCanonical(o[k] as string, at, min, max);
              return JSON.stringify({ ...o, [k]: variants[pick % variants.length] });
            }),
        );
      }
      if (uints.length > 0) {
        faults.push(
          fc
            .tuple(
              fc.constantFrom(...uints),
              fc.constantFrom(-1, 0.5, -0.5, 2 ** 53, 1e300, -1e300),
            )
            .map(
              ([k, v]) =>
                (o: JsonObject) =>
                  JSON.stringify({ ...o, [k]: v }),
            ),
        );
      }
      if (s === ERROR_SHAPE) {
        faults.push(
          fc.constant((o: JsonObject) =>
            JSON.stringify(omit({ ...o, code: 'rate_limited' }, 'retry_after')),
          ),
        );
      }
      return fc.tuple(objectArb(s), fc.oneof(...faults));
    });

    fc.assert(
      fc.property(faultArb, fc.stringMatching(/^[a-z]{12}$/), ([object, fault], marker) => {
        // Put a recognisable secret in every string member that stays valid: it must never
        // appear in the error message.
        const marked = Object.fromEntries(
          Object.entries(object).map(([k, v]) =>
            typeof v === 'string' &&
            k !== 'type' &&
            k !== 'action' &&
            k !== 'code' &&
            k !== 'protocol' &&
            !isBase64Member(k)
              ? [k, `secret-${marker}`]
              : [k, v],
          ),
        );
        const body = utf8(fault(marked));
        const error = expectCode(parser, body, 'bad_frame');
        expect(error.message).not.toContain(marker);
      }),
      RUNS,
    );
  });
});

function isBase64Member(key: string): boolean {
  return ALL_SHAPES.some((s) => s.members[key]?.b64 !== undefined);
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

function omit(o: JsonObject, key: string): JsonObject {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

/** Non-canonical or wrong-length spellings of a valid base64 value (always at least one). */
function nonCanonical(value: string, at: number, min: number, max: number): string[] {
  const out: string[] = [];
  const i = value.length === 0 ? 0 : at % (value.length + 1);
  out.push(`${value.slice(0, i)}${[' ', '\n', '\t', '\r\n'][at % 4]}${value.slice(i)}`);
  if (value.endsWith('=')) {
    out.push(value.replace(/=+$/, '')); // padding missing
    out.push(`${value}=`); // padding extra
    // Non-zero trailing bits: bump the last data character (its unused low bits become 1).
    const pad = value.endsWith('==') ? 2 : 1;
    const lastData = value.length - pad - 1;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const index = alphabet.indexOf(value[lastData]!);
    out.push(`${value.slice(0, lastData)}${alphabet[index | 1]}${value.slice(lastData + 1)}`);
  }
  if (/[+/]/.test(value)) out.push(value.replace(/\+/g, '-').replace(/\//g, '_')); // URL-safe
  if (min > 0) out.push(b64(Buffer.alloc(min - 1, 7))); // too short
  if (max <= 4096) out.push(b64(Buffer.alloc(max + 1, 7))); // too long
  return out;
}

// ------------------------------------------------------------------ arbitrary input

/** Strings that may hold unpaired surrogates. */
const anyText = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    {
      weight: 2,
      arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    },
  ),
  maxLength: 12,
});

/** Values a member might plausibly hold, right or wrong. */
const memberValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(
    PROTOCOL_ID,
    'securechat/2',
    'alice',
    '#room',
    'rate_limited',
    'bad_frame',
    ...ERROR_CODES,
  ),
  fc.uint8Array({ maxLength: 70 }).map(b64),
  fc.constantFrom(16, 32, 64).map((n) => b64(Buffer.alloc(n, 1))),
  uintArb,
  anyText,
  fc.array(text, { maxLength: 3 }),
);

/** Objects with a known or random discriminator and known or random members. */
function typedJunk(shapes: Shape[]): fc.Arbitrary<JsonObject> {
  const tags = shapes.map((s) => s.tag);
  const members = [...new Set(shapes.flatMap((s) => Object.keys(s.members)))];
  return fc
    .tuple(
      fc.constantFrom('type', 'action'),
      fc.oneof(
        fc.constantFrom(...tags),
        fc.constantFrom(...ALL_TAGS),
        fc.string({ maxLength: 10 }),
      ),
      fc.dictionary(
        fc.oneof(
          fc.constantFrom(...members),
          fc.constantFrom(...ALL_MEMBERS),
          fc.string({ maxLength: 6 }),
        ),
        memberValue,
        { maxKeys: 8 },
      ),
    )
    .map(([disc, tag, rest]) => ({ [disc]: tag, ...rest }));
}

/** Valid objects with one member's value replaced by anything, or one member added. */
function nearlyValid(shapes: Shape[]): fc.Arbitrary<JsonObject> {
  return fc
    .tuple(
      fc.oneof(...shapes.map(objectArb)),
      fc.nat(),
      memberValue,
      fc.option(fc.constantFrom(...ALL_MEMBERS, 'x'), { nil: undefined }),
    )
    .map(([object, pick, value, added]) => {
      const keys = Object.keys(object);
      return { ...object, [added ?? keys[pick % keys.length]!]: value };
    });
}

/** client_hello with any protocol and sometimes other members (PROTOCOL.md §3 step 1). */
const helloJunk = fc
  .tuple(
    fc.oneof(fc.constantFrom<unknown>(PROTOCOL_ID, 'securechat/2', ''), anyText, memberValue),
    fc.option(fc.uint8Array({ maxLength: 40 }).map(b64), { nil: undefined }),
    fc.dictionary(fc.string({ maxLength: 4 }), memberValue, { maxKeys: 2 }),
  )
  .map(([protocol, nonce, rest]) => ({ ...rest, type: 'client_hello', protocol, nonce }));

function junkBody(parser: Parser): fc.Arbitrary<Uint8Array> {
  const valid = fc.oneof(...parser.shapes.map(objectArb), ...ALL_SHAPES.map(objectArb));
  const json = (arb: fc.Arbitrary<unknown>) => arb.map((v) => utf8(JSON.stringify(v) ?? 'null'));
  return fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    json(fc.jsonValue()),
    json(fc.object()),
    json(fc.object({ key: anyText, values: [anyText, fc.integer(), fc.constant(null)] })),
    { weight: 2, arbitrary: json(typedJunk(parser.shapes)) },
    { weight: 2, arbitrary: json(nearlyValid(parser.shapes)) },
    json(nearlyValid(ALL_SHAPES)),
    json(helloJunk),
    json(valid),
    fc.string({ unit: 'binary', maxLength: 40 }).map(utf8),
    // A valid object's text with its bytes damaged: truncated, or a byte replaced.
    fc
      .tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean())
      .map(([o, at, byte, cut]) => {
        const bytes = utf8(JSON.stringify(o));
        const i = at % bytes.length;
        if (cut) return bytes.subarray(0, i);
        bytes[i] = byte;
        return bytes;
      }),
  );
}

describe('every parser on arbitrary input', () => {
  it.each(PARSERS)('$name throws nothing but ProtocolError with its codes', (parser) => {
    fc.assert(
      fc.property(junkBody(parser), (body) => {
        const { value, error } = outcome(parser, body);
        if (error !== undefined) {
          expect(ERROR_CODES).toContain(error.code);
          expect(parser.codes).toContain(error.code);
          return;
        }
        // Accepted: then it was a JSON object, and the result is exactly its value.
        expect(value).toEqual(JSON.parse(Buffer.from(body).toString('utf8')));
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------------ examples

const frames = PARSERS[0]!;
const clients = PARSERS[1]!;
const servers = PARSERS[2]!;
const logins = PARSERS[3]!;

const nonce = b64(Buffer.alloc(32, 1));
const hello = { type: 'client_hello', protocol: PROTOCOL_ID, nonce };
const sig = b64(Buffer.alloc(64, 2));
const chain = b64(Buffer.alloc(32, 3));
const deliver = {
  type: 'deliver',
  msg_id: 'm1',
  id: 'c1',
  from: 'alice',
  to: 'bob',
  body: 'hi',
  ts: 1,
  server_ts: 2,
  sig,
};

describe('examples: valid shapes', () => {
  const valid: Array<[Parser, object]> = [
    [frames, hello],
    [
      frames,
      {
        type: 'server_hello',
        server_version: '1.0',
        challenge: nonce,
        dh_pub: nonce,
        server_key: b64(Buffer.alloc(44, 4)),
      },
    ],
    [frames, { type: 'server_auth', signature: sig }],
    [frames, { type: 'login', dh_pub: nonce, payload: b64(Buffer.alloc(16)) }],
    [frames, { type: 'enc', ct: b64(Buffer.alloc(100)) }],
    [frames, { type: 'error', code: 'bad_frame', message: 'x' }],
    [frames, { type: 'error', code: 'rate_limited', message: 'x', retry_after: 0 }],
    [clients, { type: 'send', id: 'a', to: 'bob', body: '', ts: 0, sig }],
    [clients, { type: 'delivered', msg_id: 'm' }],
    [clients, { type: 'join', room: '#r' }],
    [clients, { type: 'leave', room: '#r' }],
    [clients, { type: 'get_key', user: 'bob' }],
    [clients, { type: 'history', with: 'bob' }],
    [clients, { type: 'history', with: 'bob', before: 'm', limit: 10 }],
    [clients, { type: 'ping' }],
    [clients, { type: 'ping', n: 5 }],
    [clients, { type: 'key_update' }],
    [clients, { type: 'bye' }],
    [
      clients,
      {
        type: 'countersign',
        c2s_count: 0,
        c2s_chain: chain,
        s2c_count: 1,
        s2c_chain: chain,
        signature: sig,
      },
    ],
    [servers, { type: 'ack', id: 'c1', msg_id: 'm1', server_ts: 3 }],
    [servers, deliver],
    [servers, { type: 'error', code: 'not_found', message: 'x', id: 'c1' }],
    [
      servers,
      {
        type: 'receipt',
        session_id: 's',
        c2s_count: 1,
        c2s_chain: chain,
        s2c_count: 2,
        s2c_chain: chain,
        signature: sig,
      },
    ],
    [servers, { type: 'key_update' }],
    [servers, { type: 'joined', room: '#r', members: ['alice', 'bob'] }],
    [servers, { type: 'left', room: '#r' }],
    [
      servers,
      { type: 'key', user: 'bob', public_key: b64(Buffer.alloc(44)), fingerprint: 'sha256:00' },
    ],
    [servers, { type: 'history', with: 'bob', messages: [deliver, deliver] }],
    [servers, { type: 'pong' }],
    [servers, { type: 'pong', n: 5 }],
    [logins, { action: 'login', username: 'alice', password: 'pw', signature: sig }],
    [
      logins,
      {
        action: 'register',
        username: 'alice',
        password: 'pw',
        signature: sig,
        public_key: b64(Buffer.alloc(44)),
      },
    ],
  ];

  it.each(
    valid.map(([parser, object]) => ({
      name: parser.name,
      text: JSON.stringify(object),
      parser,
      object,
    })),
  )('$name $text', ({ parser, object }) => {
    const { value, error } = outcome(parser, utf8(JSON.stringify(object)));
    expect(error).toBeUndefined();
    expect(value).toEqual(object);
  });
});

describe('examples: rejected', () => {
  const raw = (s: string) => utf8(s);
  const json = (o: unknown) => utf8(JSON.stringify(o));
  const cases: Array<[string, Parser, Uint8Array, ErrorCode]> = [
    ['unknown member', frames, json({ ...hello, extra: 1 }), 'bad_frame'],
    ['missing member', frames, json(omit(hello, 'nonce')), 'bad_frame'],
    ['wrong JSON type', frames, json({ ...hello, nonce: 32 }), 'bad_frame'],
    ['unknown type', frames, json({ type: 'hello' }), 'bad_frame'],
    ['missing type', clients, json({ room: '#r' }), 'bad_frame'],
    ['type of the wrong JSON type', clients, json({ type: ['bye'] }), 'bad_frame'],
    ['a frame type inside the session', clients, json(hello), 'bad_frame'],
    ['a client type from the server', servers, json({ type: 'bye' }), 'bad_frame'],
    ['a type in the login payload', logins, json({ type: 'login', action: 'login' }), 'bad_frame'],
    ['invalid UTF-8', frames, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'bad_frame'],
    [
      'overlong UTF-8',
      clients,
      Buffer.concat([raw('{"type":"bye","x":"'), Buffer.from([0xc0, 0xaf]), raw('"}')]),
      'bad_frame',
    ],
    [
      'UTF-8 of a surrogate (CESU)',
      clients,
      Buffer.concat([raw('{"type":"join","room":"'), Buffer.from([0xed, 0xa0, 0x80]), raw('"}')]),
      'bad_frame',
    ],
    [
      'a UTF-8 BOM',
      clients,
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), raw('{"type":"bye"}')]),
      'bad_frame',
    ],
    ['a JSON array', frames, raw('[{"type":"bye"}]'), 'bad_frame'],
    ['a JSON number', clients, raw('42'), 'bad_frame'],
    ['JSON null', servers, raw('null'), 'bad_frame'],
    ['a JSON string', logins, raw('"login"'), 'bad_frame'],
    ['trailing garbage', clients, raw('{"type":"bye"}x'), 'bad_frame'],
    ['two objects', clients, raw('{"type":"bye"}{"type":"bye"}'), 'bad_frame'],
    ['empty body', frames, raw(''), 'bad_frame'],
    ['missing padding', frames, json({ ...hello, nonce: nonce.replace(/=+$/, '') }), 'bad_frame'],
    [
      "'YQ' for 'YQ=='",
      logins,
      json({ action: 'login', username: 'a', password: 'p', signature: 'YQ' }),
      'bad_frame',
    ],
    [
      'non-zero trailing bits (YR==)',
      logins,
      json({ action: 'login', username: 'a', password: 'p', signature: 'YR==' }),
      'bad_frame',
    ],
    [
      'whitespace in base64',
      frames,
      json({ type: 'enc', ct: 'AAAA AAAAAAAAAAAAAAAAAAA=' }),
      'bad_frame',
    ],
    [
      'a newline in base64',
      frames,
      json({ type: 'enc', ct: `${b64(Buffer.alloc(12))}\n${b64(Buffer.alloc(6))}` }),
      'bad_frame',
    ],
    [
      'URL-safe base64',
      frames,
      json({ type: 'server_auth', signature: b64(Buffer.alloc(64, 0xff)).replace(/\//g, '_') }),
      'bad_frame',
    ],
    ['a 31-byte nonce', frames, json({ ...hello, nonce: b64(Buffer.alloc(31)) }), 'bad_frame'],
    ['a 33-byte nonce', frames, json({ ...hello, nonce: b64(Buffer.alloc(33)) }), 'bad_frame'],
    [
      'a 63-byte server signature',
      frames,
      json({ type: 'server_auth', signature: b64(Buffer.alloc(63)) }),
      'bad_frame',
    ],
    [
      'a record shorter than its tag',
      frames,
      json({ type: 'enc', ct: b64(Buffer.alloc(15)) }),
      'bad_frame',
    ],
    [
      'an empty user signature',
      clients,
      json({ type: 'send', id: 'a', to: 'bob', body: '', ts: 0, sig: '' }),
      'bad_frame',
    ],
    [
      'a user signature over 2048 bytes',
      clients,
      json({ type: 'send', id: 'a', to: 'bob', body: '', ts: 0, sig: b64(Buffer.alloc(2049)) }),
      'bad_frame',
    ],
    [
      'client_hello securechat/2',
      frames,
      json({ ...hello, protocol: 'securechat/2' }),
      'unsupported_protocol',
    ],
    [
      'client_hello securechat/2 with other members not ours',
      frames,
      json({ type: 'client_hello', protocol: 'securechat/2', v: 2 }),
      'unsupported_protocol',
    ],
    [
      'client_hello with an empty protocol',
      frames,
      json({ ...hello, protocol: '' }),
      'unsupported_protocol',
    ],
    ['client_hello with a numeric protocol', frames, json({ ...hello, protocol: 1 }), 'bad_frame'],
    ['client_hello without protocol', frames, json(omit(hello, 'protocol')), 'bad_frame'],
    [
      'rate_limited without retry_after',
      frames,
      json({ type: 'error', code: 'rate_limited', message: 'x' }),
      'bad_frame',
    ],
    [
      'rate_limited without retry_after (record)',
      servers,
      json({ type: 'error', code: 'rate_limited', message: 'x' }),
      'bad_frame',
    ],
    [
      'retry_after not an integer',
      servers,
      json({ type: 'error', code: 'rate_limited', message: 'x', retry_after: 1.5 }),
      'bad_frame',
    ],
    [
      'an unknown error code',
      servers,
      json({ type: 'error', code: 'teapot', message: 'x' }),
      'bad_frame',
    ],
    ['an unpaired surrogate escape', clients, raw('{"type":"join","room":"\\ud800"}'), 'bad_frame'],
    [
      'a lone low surrogate escape',
      frames,
      raw('{"type":"error","code":"internal","message":"a\\udc00"}'),
      'bad_frame',
    ],
    [
      'an unpaired surrogate in a member name',
      clients,
      raw('{"type":"bye","\\ud83d":1}'),
      'bad_frame',
    ],
    [
      'an unpaired surrogate deep inside',
      servers,
      raw('{"type":"joined","room":"#r","members":["ok","\\udfff"]}'),
      'bad_frame',
    ],
    [
      'a surrogate in client_hello protocol',
      frames,
      raw('{"type":"client_hello","protocol":"\\ud800","nonce":"x"}'),
      'bad_frame',
    ],
    [
      'a deliver in history with an unknown member',
      servers,
      json({ type: 'history', with: 'bob', messages: [{ ...deliver, x: 1 }] }),
      'bad_frame',
    ],
    [
      'a deliver in history without its type',
      servers,
      json({ type: 'history', with: 'bob', messages: [omit(deliver, 'type')] }),
      'bad_frame',
    ],
    [
      'members not all strings',
      servers,
      json({ type: 'joined', room: '#r', members: ['a', 1] }),
      'bad_frame',
    ],
    [
      'a negative count',
      clients,
      json({
        type: 'countersign',
        c2s_count: -1,
        c2s_chain: chain,
        s2c_count: 0,
        s2c_chain: chain,
        signature: sig,
      }),
      'bad_frame',
    ],
    [
      'a count of 2^53',
      servers,
      json({ type: 'ack', id: 'a', msg_id: 's', server_ts: 2 ** 53 }),
      'bad_frame',
    ],
    [
      'register without public_key',
      logins,
      json({ action: 'register', username: 'a', password: 'p', signature: sig }),
      'bad_frame',
    ],
    [
      'login with public_key',
      logins,
      json({ action: 'login', username: 'a', password: 'p', signature: sig, public_key: sig }),
      'bad_frame',
    ],
    [
      'an unknown action',
      logins,
      json({ action: 'reset', username: 'a', password: 'p', signature: sig }),
      'bad_frame',
    ],
    [
      'a deeply nested array',
      clients,
      raw(`{"type":"join","room":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
      'bad_frame',
    ],
  ];

  it.each(cases.map(([what, parser, body, code]) => ({ what, parser, body, code })))(
    '$what → $code',
    ({ parser, body, code }) => {
      expectCode(parser, body, code);
    },
  );
});

// ------------------------------------------------------------------ checkRequest

/** The PROTOCOL.md §3/§6 patterns, written out from PROTOCOL.md, independently of constants.ts. */
const SPEC_USERNAME = /^[a-z0-9_]{3,32}$/;
const SPEC_ROOM = /^#[a-z0-9_-]{1,32}$/;
const SPEC_CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const patternChar = fc.constantFrom(
  'a',
  'z',
  'm',
  '0',
  '9',
  '_',
  '-',
  '#',
  'A',
  'Z',
  ' ',
  '\n',
  '.',
  'é',
  '\u0131',
  'K',
  '😀',
  '\0',
);
/** Strings near the patterns: lengths around every bound, mostly pattern characters. */
const nearPattern = fc.oneof(
  fc.string({ unit: patternChar, maxLength: 70 }),
  fc
    .tuple(
      fc.constantFrom('', '#'),
      fc.string({ unit: fc.constantFrom('a', '_', '-', '0', 'Q'), minLength: 0, maxLength: 66 }),
      fc.constantFrom('', '\n', '#', ' '),
    )
    .map((p) => p.join('')),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

describe('name patterns', () => {
  it('isUsername, isRoom and isClientId agree with the patterns', () => {
    fc.assert(
      fc.property(nearPattern, (s) => {
        expect(isUsername(s)).toBe(USERNAME_PATTERN.test(s));
        expect(isRoom(s)).toBe(ROOM_PATTERN.test(s));
        expect(isClientId(s)).toBe(CLIENT_ID_PATTERN.test(s));
        expect(isUsername(s)).toBe(SPEC_USERNAME.test(s));
        expect(isRoom(s)).toBe(SPEC_ROOM.test(s));
        expect(isClientId(s)).toBe(SPEC_CLIENT_ID.test(s));
      }),
      RUNS,
    );
  });

  it('decides the boundaries', () => {
    expect(isUsername('abc')).toBe(true);
    expect(isUsername('ab')).toBe(false);
    expect(isUsername('a'.repeat(32))).toBe(true);
    expect(isUsername('a'.repeat(33))).toBe(false);
    expect(isUsername('alice\n')).toBe(false);
    expect(isUsername('Alice')).toBe(false);
    expect(isUsername('al-ice')).toBe(false);
    expect(isRoom('#a')).toBe(true);
    expect(isRoom('#')).toBe(false);
    expect(isRoom(`#${'a'.repeat(32)}`)).toBe(true);
    expect(isRoom(`#${'a'.repeat(33)}`)).toBe(false);
    expect(isRoom('#a\n')).toBe(false);
    expect(isRoom('##a')).toBe(false);
    expect(isClientId('A-z_9')).toBe(true);
    expect(isClientId('')).toBe(false);
    expect(isClientId('a'.repeat(64))).toBe(true);
    expect(isClientId('a'.repeat(65))).toBe(false);
    expect(isClientId('a\n')).toBe(false);
    expect(isClientId('a.b')).toBe(false);
  });
});

/**
 * What checkRequest must do, from PROTOCOL.md §3/§6 alone: undefined, or the error's code and id.
 */
function expectedCheck(
  m: ClientMessage,
  maxBody: number,
): { code: ErrorCode; id?: string } | undefined {
  const name = (s: string) => SPEC_USERNAME.test(s) || SPEC_ROOM.test(s);
  const safeUint = (n: number) => Number.isSafeInteger(n) && n >= 0;
  switch (m.type) {
    case 'send':
      // PROTOCOL.md §10.2: the request's `id` is echoed whenever it has one, even one that breaks
      // its pattern.
      if (!SPEC_CLIENT_ID.test(m.id)) return { code: 'bad_request', id: m.id };
      if (!name(m.to) || !safeUint(m.ts)) return { code: 'bad_request', id: m.id };
      if (Buffer.byteLength(m.body, 'utf8') > maxBody) return { code: 'too_large', id: m.id };
      return undefined;
    case 'delivered':
      return undefined; // PROTOCOL.md §6 gives msg_id no pattern; PROTOCOL.md §9: one that is not pending is ignored
    case 'join':
    case 'leave':
      return SPEC_ROOM.test(m.room) ? undefined : { code: 'bad_request' };
    case 'get_key':
      return SPEC_USERNAME.test(m.user) ? undefined : { code: 'bad_request' };
    case 'history': {
      const limitOk =
        m.limit === undefined || (Number.isInteger(m.limit) && m.limit >= 1 && m.limit <= 200);
      // `before` is any msg_id text: one that names no stored message precedes nothing (PROTOCOL.md
      // §10.11).
      return name(m.with) && limitOk ? undefined : { code: 'bad_request' };
    }
    case 'ping':
      return m.n === undefined || safeUint(m.n) ? undefined : { code: 'bad_request' };
    case 'key_update':
    case 'bye':
    case 'countersign':
      return undefined;
  }
}

function checkOutcome(m: ClientMessage, maxBodyBytes?: number) {
  try {
    checkRequest(m, maxBodyBytes === undefined ? {} : { maxBodyBytes });
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    const e = error as ProtocolError;
    return e.id === undefined ? { code: e.code } : { code: e.code, id: e.id };
  }
}

describe('checkRequest', () => {
  const numberNearBounds = fc.oneof(
    fc.constantFrom(-1, 0, 1, 0.5, 1.5, 199, 200, 201, 2 ** 53 - 1, 2 ** 53, -0, 1e21, -(2 ** 53)),
    fc.integer({ min: -5, max: 300 }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const msgIdArb = fc.oneof(
    fc.string({ maxLength: 3 }),
    fc.string({ minLength: 126, maxLength: 130 }),
    fc.string({ unit: 'grapheme', maxLength: 140 }),
  );
  const bodyArb = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc
      .tuple(
        fc.integer({ min: DEFAULT_MAX_BODY_BYTES - 4, max: DEFAULT_MAX_BODY_BYTES + 4 }),
        fc.constantFrom('a', 'é', '€', '😀'),
      )
      .map(
        ([bytes, c]) =>
          c.repeat(Math.floor(bytes / Buffer.byteLength(c))) +
          'a'.repeat(bytes % Buffer.byteLength(c)),
      ),
  );
  const bin64 = b64(Buffer.alloc(64));

  const clientMessageArb: fc.Arbitrary<object> = fc.oneof(
    fc.record({
      type: fc.constant('send'),
      id: nearPattern,
      to: nearPattern,
      body: bodyArb,
      ts: numberNearBounds,
      sig: fc.constant(bin64),
    }),
    fc.record({ type: fc.constant('delivered'), msg_id: msgIdArb }),
    fc.record({ type: fc.constantFrom('join', 'leave'), room: nearPattern }),
    fc.record({ type: fc.constant('get_key'), user: nearPattern }),
    fc.record(
      {
        type: fc.constant('history'),
        with: nearPattern,
        before: msgIdArb,
        limit: numberNearBounds,
      },
      { requiredKeys: ['type', 'with'] },
    ),
    fc.record({ type: fc.constant('ping'), n: numberNearBounds }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constantFrom('key_update', 'bye') }),
  );

  it('answers exactly the §3/§6 value rules, echoing the send id', () => {
    fc.assert(
      fc.property(
        clientMessageArb,
        fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
        (object, maxBodyBytes) => {
          // Through the parser first, as the server does: numbers as JSON gives them back.
          const message = parseClientMessage(utf8(JSON.stringify(object)));
          const maxBody = maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
          expect(checkOutcome(message, maxBodyBytes)).toEqual(expectedCheck(message, maxBody));
        },
      ),
      RUNS,
    );
  });

  const send = {
    type: 'send',
    id: 'c-1',
    to: 'bob',
    body: 'hi',
    ts: 1,
    sig: b64(Buffer.alloc(64)),
  } as const;
  const cases: Array<
    [string, ClientMessage, { code: ErrorCode; id?: string } | undefined, number?]
  > = [
    ['valid send to a user', send, undefined],
    ['valid send to a room', { ...send, to: '#room-1' }, undefined],
    ['send with an empty id', { ...send, id: '' }, { code: 'bad_request', id: '' }],
    [
      'send with a 65-character id',
      { ...send, id: 'a'.repeat(65) },
      { code: 'bad_request', id: 'a'.repeat(65) },
    ],
    ['send with a 64-character id', { ...send, id: 'a'.repeat(64) }, undefined],
    ['send with a dotted id', { ...send, id: 'a.b' }, { code: 'bad_request', id: 'a.b' }],
    ['send to an uppercase name', { ...send, to: 'Bob' }, { code: 'bad_request', id: 'c-1' }],
    ['send to a bare #', { ...send, to: '#' }, { code: 'bad_request', id: 'c-1' }],
    ['send with ts -1', { ...send, ts: -1 }, { code: 'bad_request', id: 'c-1' }],
    ['send with ts 1.5', { ...send, ts: 1.5 }, { code: 'bad_request', id: 'c-1' }],
    ['send with ts 2^53', { ...send, ts: 2 ** 53 }, { code: 'bad_request', id: 'c-1' }],
    ['send with ts 2^53-1', { ...send, ts: 2 ** 53 - 1 }, undefined],
    ['send body of 16384 bytes', { ...send, body: 'é'.repeat(8192) }, undefined],
    [
      'send body of 16385 bytes',
      { ...send, body: `${'é'.repeat(8192)}a` },
      { code: 'too_large', id: 'c-1' },
    ],
    [
      'send body over a configured limit',
      { ...send, body: '€€€€' },
      { code: 'too_large', id: 'c-1' },
      11,
    ],
    ['send body at a configured limit', { ...send, body: '€€€€' }, undefined, 12],
    ['delivered with an empty msg_id', { type: 'delivered', msg_id: '' }, undefined],
    [
      'delivered with a 129-character msg_id',
      { type: 'delivered', msg_id: 'x'.repeat(129) },
      undefined,
    ],
    [
      'delivered with a 128-character msg_id',
      { type: 'delivered', msg_id: 'x'.repeat(128) },
      undefined,
    ],
    ['join a room without #', { type: 'join', room: 'room' }, { code: 'bad_request' }],
    ['leave a room with a space', { type: 'leave', room: '#a b' }, { code: 'bad_request' }],
    ['join #a', { type: 'join', room: '#a' }, undefined],
    ['get_key of a room', { type: 'get_key', user: '#room' }, { code: 'bad_request' }],
    ['get_key of a 2-letter name', { type: 'get_key', user: 'ab' }, { code: 'bad_request' }],
    ['history with a bad name', { type: 'history', with: 'B' }, { code: 'bad_request' }],
    ['history limit 0', { type: 'history', with: 'bob', limit: 0 }, { code: 'bad_request' }],
    ['history limit 201', { type: 'history', with: 'bob', limit: 201 }, { code: 'bad_request' }],
    ['history limit 1.5', { type: 'history', with: 'bob', limit: 1.5 }, { code: 'bad_request' }],
    ['history limit 1 and 200', { type: 'history', with: '#r', limit: 200 }, undefined],
    ['history before empty', { type: 'history', with: 'bob', before: '' }, undefined],
    ['ping n -1', { type: 'ping', n: -1 }, { code: 'bad_request' }],
    ['ping n 0.5', { type: 'ping', n: 0.5 }, { code: 'bad_request' }],
    ['ping n 2^53', { type: 'ping', n: 2 ** 53 }, { code: 'bad_request' }],
    ['ping n 2^53-1', { type: 'ping', n: 2 ** 53 - 1 }, undefined],
    ['ping without n', { type: 'ping' }, undefined],
    ['key_update', { type: 'key_update' }, undefined],
    ['bye', { type: 'bye' }, undefined],
    [
      'countersign',
      {
        type: 'countersign',
        c2s_count: 0,
        c2s_chain: chain,
        s2c_count: 0,
        s2c_chain: chain,
        signature: sig,
      },
      undefined,
    ],
  ];

  it.each(
    cases.map(([what, message, expected, maxBodyBytes]) => ({
      what,
      message,
      expected,
      maxBodyBytes,
    })),
  )('$what', ({ message, expected, maxBodyBytes }) => {
    expect(checkOutcome(message, maxBodyBytes)).toEqual(expected);
  });
});

describe('login_ok inside a session', () => {
  it('is not a session message: the handshake alone may carry it', () => {
    const body = Buffer.from(
      JSON.stringify({ type: 'login_ok', username: 'alice', session_id: 's', server_time: 1 }),
    );
    expect(() => parseServerMessage(body)).toThrow(expect.objectContaining({ code: 'bad_frame' }));
  });
});
