/**
 * The wire of the TLS baseline (bench/tls-relay.ts): what a user would build instead of
 * SecureChat — JSON messages in 4-byte length-prefixed frames over Node's TLS 1.3, with the
 * same message pattern (login, send → ack + deliver, delivered, join, fan-out) and nothing
 * else: no signatures, no transcripts, no persistence.
 */
export type BaselineMessage =
  | { readonly t: 'login'; readonly user: string; readonly password: string }
  | { readonly t: 'ok'; readonly user: string }
  | { readonly t: 'send'; readonly id: string; readonly to: string; readonly body: string }
  | { readonly t: 'ack'; readonly id: string; readonly msg_id: string }
  | {
      readonly t: 'deliver';
      readonly msg_id: string;
      readonly from: string;
      readonly to: string;
      readonly body: string;
    }
  | { readonly t: 'delivered'; readonly msg_id: string }
  | { readonly t: 'join'; readonly room: string }
  | { readonly t: 'joined'; readonly room: string; readonly members: number }
  | { readonly t: 'error'; readonly code: string };

/** Largest frame either side accepts, like SECURECHAT_MAX_FRAME. */
export const BASELINE_MAX_FRAME = 65_536;

export function encodeFrame(message: BaselineMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Splits a byte stream into messages; throws on an oversized frame before buffering it. */
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): BaselineMessage[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const messages: BaselineMessage[] = [];
    let offset = 0;
    while (this.#buffer.length - offset >= 4) {
      const length = this.#buffer.readUInt32BE(offset);
      if (length > BASELINE_MAX_FRAME) throw new Error('frame too large');
      if (this.#buffer.length - offset - 4 < length) break;
      const body = this.#buffer.subarray(offset + 4, offset + 4 + length);
      messages.push(JSON.parse(body.toString('utf8')) as BaselineMessage);
      offset += 4 + length;
    }
    this.#buffer = this.#buffer.subarray(offset);
    return messages;
  }
}
