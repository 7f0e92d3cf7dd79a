/** The client's side of an established session (PROTOCOL.md §5–§7). */
import { type KeyObject } from 'node:crypto';

import { ed25519Verify, timingSafeEqual, userSign, userSignAsync, userVerifyAsync } from './crypto';
import { fromBase64, toBase64 } from './encoding';
import { ProtocolError } from './errors/protocol-error';
import { type RawFrame } from './frame-decoder';
import { type ClientMessage, type SendMessage } from './messages/client-messages';
import { parseStrict } from './messages/fields';
import {
  type Deliver,
  type Receipt,
  type ServerMessage,
  serverMessageSchema,
} from './messages/server-messages';
import { messageSignedBytes, signMessage, verifyMessage } from './message-signature';
import { Session, type SessionInit } from './session';
import {
  countersignSignedBytes,
  receiptDigest,
  receiptSignedBytes,
  type TranscriptView,
} from './transcript';
import { decodeTranscriptView, encodeTranscriptView } from './transcript-view.codec';

export type ClientSessionState =
  | 'open'
  /** `bye` sent: read until `receipt`, send nothing (PROTOCOL.md §7). */
  | 'bye_sent'
  /** `receipt` read: answer with `countersign`. */
  | 'receipt_received'
  | 'closed';

/** How the server's receipt compares with our own view (PROTOCOL.md §7). */
export interface ReceiptCheck {
  /** Both counts and both chains equal ours. */
  readonly viewsMatch: boolean;
  /** The receipt's signature verifies under the server identity over `D` of the receipt's view. */
  readonly signatureValid: boolean;
  readonly clientView: TranscriptView;
  readonly serverView: TranscriptView;
  readonly receipt: Receipt;
}

export interface ClientSessionInit extends SessionInit {
  readonly serverKey: KeyObject;
  readonly userKey: KeyObject;
}

export interface ClientReceived {
  readonly message: ServerMessage;
  readonly plaintext: Buffer;
  readonly receipt?: ReceiptCheck;
}

/** What a caller gives to send a chat message; `from` is the session's username. */
export interface OutgoingMessage {
  readonly id: string;
  readonly to: string;
  readonly body: string;
  readonly ts: number;
}

export class ClientSession extends Session {
  #state: ClientSessionState = 'open';
  /** countersignAsync is waiting for its signature: a second call must not sign again. */
  #countersigning = false;
  readonly #serverKey: KeyObject;
  readonly #userKey: KeyObject;

  constructor(init: ClientSessionInit) {
    super(init);
    this.#serverKey = init.serverKey;
    this.#userKey = init.userKey;
  }

  get state(): ClientSessionState {
    return this.#state;
  }

  /**
   * Seals a request; key updates are inserted on schedule (PROTOCOL.md §4). Use `bye()` to close.
   */
  send(message: Exclude<ClientMessage, { type: 'bye' | 'countersign' }>): Buffer {
    this.assertCanSend(message.type);
    return this.sealWithRotation(message);
  }

