/** The server's side of an established session (PROTOCOL.md §5–§7). */
import { type KeyObject } from 'node:crypto';

import {
  type ParkedPublicKey,
  ed25519Sign,
  parkPublicKey,
  timingSafeEqual,
  unparkPublicKey,
  userVerify,
} from './crypto';
import { fromBase64, toBase64 } from './encoding';
import { type ErrorCode } from './errors/error-codes';
import { ProtocolError } from './errors/protocol-error';
import { type RawFrame } from './frame-decoder';
import {
  type ClientMessage,
  type CountersignMessage,
  type SendMessage,
  clientMessageSchema,
} from './messages/client-messages';
import { parseStrict } from './messages/fields';
import { type ErrorMessage } from './messages/handshake-frames';
import { type RequestLimits, checkRequest } from './messages/request-rules';
import { type ServerMessage } from './messages/server-messages';
import { verifyMessage } from './message-signature';
import { Session, type SessionInit } from './session';
import {
  countersignSignedBytes,
  receiptDigest,
  receiptSignedBytes,
  type TranscriptView,
} from './transcript';
import { decodeTranscriptView, encodeTranscriptView } from './transcript-view.codec';

export type ServerSessionState =
  /** Requests flow both ways. */
  | 'open'
  /**
   * `bye` read: what is left to send is the answers to requests read before it, then
   * `receipt` (PROTOCOL.md §7; see `send`).
   */
  | 'closing'
  /** `receipt` sent: the only thing left to read is `countersign`. */
  | 'receipt_sent'
  /** `countersign` read (or the session failed): close the connection. */
  | 'closed';

/**
 * The outcome of closing (PROTOCOL.md §7): `agreed` when the views match and the countersignature
 * verifies.
 */
export interface CountersignCheck {
  readonly outcome: 'agreed' | 'disputed';
  readonly viewsMatch: boolean;
  readonly signatureValid: boolean;
  /** What the server signed in its receipt. */
  readonly serverView: TranscriptView;
  readonly serverSignature: Buffer;
  /** What the client says it saw, as it signed it. */
  readonly clientView: TranscriptView;
  readonly clientSignature: Buffer;
}

export interface ServerSessionInit extends SessionInit {
  readonly identityKey: KeyObject;
  /**
   * The user's public key, for message signatures (PROTOCOL.md §6) and the countersignature
   * (PROTOCOL.md §7).
   */
  readonly userKey: KeyObject;
  readonly limits?: RequestLimits;
}

/** One record read from the client. */
export interface ServerReceived {
  readonly message: ClientMessage;
  readonly plaintext: Buffer;
  /** Set when `message` is the client's `countersign`. */
  readonly countersign?: CountersignCheck;
}

export class ServerSession extends Session {
  #state: ServerSessionState = 'open';
  readonly #identityKey: KeyObject;
  /**
   * The user's key, as a key only once a signature needs it (see #publicKey); until then
   * `#userParked` holds it.
   */
  #userKey: KeyObject | undefined;
  #userParked: ParkedPublicKey | undefined;
  readonly #limits: RequestLimits;
  #receipt: { view: TranscriptView; signature: Buffer } | undefined;
  #finalErrorSent = false;

  constructor(init: ServerSessionInit) {
    super(init);
    this.#identityKey = init.identityKey;
    // A KeyObject holds ~1.4 KiB of OpenSSL memory, and a server holds a session per
    // connected user, most of them idle for hours without a `send`: keep the key parked (its
    // public parameters, a few short strings, on Node) and make it a key again when a
    // signature is first checked (~20 µs). See parkPublicKey in crypto/node-crypto.ts.
    this.#userParked = parkPublicKey(init.userKey);
    this.#limits = init.limits ?? {};
  }

  get state(): ServerSessionState {
    return this.#state;
  }

  /** The view and signature of the receipt, once sent (for the transcript store). */
  get sentReceipt(): { readonly view: TranscriptView; readonly signature: Buffer } | undefined {
    return this.#receipt;
  }

  /** Seals a message to the client; key updates are inserted on schedule (PROTOCOL.md §4). */
  send(message: ServerMessage): Buffer {
    this.assertCanSend(message.type);
    return this.sealWithRotation(message);
  }

  /**
   * An `error` record for `error` (PROTOCOL.md §2): the caller sends it with `send` and closes if
   * fatal.
   */
  static errorMessage(
    code: ErrorCode,
    message: string,
    extra: { id?: string; retryAfter?: number } = {},
  ): ErrorMessage {
    return {
      type: 'error',
      code,
      message,
      ...(extra.id === undefined ? {} : { id: extra.id }),
      ...(extra.retryAfter === undefined ? {} : { retry_after: extra.retryAfter }),
    };
  }

