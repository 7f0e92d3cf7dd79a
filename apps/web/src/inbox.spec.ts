import { describe, expect, it } from '@jest/globals';
import {
  type Deliver,
  ed25519PrivateKeyFromSeed,
  exportSpki,
  fingerprint,
  type KeyAnswer,
  publicKeyOf,
  signMessage,
} from '@securechat/protocol';

import { ChatState } from './chat-state';
import { Inbox, refusal } from './inbox';
import { PeerVerifier } from './peer-verifier';

function user(seed: number) {
  const privateKey = ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(seed));
  return { privateKey, spki: exportSpki(publicKeyOf(privateKey)) };
}

const alice = user(1);
const bob = user(2);
const carol = user(3);
const KEYS: Record<string, ReturnType<typeof user>> = { alice, bob, carol };
let serial = 0;

function deliver(from: string, to: string, body: string, signer = KEYS[from]!): Deliver {
  serial += 1;
  const id = `c${serial}`;
  const ts = 1_000 + serial;
  const sig = signMessage(signer.privateKey, { from, to, id, ts, body });
  return { type: 'deliver', msg_id: `s${serial}`, id, from, to, body, ts, server_ts: ts, sig };
}

function keyAnswer(user: string, of = user): KeyAnswer {
  const spki = KEYS[of]!.spki;
  return { type: 'key', user, public_key: spki.toString('base64'), fingerprint: fingerprint(spki) };
}

function setup(
  getKey: (user: string) => Promise<KeyAnswer> = (u) => Promise.resolve(keyAnswer(u)),
) {
  const pins = new Map<string, string>();
  const state = new ChatState('alice');
  const verifier = new PeerVerifier(
    {
      get: (u) => Promise.resolve(pins.get(u)),
      pin: (u, fp) => Promise.resolve(void pins.set(u, fp)),
    },
    getKey,
    { username: 'alice', spki: () => Promise.resolve(alice.spki) },
  );
  const refused: string[] = [];
  const inbox = new Inbox(state, verifier, (d, reason) => refused.push(`${d.body}: ${reason}`));
  const marks = async (name: string) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return state.conversation(name).messages.map((m) => `${m.body}: ${m.mark}`);
  };
  return { state, inbox, pins, refused, marks };
}

describe('refusal', () => {
  const rooms = new Set(['#lobby']);
  it('refuses look-alike, bidi and zero-width names', () => {
    for (const from of ['bоb', 'bob\u200b', '\u202ebob', 'Bob', 'b']) {
      expect(refusal({ from, to: 'alice' }, 'alice', { live: true }, rooms)).toBeDefined();
    }
    expect(refusal({ from: 'bob', to: '#lоbby' }, 'alice', { live: true }, rooms)).toBeDefined();
    expect(refusal({ from: 'bob', to: 'alice' }, 'alice', { live: true }, rooms)).toBeUndefined();
  });

  it('wants direct messages to this user, room messages to a joined room', () => {
    expect(refusal({ from: 'bob', to: 'dave' }, 'alice', { live: true }, rooms)).toBeDefined();
    expect(refusal({ from: 'bob', to: '#other' }, 'alice', { live: true }, rooms)).toBeDefined();
    expect(refusal({ from: 'bob', to: '#lobby' }, 'alice', { live: true }, rooms)).toBeUndefined();
  });

  it('checks history entries against the conversation asked for', () => {
    const withBob = { live: false, with: 'bob' } as const;
    expect(refusal({ from: 'bob', to: 'alice' }, 'alice', withBob, rooms)).toBeUndefined();
    expect(refusal({ from: 'alice', to: 'bob' }, 'alice', withBob, rooms)).toBeUndefined();
    expect(refusal({ from: 'carol', to: 'alice' }, 'alice', withBob, rooms)).toBeDefined();
    expect(refusal({ from: 'alice', to: 'carol' }, 'alice', withBob, rooms)).toBeDefined();
    expect(refusal({ from: 'bob', to: '#lobby' }, 'alice', withBob, rooms)).toBeDefined();
    const lobby = { live: false, with: '#lobby' } as const;
    expect(refusal({ from: 'bob', to: '#lobby' }, 'alice', lobby, rooms)).toBeUndefined();
  });
});

