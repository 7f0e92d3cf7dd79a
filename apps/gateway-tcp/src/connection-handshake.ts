import { type HandshakeResult, type MetricsRepository } from '@securechat/core';
import {
  type ErrorCode,
  PeerError,
  type RawFrame,
  type RecordEvent,
  type ServerHandshakeStep,
  ServerHandshake,
  type ServerSession,
} from '@securechat/protocol';

import { type ServerIdentityKey } from './identity-key.repository';
import { type LoginGate } from './login-gate';

export interface ConnectionHandshakeInit {
  readonly identity: ServerIdentityKey;
  readonly sessionId: string;
  readonly limits: {
    readonly maxFrame: number;
    readonly maxBodyBytes: number;
    readonly helloTimeoutMs: number;
    readonly handshakeTimeoutMs: number;
  };
  readonly login: LoginGate;
  readonly metrics: MetricsRepository;
  readonly now: () => number;
  /** The record layer's hook (login_ok is the first s2c record: PROTOCOL.md §7). */
  readonly onRecord: (event: RecordEvent) => void;
  /** Where the handshake's frames go, and how it stops reading. */
  readonly output: { write(bytes: Buffer): void; pauseReading(): void };
  /** The login succeeded: the session is established. */
  readonly established: (session: ServerSession) => void;
  /** The handshake ended without a session; its last frame, if any, is written. */
  readonly failed: (reason: string) => void;
}

/**
 * The server's side of the PROTOCOL.md §3 handshake on one connection: libs/protocol's
 * ServerHandshake with the timers and the rules around it. A peer has `helloTimeoutMs` to say
 * `client_hello` (no key is made or signed before: ServerHandshake makes its ephemeral key then)
 * and `handshakeTimeoutMs` from accept to `login` (PROTOCOL.md §10 item 10); while the login is
 * being decided any further frame is `unexpected_message` and reading stops (PROTOCOL.md §10 item
 * 14).
 */
export class ConnectionHandshake {
  readonly #init: ConnectionHandshakeInit;
  /** Dropped once the session is established: its keys and frames are no longer needed. */
  #handshake: ServerHandshake | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  #timedOut = false;
  /** An outcome was reported (established or failed): nothing more is said or called. */
  #over = false;
  #established = false;
  #recorded = false;

  constructor(init: ConnectionHandshakeInit) {
    this.#init = init;
    this.#handshake = new ServerHandshake({
      identity: { privateKey: init.identity.privateKey },
      sessionId: init.sessionId,
      now: init.now,
      maxFrame: init.limits.maxFrame,
      // The configuration's own object (it has maxBodyBytes): the session keeps it for life.
      limits: init.limits,
      verifyLogin: (request) => init.login.verify(request),
      session: { onRecord: init.onRecord },
    });
  }

  /** Whether the login is with auth: a frame now is one too many. */
  get verifying(): boolean {
    return this.#handshake?.state === 'verifying';
  }

  /** Starts the clocks (at accept). */
  start(): void {
    const { helloTimeoutMs, handshakeTimeoutMs } = this.#init.limits;
    this.#helloTimer = setTimeout(
      () => this.#timeout('client_hello not received in time'),
      helloTimeoutMs,
    );
    this.#loginTimer = setTimeout(
      () => this.#timeout('login not received in time'),
      handshakeTimeoutMs,
    );
  }

  /**
   * One frame from the client. `moreWaiting` says whether another frame has already arrived:
   * with a `login`, that one is too many. Not async itself, so that the frame is not kept
   * while auth decides (see ServerHandshake.receive).
   */
  receive(frame: RawFrame, moreWaiting: () => boolean): Promise<void> {
    const handshake = this.#handshake;
    if (!handshake) return Promise.resolve();
    if (handshake.state === 'expect_client_hello') {
      clearTimeout(this.#helloTimer);
      this.#helloTimer = undefined;
    } else if (handshake.state === 'expect_login') {
      // PROTOCOL.md §10.10: the timeout runs until `login` arrives; the decision has its own
      // deadline.
      clearTimeout(this.#loginTimer);
      this.#loginTimer = undefined;
    }
    const decided = handshake.receive(frame);
    if (this.verifying && moreWaiting()) this.earlyFrame();
    return this.#settle(decided);
  }

  async #settle(decided: Promise<ServerHandshakeStep>): Promise<void> {
    const step = await decided;
    // The peer may have gone while auth was deciding: never resurrect a closed connection.
    if (!this.#over) this.#finish(step);
  }

  /** PROTOCOL.md §10.14: nothing may come before the login decision; we hold none of it. */
  earlyFrame(): void {
    this.#init.output.pauseReading();
    this.abort('unexpected_message', 'nothing may be sent before the login decision');
  }

  /** Ends the handshake from our side with an error the client can read (PROTOCOL.md §2). */
  abort(code: ErrorCode, message: string): void {
    if (!this.#over && this.#handshake) this.#finish(this.#handshake.abort(code, message));
  }

  /** The connection closed during the handshake: how it ended, for the metrics. */
  closed(): void {
    this.#stopTimers();
    this.#over = true;
    if (this.#established || this.#recorded) return;
    this.#recorded = true;
    this.#handshake?.abort('internal', 'connection closed');
    const result: HandshakeResult = this.#timedOut
      ? 'timeout'
      : this.#init.login.refused
        ? 'refused'
        : 'failed';
    this.#init.metrics.handshake(result);
  }

  #timeout(message: string): void {
    const state = this.#handshake?.state;
    if (this.#over || (state !== 'expect_client_hello' && state !== 'expect_login')) return;
    this.#timedOut = true;
    this.#init.metrics.authFailure('timeout');
    this.abort('handshake_timeout', message);
  }

  #finish(step: ServerHandshakeStep): void {
    for (const bytes of step.send) this.#init.output.write(bytes);
    if (step.session || step.error || step.close) this.#over = true;
    if (step.session) {
      this.#established = true;
      this.#handshake = undefined;
      this.#stopTimers();
      this.#init.metrics.handshake('ok');
      this.#init.established(step.session);
    } else if (step.error instanceof PeerError) {
      this.#init.failed(`client sent error ${step.error.code}`);
    } else if (step.error) {
      this.#init.failed(`handshake failed: ${step.error.code}`);
    } else if (step.close) {
      this.#init.failed('handshake closed');
    }
  }

  #stopTimers(): void {
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#loginTimer);
  }
}
