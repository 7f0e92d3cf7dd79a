/** Stand-ins for the chat tests: deliveries as the client hands them over, and a fake client. */
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
 * The part of SecureChatClient the chat uses: its events, and jest.fn()s for the requests
 * (each test sets what they answer).
 */
export class FakeChatClient extends EventEmitter<SecureChatClientEvents> {
  readonly send = jest.fn<Promise<SendResult>, [string, string]>();
  readonly join = jest.fn<Promise<Joined>, [string]>();
  readonly leave = jest.fn<Promise<Left>, [string]>();
  readonly history = jest.fn<Promise<History>, [string, { before?: string; limit?: number }?]>();
  readonly verifyDeliver = jest.fn<Promise<VerificationResult>, [Deliver]>();
  readonly getKey = jest.fn<Promise<KeyAnswer>, [string]>();

  asClient(): SecureChatClient {
    return this as unknown as SecureChatClient;
  }
}
