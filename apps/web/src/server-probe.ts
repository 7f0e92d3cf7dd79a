/**
 * First contact (docs/PROTOCOL.md §4.3): learns the fingerprint a server presents, proven by its
 * `server_auth` signature over this handshake, without sending anything after `client_hello` —
 * the trust-on-first-use answer is always "no", so the handshake stops there and no login (no
 * password, no username) ever leaves the page. The page then compares with its pin, or asks.
 */
import {
  ClientHandshake,
  ed25519PrivateKeyFromSeed,
  FrameDecoder,
  ServerIdentityError,
} from '@securechat/protocol';

export const SUBPROTOCOL = 'securechat.v1';

/** The page's WebSocket URL: the same origin, as the gateway serves both on one port. */
export function defaultSocketUrl(location: Location): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

/** `host:port` of a WebSocket URL: the name pins are kept under. */
export function serverAddress(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port || (parsed.protocol === 'wss:' ? '443' : '80');
  return `${parsed.hostname}:${port}`;
}

/** Resolves with the server's proven fingerprint; rejects when there is none to be had. */
export function probeServer(url: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let presented: string | undefined;
    const handshake = new ClientHandshake({
      trust: {
        onFirstUse: (key) => {
          presented = key.fingerprint;
          return false;
        },
      },
      // Never used: the handshake stops before the login it would sign.
      credentials: {
        action: 'login',
        username: 'probe',
        password: 'probe-only',
        privateKey: ed25519PrivateKeyFromSeed(crypto.getRandomValues(new Uint8Array(32))),
      },
    });
    const ws = new WebSocket(url, SUBPROTOCOL);
    ws.binaryType = 'arraybuffer';
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => finish(new Error('the server did not answer')), timeoutMs);
    let queue = Promise.resolve();
    let done = false;
    const finish = (outcome: string | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.close();
      if (typeof outcome === 'string') resolve(outcome);
      else reject(outcome);
    };
    ws.addEventListener('open', () => {
      if (ws.protocol !== SUBPROTOCOL) {
        finish(new Error('not a securechat/1 endpoint'));
        return;
      }
      ws.send(handshake.start());
    });
    ws.addEventListener('message', ({ data }: MessageEvent<unknown>) => {
      queue = queue.then(async () => {
        if (done || !(data instanceof ArrayBuffer)) return;
        for (const frame of decoder.push(Buffer.from(data))) {
          const step = await handshake.receive(frame);
          if (!step.error) continue;
          if (
            step.error instanceof ServerIdentityError &&
            step.error.reason === 'server_key_untrusted' &&
            presented !== undefined
          ) {
            finish(presented);
          } else {
            finish(step.error);
          }
        }
      });
    });
    ws.addEventListener('error', () => finish(new Error(`cannot reach ${url}`)));
    ws.addEventListener('close', () => finish(new Error('the server closed the connection')));
  });
}