  /** Builds and signs a `send` (PROTOCOL.md §6 message signature) as this session's user. */
  signedSend(message: OutgoingMessage): SendMessage {
    return sendOf(message, signMessage(this.#userKey, { from: this.username, ...message }));
  }

  /**
   * `signedSend` for keys that sign only asynchronously: in a browser, a non-extractable
   * WebCrypto key or any RSA key (crypto/browser-crypto.ts). The same bytes are signed.
   */
  async signedSendAsync(message: OutgoingMessage): Promise<SendMessage> {
    const signed = messageSignedBytes({ from: this.username, ...message });
    return sendOf(message, toBase64(await userSignAsync(this.#userKey, signed)));
  }

  /** `verifyDeliver` for any key, RSA in a browser included (WebCrypto is asynchronous). */
  static async verifyDeliverAsync(deliver: Deliver, senderKey: KeyObject): Promise<boolean> {
    let signed: Buffer;
    let signature: Buffer;
    try {
      signed = messageSignedBytes({
        from: deliver.from,
        to: deliver.to,
        id: deliver.id,
        ts: deliver.ts,
        body: deliver.body,
      });
      signature = fromBase64(deliver.sig, 'sig');
    } catch {
      return false;
    }
    return userVerifyAsync(senderKey, signed, signature);
  }

  /**
   * PROTOCOL.md §6: whether a `deliver` is signed by `senderKey` (the author's key, from
   * `get_key`).
   */
  static verifyDeliver(deliver: Deliver, senderKey: KeyObject): boolean {
    return verifyMessage(
      senderKey,
      { from: deliver.from, to: deliver.to, id: deliver.id, ts: deliver.ts, body: deliver.body },
      deliver.sig,
    );
  }

  /** Starts closing (PROTOCOL.md §7): `bye`, after which only `countersign` may be sent. */
  bye(): Buffer {
    this.assertCanSend('bye');
    const frame = this.seal({ type: 'bye' }, false);
    this.#state = 'bye_sent';
    return frame;
  }

  /** Reads one frame from the server. Throws ProtocolError (always fatal here). */
  receive(frame: RawFrame): ClientReceived {
    if (this.#state === 'receipt_received' || this.#state === 'closed') {
      this.#state = 'closed';
      throw new ProtocolError('unexpected_message', 'nothing may follow receipt');
    }
    let message: ServerMessage;
    let opened: ReturnType<Session['openFrame']>;
    try {
      opened = this.openFrame(frame);
      message = parseStrict(serverMessageSchema, opened.object, 'message');
      if (message.type === 'receipt' && this.#state !== 'bye_sent') {
        throw new ProtocolError('unexpected_message', 'receipt before bye');
      }
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
    const { plaintext, sequence } = opened;
    if (message.type === 'receipt') {
      this.accept(plaintext, sequence, message.type, false);
      this.#state = 'receipt_received';
      return { message, plaintext, receipt: this.#checkReceipt(message) };
    }
    this.accept(plaintext, sequence, message.type, true);
    return { message, plaintext };
  }

  /** PROTOCOL.md §7: `countersign`, signed over `D` of our own view, whatever the receipt said. */
  countersign(): Buffer {
    if (this.#state !== 'receipt_received')
      throw new Error('countersign() must follow the receipt');
    const view = this.view();
    return this.#sealCountersign(
      view,
      userSign(this.#userKey, countersignSignedBytes(receiptDigest(view))),
    );
  }

  /**
   * `countersign` for keys that sign only asynchronously (see signedSendAsync). The view is taken
   * before the wait: after the receipt nothing else is chained (PROTOCOL.md §7).
   */
  async countersignAsync(): Promise<Buffer> {
    if (this.#state !== 'receipt_received' || this.#countersigning)
      throw new Error('countersign() must follow the receipt, once');
    this.#countersigning = true;
    const view = this.view();
    let signature: Buffer;
    try {
      signature = await userSignAsync(this.#userKey, countersignSignedBytes(receiptDigest(view)));
    } finally {
      this.#countersigning = false;
    }
    // Anything read meanwhile closed the session (nothing may follow the receipt).
    if (this.#state !== 'receipt_received') throw new Error('the session closed meanwhile');
    return this.#sealCountersign(view, signature);
  }

  #sealCountersign(view: TranscriptView, signature: Uint8Array): Buffer {
    const frame = this.seal(
      {
        type: 'countersign',
        ...encodeTranscriptView(view),
        signature: toBase64(signature),
      },
      false,
    );
    this.#state = 'closed';
    return frame;
  }

  #checkReceipt(receipt: Receipt): ReceiptCheck {
    const clientView = this.view();
    const serverView = decodeTranscriptView(receipt.session_id, receipt);
    const viewsMatch =
      serverView.sessionId === clientView.sessionId &&
      serverView.c2sCount === clientView.c2sCount &&
      serverView.s2cCount === clientView.s2cCount &&
      timingSafeEqual(serverView.c2sChain, clientView.c2sChain) &&
      timingSafeEqual(serverView.s2cChain, clientView.s2cChain);
    const signatureValid = ed25519Verify(
      this.#serverKey,
      receiptSignedBytes(receiptDigest(serverView)),
      fromBase64(receipt.signature, 'signature', 64),
    );
    return { viewsMatch, signatureValid, clientView, serverView, receipt };
  }

  protected assertCanSend(type: string): void {
    if (this.#state !== 'open') {
      throw new Error(
        `cannot send ${type}: the session is ${this.#state} (§7: only countersign follows bye)`,
      );
    }
  }
}

/** The `send` of `message` with its signature. */
function sendOf(message: OutgoingMessage, sig: string): SendMessage {
  return { type: 'send', id: message.id, to: message.to, body: message.body, ts: message.ts, sig };
}
