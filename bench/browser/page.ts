/**
 * The page of bench/browser/browser-bench.ts: libs/protocol's ClientHandshake and ClientSession,
 * bundled for the browser by scripts/build-web.mjs (crypto from browser-crypto.ts: @noble/* in
 * JavaScript), over the PROTOCOL.md §11 WebSocket binding. It times itself with
 * performance.now(); the bench drives it through page.evaluate:
 *
 * - `register` once per user, then `handshakes`: sequential full logins for N seconds (each
 *   socket closed right after `login_ok`, without `bye`);
 * - `startSending` (log in, keep N signed sends in flight), `mark` (the ack count and the page's
 *   clock, at the start and end of the bench's window), `stopSending` (wait for what is in
 *   flight, close).
 */
import {
  ClientHandshake,
  type ClientSession,
  ed25519PrivateKeyFromSeed,
  FrameDecoder,
  type RawFrame,
} from '@securechat/protocol';

import { PageWebSocket } from '../../test/browser/page/page-websocket';

export interface LoginOptions {
  readonly url: string;
  readonly fingerprint: string;
  readonly username: string;
  readonly password: string;
  /** The user's Ed25519 seed, hex (made by the bench, so that every call uses the same key). */
  readonly seedHex: string;
}

interface Live {
  readonly ws: PageWebSocket;
  readonly session: ClientSession;
  /** Where frames after `login_ok` go; until replaced, they are kept in `early`. */
  onFrame: (frame: RawFrame) => void;
  readonly early: RawFrame[];
  closed: boolean;
}

/** PROTOCOL.md §11: one frame per binary message, while the session may seal several at once. */
function sendFrames(ws: PageWebSocket, bytes: Buffer): void {
  for (const frame of new FrameDecoder({ maxFrame: 0x7fff_ffff }).push(bytes)) ws.send(frame.bytes);
}

const keys = new Map<string, ReturnType<typeof ed25519PrivateKeyFromSeed>>();
function keyFor(seedHex: string) {
  let key = keys.get(seedHex);
  if (key === undefined) {
    key = ed25519PrivateKeyFromSeed(Buffer.from(seedHex, 'hex'));
    keys.set(seedHex, key);
  }
  return key;
}