describe('Inbox', () => {
  it('verifies a direct message to this user, and refuses one to someone else', async () => {
    const { inbox, marks, refused, state } = setup();
    inbox.onDeliver(deliver('bob', 'alice', 'for alice'));
    inbox.onDeliver(deliver('bob', 'carol', 'for carol'));
    expect(await marks('bob')).toEqual(['for alice: verified']);
    expect(refused).toEqual(['for carol: not addressed to this user']);
    expect(state.conversations().map((c) => c.name)).toEqual(['bob']);
  });

  it('never stores a message from a look-alike name', () => {
    const { inbox, refused, state } = setup();
    inbox.onDeliver(deliver('bob', 'alice', 'x'));
    const lookalike = { ...deliver('bob', 'alice', 'spoof'), from: 'b\u043eb' };
    inbox.onDeliver(lookalike);
    expect(refused).toEqual(['spoof: the sender is not a valid username']);
    expect(state.conversations().map((c) => c.name)).toEqual(['bob']);
  });

  it('refuses room messages for rooms not joined, verifies those of joined ones', async () => {
    const { inbox, marks, refused } = setup();
    inbox.onDeliver(deliver('bob', '#lobby', 'too early'));
    inbox.joined('#lobby');
    inbox.onDeliver(deliver('bob', '#lobby', 'welcome'));
    expect(await marks('#lobby')).toEqual(['welcome: verified']);
    expect(refused).toEqual(['too early: a room this page has not joined']);
  });

  it('checks history entries against the conversation asked for', async () => {
    const { inbox, marks, refused } = setup();
    inbox.onHistory('bob', [
      deliver('bob', 'alice', 'from bob'),
      deliver('alice', 'bob', 'to bob'),
      deliver('carol', 'alice', 'from carol'),
    ]);
    expect(await marks('bob')).toEqual(['from bob: verified', 'to bob: verified']);
    expect(refused).toEqual(['from carol: not in the conversation asked for']);
  });

  it("checks own messages against the page's own key, never a get_key answer", async () => {
    const asked: string[] = [];
    const { inbox, marks } = setup((u) => {
      asked.push(u);
      return Promise.resolve(keyAnswer(u, 'carol')); // a server lying about every key
    });
    inbox.onHistory('bob', [
      deliver('alice', 'bob', 'mine'),
      deliver('alice', 'bob', 'forged', carol),
    ]);
    expect(await marks('bob')).toEqual(['mine: verified', 'forged: bad_signature']);
    expect(asked).toEqual([]);
  });

  it('takes a key answer about another user as no key', async () => {
    const { inbox, marks, pins } = setup(() => Promise.resolve(keyAnswer('bob')));
    inbox.onDeliver(deliver('carol', 'alice', 'hi'));
    expect(await marks('carol')).toEqual(['hi: unknown_sender_key']);
    expect(pins.has('carol')).toBe(false);
  });

  it('drops duplicates by the signed (from, id), not only by msg_id', async () => {
    const { inbox, marks } = setup();
    const first = deliver('bob', 'alice', 'once');
    inbox.onDeliver(first);
    inbox.onDeliver({ ...first, msg_id: 'another-server-id' });
    expect(await marks('bob')).toEqual(['once: verified']);
  });

  it('checks again, on the next session, messages that found no key', async () => {
    let connected = false;
    const { inbox, marks } = setup((u) =>
      connected ? Promise.resolve(keyAnswer(u)) : Promise.reject(new Error('not connected')),
    );
    inbox.onDeliver(deliver('bob', 'alice', 'early'));
    expect(await marks('bob')).toEqual(['early: unknown_sender_key']);
    connected = true;
    inbox.onSession();
    expect(await marks('bob')).toEqual(['early: verified']);
  });
});
