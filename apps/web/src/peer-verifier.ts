/**
 * Authors' keys (docs/PROTOCOL.md §7.3), as libs/client's peer-keys.ts does for the CLI: each
 * `deliver` is checked against its author's key, fetched with `get_key` once per author and
 * session, and pinned on first use (per server, in IndexedDB). A key other than the pinned one
 * is never trusted: the message is marked `key_changed`, whatever its signature says. An answer
 * about another user than the author is no key for the author. The user's own messages (history)
 * are checked against the user's own public key, the one this page holds, never a server answer.
 */
import {
  ClientSession,
  type Deliver,
  fingerprint as fingerprintOf,
  fromBase64,
  importUserPublicKey,
  type KeyAnswer,
} from '@securechat/protocol';

export type Verification = 'verified' | 'bad_signature' | 'key_changed' | 'unknown_sender_key';

export interface PeerPins {
  get(username: string): Promise<string | undefined>;
  pin(username: string, fingerprint: string): Promise<void>;
}

/** The page's user and their public key (SPKI DER), as the page stored it. */
export interface OwnKey {
  readonly username: string;
  spki(): Promise<Uint8Array>;
}

export class PeerVerifier {
  /** This session's answers, by author; a new session asks again (reset()). */
  #keys = new Map<string, Promise<KeyAnswer>>();

  constructor(
    private readonly pins: PeerPins,
    private readonly getKey: (user: string) => Promise<KeyAnswer>,
    private readonly own?: OwnKey,
  ) {}

  reset(): void {
    this.#keys = new Map();
  }

  async verify(deliver: Deliver): Promise<Verification> {
    if (this.own !== undefined && deliver.from === this.own.username) {
      let key: ReturnType<typeof importUserPublicKey>;
      try {
        key = importUserPublicKey(Buffer.from(await this.own.spki()));
      } catch {
        return 'unknown_sender_key';
      }
      return (await ClientSession.verifyDeliverAsync(deliver, key)) ? 'verified' : 'bad_signature';
    }
    let answer: KeyAnswer;
    try {
      let pending = this.#keys.get(deliver.from);
      if (pending === undefined) {
        pending = this.getKey(deliver.from);
        this.#keys.set(deliver.from, pending);
        pending.catch(() => this.#keys.delete(deliver.from));
      }
      answer = await pending;
    } catch {
      return 'unknown_sender_key';
    }
    if (answer.user !== deliver.from) return 'unknown_sender_key';
    let spki: Buffer;
    let key: ReturnType<typeof importUserPublicKey>;
    try {
      spki = fromBase64(answer.public_key, 'public_key');
      key = importUserPublicKey(spki);
    } catch {
      return 'unknown_sender_key';
    }
    // The fingerprint is computed here, not taken from the server's answer.
    const presented = fingerprintOf(spki);
    const pinned = await this.pins.get(deliver.from);
    if (pinned === undefined) await this.pins.pin(deliver.from, presented);
    else if (pinned !== presented) return 'key_changed';
    return (await ClientSession.verifyDeliverAsync(deliver, key)) ? 'verified' : 'bad_signature';
  }
}