/** Opens a WebSocket and runs the handshake to `login_ok`. */
function login(options: LoginOptions, action: 'login' | 'register' = 'login'): Promise<Live> {
  return new Promise<Live>((resolve, reject) => {
    const ws = new PageWebSocket(options.url, 'securechat.v1');
    ws.binaryType = 'arraybuffer';
    const decoder = new FrameDecoder();
    const handshake = new ClientHandshake({
      trust: { fingerprint: options.fingerprint },
      credentials: {
        action,
        username: options.username,
        password: options.password,
        privateKey: keyFor(options.seedHex),
      },
    });
    let live: Live | undefined;
    // The handshake's steps are asynchronous: frames are handled one at a time, in order.
    let queue = Promise.resolve();
    const fail = (error: unknown) => {
      ws.close();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    ws.addEventListener('open', () => sendFrames(ws, handshake.start()));
    ws.addEventListener('error', () => reject(new Error(`WebSocket to ${options.url} failed`)));
    ws.addEventListener('close', (event) => {
      if (live) live.closed = true;
      else reject(new Error(`closed (${event.code}) during the handshake`));
    });
    ws.addEventListener('message', ({ data }) => {
      if (!(data instanceof ArrayBuffer)) return fail(new Error('a text message'));
      const frames = decoder.push(Buffer.from(data));
      if (live) {
        for (const frame of frames) live.onFrame(frame);
        return;
      }
      queue = queue
        .then(async () => {
          for (const frame of frames) {
            if (live) {
              live.onFrame(frame);
              continue;
            }
            const step = await handshake.receive(frame);
            for (const bytes of step.send) sendFrames(ws, bytes);
            if (step.error) return fail(step.error);
            if (step.session) {
              const early: RawFrame[] = [];
              live = {
                ws,
                session: step.session,
                early,
                onFrame: (f) => early.push(f),
                closed: false,
              };
              resolve(live);
            }
          }
        })
        .catch(fail);
    });
  });
}

/** Registers the user (its key from `seedHex`) and closes. */
async function register(options: LoginOptions): Promise<string> {
  const live = await login(options, 'register');
  live.ws.close();
  return live.session.username;
}

export interface HandshakeResult {
  readonly count: number;
  readonly elapsedMs: number;
  /** connect → `login_ok`, per login, ms. */
  readonly latenciesMs: number[];
}

/** Sequential logins for `seconds`: open, handshake, `login_ok`, close (no `bye`), again. */
async function handshakes(options: LoginOptions & { seconds: number }): Promise<HandshakeResult> {
  keyFor(options.seedHex);
  const latenciesMs: number[] = [];
  const started = performance.now();
  const end = started + options.seconds * 1000;
  let now = started;
  while (now < end) {
    const t0 = performance.now();
    const live = await login(options);
    now = performance.now();
    latenciesMs.push(now - t0);
    live.ws.close();
  }
  return { count: latenciesMs.length, elapsedMs: now - started, latenciesMs };
}

interface Load {
  readonly live: Live;
  acks: number;
  errors: number;
  outstanding: number;
  stopping: boolean;
  failure?: string;
  drained?: () => void;
}

let load: Load | undefined;

export interface SendOptions extends LoginOptions {
  readonly to: string;
  readonly inFlight: number;
  readonly bodyBytes: number;
}

/** Logs in and keeps `inFlight` signed sends to `to` unacknowledged until `stopSending`. */
async function startSending(options: SendOptions): Promise<void> {
  const live = await login(options);
  const state: Load = { live, acks: 0, errors: 0, outstanding: 0, stopping: false };
  load = state;
  const body = 'x'.repeat(options.bodyBytes);
  // Ids unique across calls: a repeated (from, id) is acknowledged as a duplicate, not relayed.
  const prefix = `page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  let n = 0;
  const sendOne = () => {
    const id = `${prefix}-${n++}`;
    const message = live.session.signedSend({ id, to: options.to, body, ts: Date.now() });
    sendFrames(live.ws, live.session.send(message));
    state.outstanding++;
  };
  const answered = (ok: boolean) => {
    if (ok) state.acks++;
    else state.errors++;
    state.outstanding--;
    if (!state.stopping) sendOne();
    else if (state.outstanding === 0) state.drained?.();
  };
  live.onFrame = (frame) => {
    try {
      const { message } = live.session.receive(frame);
      if (message.type === 'ack') answered(true);
      else if (message.type === 'error') answered(false);
    } catch (error) {
      state.failure ??= error instanceof Error ? error.message : String(error);
      live.ws.close();
    }
  };
  for (const frame of live.early.splice(0)) live.onFrame(frame);
  for (let i = 0; i < options.inFlight; i++) sendOne();
}

export interface Mark {
  readonly acks: number;
  readonly errors: number;
  /** performance.now(), ms. */
  readonly t: number;
  readonly failure?: string;
}

function mark(): Mark {
  const state = load!;
  return {
    acks: state.acks,
    errors: state.errors,
    t: performance.now(),
    ...(state.failure === undefined ? {} : { failure: state.failure }),
  };
}

/** Sends no more, waits (up to 10 s) for the answers still due, closes without `bye`. */
async function stopSending(): Promise<Mark & { outstanding: number }> {
  const state = load!;
  state.stopping = true;
  if (state.outstanding > 0 && !state.live.closed) {
    await new Promise<void>((resolve) => {
      state.drained = resolve;
      setTimeout(resolve, 10_000);
    });
  }
  const result = { ...mark(), outstanding: state.outstanding };
  state.live.ws.close();
  load = undefined;
  return result;
}

export const benchPage = { register, handshakes, startSending, mark, stopSending };
export type BenchPage = typeof benchPage;

(globalThis as unknown as { securechatPage: BenchPage }).securechatPage = benchPage;
