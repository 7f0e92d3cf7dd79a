/**
 * What both roles share once the handshake is done: records (PROTOCOL.md §5), key updates
 * (PROTOCOL.md §4) and the transcript chains (PROTOCOL.md §7). Role rules — what may be sent or
 * received when, receipts — live in ServerSession and ClientSession.
 */
import { packBytes, unpackBytes } from './compact-bytes';
import {
  DEFAULT_KEY_UPDATE_INTERVAL,
  DEFAULT_MAX_FRAME,
  GCM_TAG_BYTES,
  KEY_UPDATE_LIMIT,
} from './constants';
import { toBase64, fromBase64 } from './encoding';
import { ProtocolError } from './errors/protocol-error';
import { type RawFrame, encodeFrame } from './frame-decoder';
import { encFrameSchema } from './messages/handshake-frames';
import { parseStrict } from './messages/fields';
import { parseJsonObject, serializeJson } from './messages/json';
import { type Direction, type RecordDirection } from './record-layer';
import { type TranscriptChain, type TranscriptView } from './transcript';

/**
 * Every record a session seals or opens, byte-exact, for transcripts (PROTOCOL.md §7) and audit
 * logs.
 */
export interface RecordEvent {
  readonly direction: Direction;
  /** The record's sequence number under the key that protected it. */
  readonly sequence: number;
  /** The plaintext exactly as sealed or opened. */
  readonly plaintext: Buffer;
  /**
   * Whether PROTOCOL.md §7 counts it in its direction's chain (`bye`, `receipt`, `countersign` are
   * not).
   */
  readonly chained: boolean;
}

export interface SessionOptions {
  /** Send `key_update` once the sending sequence number reaches this (< 2^24, PROTOCOL.md §4). */
  readonly keyUpdateInterval?: number;
  /** Largest frame body we send or accept (PROTOCOL.md §2). */
  readonly maxFrame?: number;
  /** Called synchronously for every record, in order. */
  readonly onRecord?: (event: RecordEvent) => void;
}

/** What a handshake hands over to the session it completes. */
export interface SessionInit {
  readonly sessionId: string;
  readonly username: string;
  readonly h2: Buffer;
  readonly sending: RecordDirection;
  readonly receiving: RecordDirection;
  readonly c2sChain: TranscriptChain;
  readonly s2cChain: TranscriptChain;
  readonly options?: SessionOptions;
}

/** `{"type":"enc","ct":""}`: the frame around a record's base64. */
const ENC_ENVELOPE_BYTES = 22;

/** Any JSON object with a `type`, as sealed into a record. */
export type RecordMessage = { readonly type: string } & Record<string, unknown>;

export abstract class Session {
  readonly sessionId: string;
  readonly username: string;
  /** H2, packed (compact-bytes.ts): kept for the session's life, read once or twice. */
  readonly #h2: string;
  protected readonly sending: RecordDirection;
  protected readonly receiving: RecordDirection;
  protected readonly c2sChain: TranscriptChain;
  protected readonly s2cChain: TranscriptChain;
  protected readonly keyUpdateInterval: number;
  readonly maxFrame: number;
  readonly #onRecord: ((event: RecordEvent) => void) | undefined;

  protected constructor(init: SessionInit) {
    const interval = init.options?.keyUpdateInterval ?? DEFAULT_KEY_UPDATE_INTERVAL;
    if (!Number.isInteger(interval) || interval < 1 || interval >= KEY_UPDATE_LIMIT) {
      throw new RangeError('keyUpdateInterval must be an integer in 1..2^24-1');
    }
    this.sessionId = init.sessionId;
    this.username = init.username;
    this.#h2 = packBytes(init.h2);
    this.sending = init.sending;
    this.receiving = init.receiving;
    this.c2sChain = init.c2sChain;
    this.s2cChain = init.s2cChain;
    this.keyUpdateInterval = interval;
    this.maxFrame = init.options?.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#onRecord = init.options?.onRecord;
  }

