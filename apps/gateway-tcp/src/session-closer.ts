import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ClockRepository, type SessionCommand, SessionCommandPort } from '@securechat/core';

import { type DeliveryTarget, SessionRegistry } from './session-registry';

/** Longest operator reason passed on to the client as the error's message: records stay small. */
const MAX_REASON_CHARS = 200;
/**
 * How long an order to close a user's sessions is remembered for logins still in flight when
 * it came: far longer than any login takes (argon2, the auth round trip, the 10 s timeout).
 */
export const REMEMBER_USER_CLOSE_MS = 60_000;
/** Most orders remembered at once (oldest forgotten first): the bound on memory. */
export const MAX_REMEMBERED_USER_CLOSES = 10_000;

/**
 * The gateway's end of the session-control channel: every gateway hears every command and
 * closes the matching sessions it holds. A closed session gets `shutting_down` — the one code
 * docs/PROTOCOL.md §9 defines for "the server ends this session, no receipt will follow"
 * (docs/PROTOCOL.md PROTOCOL.md §10, item 20) — and its transcript is stored `incomplete`, like any
 * session lost without `bye`.
 *
 * Subscribes at module init, before GatewayServer accepts anyone.
 */
@Injectable()
export class SessionCloser implements OnModuleInit, OnModuleDestroy {
  readonly #logger = new Logger('SessionCloser');
  #unsubscribe: (() => void) | undefined;
  /** Recent close-user orders, oldest first: username → when it came and its message. */
  readonly #userCloses = new Map<string, { at: number; message: string }>();

  constructor(
    private readonly registry: SessionRegistry,
    private readonly commands: SessionCommandPort,
    private readonly clock: ClockRepository,
  ) {}

  onModuleInit(): void {
    this.#unsubscribe ??= this.commands.subscribe((command) => this.handle(command));
  }

  onModuleDestroy(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Closes the sessions `command` names that this gateway holds; returns how many. */
  handle(command: SessionCommand): number {
    // The reason is the operator's sentence for the user ("account disabled by an operator").
    const message =
      command.reason.trim().slice(0, MAX_REASON_CHARS) || 'session closed by the operator';
    if (command.kind === 'close-user') this.#remember(command.username, message);
    const targets: DeliveryTarget[] =
      command.kind === 'close-session'
        ? [this.registry.session(command.sessionId)].filter((t) => t !== undefined)
        : [...this.registry.sessionsOf(command.username)];
    if (targets.length === 0) return 0;
    for (const target of targets) {
      try {
        target.shutdown('shutting_down', message);
      } catch (error) {
        this.#logger.error(`closing a session failed: ${(error as Error).message}`);
      }
    }
    this.#logger.log(`closed ${targets.length} session(s) by operator order (${command.kind})`);
    return targets.length;
  }

  /**
   * For a session just registered: closes it if an order to close its user came after its
   * login began. Such a login was decided before the order (say, before the account was
   * disabled) but registered after the order looked for sessions, so the order missed it.
   * Call after SessionRegistry.add: an order arriving later finds the session there.
   */
  checkNewSession(target: DeliveryTarget, loginStartedAt: number): boolean {
    const order = this.#userCloses.get(target.username);
    if (order === undefined || order.at < loginStartedAt) return false;
    this.#logger.log('closed a session whose login raced an order to close its user');
    target.shutdown('shutting_down', order.message);
    return true;
  }

  #remember(username: string, message: string): void {
    const now = this.clock.now();
    this.#userCloses.delete(username);
    this.#userCloses.set(username, { at: now, message });
    for (const [name, order] of this.#userCloses) {
      if (
        this.#userCloses.size <= MAX_REMEMBERED_USER_CLOSES &&
        now - order.at < REMEMBER_USER_CLOSE_MS
      ) {
        break;
      }
      this.#userCloses.delete(name);
    }
  }
}
