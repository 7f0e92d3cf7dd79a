import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { type SessionCommand, SessionCommandPort } from '@securechat/core';

import { type DeliveryTarget, SessionRegistry } from './session-registry';

/** Longest operator reason passed on to the client as the error's message: records stay small. */
const MAX_REASON_CHARS = 200;

/**
 * The gateway's end of the session-control channel: every gateway hears every command and
 * closes the matching sessions it holds. A closed session gets `shutting_down` — the one code
 * §9 defines for "the server ends this session, no receipt will follow" (docs/PROTOCOL.md
 * §10, item 20) — and its transcript is stored `incomplete`, like any session lost without
 * `bye`.
 *
 * Subscribes at module init, before GatewayServer accepts anyone.
 */
@Injectable()
export class SessionCloser implements OnModuleInit, OnModuleDestroy {
  readonly #logger = new Logger('SessionCloser');
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly registry: SessionRegistry,
    private readonly commands: SessionCommandPort,
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
    const targets: DeliveryTarget[] =
      command.kind === 'close-session'
        ? [this.registry.session(command.sessionId)].filter((t) => t !== undefined)
        : [...this.registry.sessionsOf(command.username)];
    if (targets.length === 0) return 0;
    // The reason is the operator's sentence for the user ("account disabled by an operator").
    const message =
      command.reason.trim().slice(0, MAX_REASON_CHARS) || 'session closed by the operator';
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
}