  /**
   * Reads one frame from the client. Throws ProtocolError: fatal ones (`closesConnection`)
   * end the session; `bad_request`/`too_large` are answers, and the session goes on.
   */
  receive(frame: RawFrame): ServerReceived {
    if (this.#state === 'closing' || this.#state === 'closed') {
      this.#state = 'closed';
      throw new ProtocolError(
        'unexpected_message',
        'nothing may follow bye but countersign, after receipt',
      );
    }
    let opened: ReturnType<Session['openFrame']>;
    let message: ClientMessage;
    try {
      opened = this.openFrame(frame);
      message = parseStrict(clientMessageSchema, opened.object, 'message');
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
    const { plaintext, sequence } = opened;

    if (this.#state === 'receipt_sent') {
      if (message.type !== 'countersign') {
        this.#state = 'closed';
        throw new ProtocolError('unexpected_message', 'expected countersign');
      }
      this.accept(plaintext, sequence, message.type, false);
      this.#state = 'closed';
      return { message, plaintext, countersign: this.#checkCountersign(message) };
    }

    // state 'open'
    switch (message.type) {
      case 'countersign':
        this.#state = 'closed';
        throw new ProtocolError('unexpected_message', 'countersign before receipt');
      case 'bye':
        this.accept(plaintext, sequence, message.type, false);
        this.#state = 'closing';
        return { message, plaintext };
      default:
        this.accept(plaintext, sequence, message.type, true);
        checkRequest(message, this.#limits);
        return { message, plaintext };
    }
  }

  /**
   * The `error` record that tells the client why its session is ending (PROTOCOL.md §2), once, even
   * after `receive` marked the session closed. Undefined when nothing may be said: a record that
   * failed to authenticate (PROTOCOL.md §5), an error already sent, or a receipt already sent —
   * PROTOCOL.md §6 (`bye`: "the server sends nothing else after it") and PROTOCOL.md §7 (the s2c
   * chain ends at the record before `receipt`): a record sealed after the receipt would extend the
   * s2c chain past the view the receipt signed, so the stored transcript would no longer recompute
   * it. After the receipt a failure closes the connection without a word.
   */
  finalError(error: ProtocolError): Buffer | undefined {
    if (error.silent || this.#finalErrorSent || this.#receipt !== undefined) {
      this.#state = 'closed';
      return undefined;
    }
    this.#finalErrorSent = true;
    this.#state = 'closed';
    return this.seal(
      ServerSession.errorMessage(
        error.code,
        error.message,
        error.id === undefined ? {} : { id: error.id },
      ),
      true,
    );
  }

  /**
   * PROTOCOL.md §6: whether a `send`'s `sig` is this session's user's signature (`from` = our
   * username).
   */
  verifySendSignature(message: SendMessage): boolean {
    return verifyMessage(
      this.#publicKey(),
      { from: this.username, to: message.to, id: message.id, ts: message.ts, body: message.body },
      message.sig,
    );
  }

  /**
   * PROTOCOL.md §7: the `receipt` record answering `bye`, signed by the server identity over `D`.
   */
  receipt(): Buffer {
    if (this.#state !== 'closing') throw new Error('receipt() is only allowed right after bye');
    const view = this.view();
    const signature = ed25519Sign(this.#identityKey, receiptSignedBytes(receiptDigest(view)));
    this.#receipt = { view, signature };
    const frame = this.seal(
      {
        type: 'receipt',
        session_id: view.sessionId,
        ...encodeTranscriptView(view),
        signature: toBase64(signature),
      },
      false,
    );
    this.#state = 'receipt_sent';
    return frame;
  }

  #checkCountersign(message: CountersignMessage): CountersignCheck {
    const receipt = this.#receipt!;
    const clientView = decodeTranscriptView(this.sessionId, message);
    const clientSignature = fromBase64(message.signature, 'signature');
    const viewsMatch =
      clientView.c2sCount === receipt.view.c2sCount &&
      clientView.s2cCount === receipt.view.s2cCount &&
      timingSafeEqual(clientView.c2sChain, receipt.view.c2sChain) &&
      timingSafeEqual(clientView.s2cChain, receipt.view.s2cChain);
    const signatureValid = userVerify(
      this.#publicKey(),
      countersignSignedBytes(receiptDigest(clientView)),
      clientSignature,
    );
    return {
      outcome: viewsMatch && signatureValid ? 'agreed' : 'disputed',
      viewsMatch,
      signatureValid,
      serverView: receipt.view,
      serverSignature: receipt.signature,
      clientView,
      clientSignature,
    };
  }

  /** The user's key, unparked the first time (see the constructor). */
  #publicKey(): KeyObject {
    if (this.#userKey === undefined) {
      this.#userKey = unparkPublicKey(this.#userParked!);
      this.#userParked = undefined;
    }
    return this.#userKey;
  }

  /**
   * PROTOCOL.md §7 says a server that has read `bye` sends nothing but `receipt`. A server that
   * reads requests ahead of answering them (pipelining) may open `bye` while earlier requests are
   * still being answered: those answers may still go, before the receipt, and the receipt's
   * chain covers them. Nothing may follow the receipt. (docs/PROTOCOL.md §10 records this
   * reading.)
   */
  protected assertCanSend(type: string): void {
    if (this.#state !== 'open' && this.#state !== 'closing') {
      throw new Error(
        `cannot send ${type}: the session is ${this.#state} (§7: only receipt follows bye)`,
      );
    }
  }
}
