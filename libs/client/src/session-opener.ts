/**
 * Dials and runs the client handshake (docs/PROTOCOL.md §4), handing the session over the moment
 * `login_ok` is in. The handshake may wait on the user (a first-contact prompt), so reading pauses
 * while a chunk's frames are worked through: nothing overtakes them.
 */
import {
  ClientHandshake,
  type ClientSession,
  type LoginOk,
  ProtocolError,
  type RawFrame,
} from '@securechat/protocol';

import {
  ConnectionClosedError,
  HandshakeTimeoutError,
  NotSecureChatServerError,
} from './client-errors';
import { type SecureChatClientOptions } from './client-options';
import { type ResolvedServerTrust } from './server-trust';
import { type SessionLog } from './session-log';
import { SocketDriver, type SocketDriverHandlers } from './socket-driver';

/** 2^20: far below the 2^24 limit of docs/PROTOCOL.md §5.3, so a burst can never reach it. */
export const CLIENT_KEY_UPDATE_INTERVAL = 2 ** 20;

export interface OpenedSession {
  readonly session: ClientSession;
  readonly loginOk: LoginOk;
  /** The server key's fingerprint as the handshake verified it. */
  readonly serverFingerprint: string | undefined;
}

export interface OpenSessionOptions {
  readonly timeoutMs: number;
  /** Sees every handshake frame, for the transcript header. */
  readonly log: SessionLog;
  /**
   * Called synchronously at `login_ok`; returns the handlers of the session, which get every
   * later frame, including those that came in the same read as `login_ok`.
   */
  readonly adopt: (opened: OpenedSession) => SocketDriverHandlers;
}

export interface DialSessionOptions extends Omit<OpenSessionOptions, 'timeoutMs' | 'adopt'> {
  readonly client: SecureChatClientOptions;
  readonly trust: ResolvedServerTrust['trust'];
  readonly action: 'login' | 'register';
  readonly adopt: (opened: OpenedSession, driver: SocketDriver) => SocketDriverHandlers;
}

/** Dials the client's server and opens a session on the new connection. */
export async function dialSession({
  client,
  trust,
  action,
  log,
  adopt,
}: DialSessionOptions): Promise<LoginOk> {
  const maxFrame = client.maxFrame === undefined ? {} : { maxFrame: client.maxFrame };
  // Built before dialling: a key that cannot log in fails without a connection to clean up.
  const handshake = new ClientHandshake({
    trust,
    credentials: {
      action,
      username: client.username,
      password: client.password,
      privateKey: client.privateKey,
    },
    ...maxFrame,
    session: {
      keyUpdateInterval: client.keyUpdateInterval ?? CLIENT_KEY_UPDATE_INTERVAL,
      onRecord: (event) => log.record(event),
    },
  });
  const timeoutMs = client.handshakeTimeoutMs ?? 15_000;
  const driver = await SocketDriver.dial({
    host: client.host,
    port: client.port,
    timeoutMs,
    ...maxFrame,
  });
  return openSession(driver, handshake, {
    timeoutMs,
    log,
    adopt: (opened) => adopt(opened, driver),
  });
}

/**
 * Resolves with `login_ok`; rejects (and destroys the connection) on any failure or timeout. A
 * protocol error before the server's first frame was a valid `server_hello` rejects as
 * NotSecureChatServerError: the other end does not speak securechat/1 at all.
 */
export function openSession(
  driver: SocketDriver,
  handshake: ClientHandshake,
  options: OpenSessionOptions,
): Promise<LoginOk> {
  return new Promise<LoginOk>((resolve, reject) => {
    let settled = false;
    /** Whether a valid `server_hello` came in: protocol errors before it mean another service. */
    let helloAccepted = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      driver.destroy();
      reject(
        !helloAccepted && error instanceof ProtocolError
          ? new NotSecureChatServerError(error)
          : error,
      );
    };
    const timer = setTimeout(
      () => fail(new HandshakeTimeoutError(options.timeoutMs)),
      options.timeoutMs,
    );

    const receive = async (frames: RawFrame[]): Promise<void> => {
      for (const [index, frame] of frames.entries()) {
        options.log.observeHandshakeFrame(frame);
        const step = await handshake.receive(frame);
        if (settled) return;
        if (step.error === undefined) helloAccepted = true;
        for (const bytes of step.send) driver.write(bytes);
        if (step.error !== undefined) {
          fail(step.error);
          return;
        }
        if (step.session !== undefined && step.loginOk !== undefined) {
          settled = true;
          clearTimeout(timer);
          const handlers = options.adopt({
            session: step.session,
            loginOk: step.loginOk,
            serverFingerprint: step.serverFingerprint,
          });
          driver.setHandlers(handlers);
          resolve(step.loginOk);
          const rest = frames.slice(index + 1);
          if (rest.length > 0) handlers.frames(rest);
          break;
        }
      }
      driver.resume();
    };

    driver.setHandlers({
      frames: (frames) => {
        if (settled) return;
        driver.pause();
        receive(frames).catch((error: unknown) => fail(error as Error));
      },
      drain: () => undefined,
      close: (failure) =>
        fail(failure ?? new ConnectionClosedError('the connection closed in the handshake')),
    });
    driver.write(handshake.start());
  });
}