  /**
   * H2 (PROTOCOL.md §3), where both chains start (a copy). Public: it is a hash of public handshake
   * frames.
   */
  get h2(): Buffer {
    return unpackBytes(this.#h2);
  }

  /** This party's current view of the session (PROTOCOL.md §7). */
  view(): TranscriptView {
    return {
      sessionId: this.sessionId,
      c2sCount: this.c2sChain.count,
      c2sChain: this.c2sChain.head,
      s2cCount: this.s2cChain.count,
      s2cChain: this.s2cChain.head,
    };
  }

  /** Sequence numbers of the next record each way (for tests and metrics). */
  get sequences(): { sending: number; receiving: number } {
    return { sending: this.sending.sequence, receiving: this.receiving.sequence };
  }

  protected get sendChain(): TranscriptChain {
    return this.sending.direction === 'c2s' ? this.c2sChain : this.s2cChain;
  }

  protected get receiveChain(): TranscriptChain {
    return this.receiving.direction === 'c2s' ? this.c2sChain : this.s2cChain;
  }

  /**
   * Sends `key_update` now (PROTOCOL.md §4): sealed under the old key, then the sending key moves
   * on.
   */
  keyUpdate(): Buffer {
    this.assertCanSend('key_update');
    const frame = this.seal({ type: 'key_update' }, true);
    this.sending.update();
    return frame;
  }

  /**
   * Seals an application message, preceded by a `key_update` when the sending count has
   * reached the interval. Returns the bytes to write (one or two frames).
   */
  protected sealWithRotation(message: RecordMessage): Buffer {
    if (this.sending.sequence < this.keyUpdateInterval) return this.seal(message, true);
    const rotation = this.keyUpdate();
    return Buffer.concat([rotation, this.seal(message, true)]);
  }

  /**
   * Serialises, chains (PROTOCOL.md §7), seals (PROTOCOL.md §5) and frames (PROTOCOL.md §2) one
   * record.
   */
  protected seal(message: RecordMessage, chained: boolean): Buffer {
    const plaintext = serializeJson(message);
    if (plaintext.length > this.maxPlaintextBytes) {
      // Checked before sealing: a sealed record that is then not sent would leave our count
      // ahead of the peer's and break the session.
      throw new RangeError(
        `a ${message.type} record of ${plaintext.length} bytes does not fit max_frame`,
      );
    }
    const sequence = this.sending.sequence;
    const ct = this.sending.seal(plaintext);
    if (chained) this.sendChain.append(plaintext);
    this.#onRecord?.({ direction: this.sending.direction, sequence, plaintext, chained });
    return encodeFrame(serializeJson({ type: 'enc', ct: toBase64(ct) }), this.maxFrame);
  }

  /**
   * The largest plaintext that fits one frame once sealed: base64 of plaintext + 16-byte tag
   * inside `{"type":"enc","ct":"…"}` must be at most max_frame (PROTOCOL.md §2, §5).
   */
  get maxPlaintextBytes(): number {
    return Math.floor((this.maxFrame - ENC_ENVELOPE_BYTES) / 4) * 3 - GCM_TAG_BYTES;
  }

  /** Whether a message would fit in one frame once sealed. Callers size lists with it. */
  fits(message: RecordMessage): boolean {
    return serializeJson(message).length <= this.maxPlaintextBytes;
  }

  /**
   * Opens one `enc` frame (PROTOCOL.md §5) and returns its plaintext and its parsed JSON object.
   */
  protected openFrame(frame: RawFrame): {
    plaintext: Buffer;
    sequence: number;
    object: Record<string, unknown>;
  } {
    const object = parseJsonObject(frame.body);
    if (object.type !== 'enc') {
      // After the handshake only records cross the wire (PROTOCOL.md §5); plaintext frames are out
      // of order.
      throw new ProtocolError('unexpected_message', 'expected an enc frame');
    }
    // The hot path: the `enc` shape checked by hand so that `ct` is decoded once (PROTOCOL.md §2
    // rules).
    const { ct } = object;
    if (typeof ct !== 'string' || Object.keys(object).length !== 2) {
      parseStrict(encFrameSchema, object, 'enc frame'); // throws the precise bad_frame
    }
    const sealed = fromBase64(ct as string, 'ct');
    if (sealed.length < GCM_TAG_BYTES)
      throw new ProtocolError('bad_frame', 'ct: shorter than a tag');
    const sequence = this.receiving.sequence;
    const plaintext = this.receiving.open(sealed);
    return { plaintext, sequence, object: parseJsonObject(plaintext) };
  }

  /**
   * Records a received plaintext: chain (PROTOCOL.md §7), observer, and key update (PROTOCOL.md §4)
   * when it is one.
   */
  protected accept(plaintext: Buffer, sequence: number, type: string, chained: boolean): void {
    if (chained) this.receiveChain.append(plaintext);
    this.#onRecord?.({ direction: this.receiving.direction, sequence, plaintext, chained });
    if (type === 'key_update') this.receiving.update();
  }

  protected abstract assertCanSend(type: string): void;

  toJSON(): object {
    return { sessionId: this.sessionId, username: this.username, sequences: this.sequences };
  }
}
