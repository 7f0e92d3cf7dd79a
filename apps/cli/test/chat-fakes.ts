/** Stand-ins for the chat tests: deliveries as the client hands them over, and a fake client. */
import { type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';

import {
  type IncomingMessage,
  type MessageVerification,
  type SecureChatClient,
  type SecureChatClientEvents,
  type SendResult,
  type VerificationResult,
} from '@securechat/client';
import {
  type Deliver,
  type History,
  type Joined,
  type KeyAnswer,
  type Left,
  exportSpki,
  fingerprint,
  toBase64,
} from '@securechat/protocol';

let nextId = 0;

export interface DeliverFields {
  readonly from: string;
  readonly to: string;
  readonly body?: string;
  readonly serverTs?: number;
  readonly msgId?: string;
}

export function deliver(fields: DeliverFields): Deliver {
  nextId += 1;
  const serverTs = fields.serverTs ?? 1_764_000_000_000 + nextId;
  return {
    type: 'deliver',
    msg_id: fields.msgId ?? `m${nextId}`,
    id: `c${nextId}`,
    from: fields.from,
    to: fields.to,
    body: fields.body ?? `message ${nextId}`,
    ts: serverTs - 1,
    server_ts: serverTs,
    sig: 'AAAA',
  };
}

export function incoming(
  fields: DeliverFields,
  verification: MessageVerification = 'verified',
): IncomingMessage {
  return { deliver: deliver(fields), verification };
}

/**
 * The server's `key` answer for `user`'s public key, as get_key gives it (docs/PROTOCOL.md §7.1).
 */
export function keyAnswer(user: string, publicKey: KeyObject): KeyAnswer {
  const spki = exportSpki(publicKey);
  return { type: 'key', user, public_key: toBase64(spki), fingerprint: fingerprint(spki) };
}

/**
 * The part of SecureChatClient the chat uses: its events, and jest.fn()s for the requests
 * (each test sets what they answer). Unless a test says otherwise, every conversation has no
 * history yet and every delivery verifies: opening a conversation asks for its history.
 */
export class FakeChatClient extends EventEmitter<SecureChatClientEvents> {
  readonly send = jest.fn<Promise<SendResult>, [string, string]>();
  readonly join = jest.fn<Promise<Joined>, [string]>();
  readonly leave = jest.fn<Promise<Left>, [string]>();
  readonly history = jest
    .fn<Promise<History>, [string, { before?: string; limit?: number }?]>()
    .mockImplementation((withWhom) =>
      Promise.resolve({ type: 'history', with: withWhom, messages: [] }),
    );
  readonly verifyDeliver = jest
    .fn<Promise<VerificationResult>, [Deliver]>()
    .mockResolvedValue({ verification: 'verified' });
  readonly getKey = jest.fn<Promise<KeyAnswer>, [string]>();

  asClient(): SecureChatClient {
    return this as unknown as SecureChatClient;
  }
}
