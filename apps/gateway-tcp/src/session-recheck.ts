import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import {
  ACCOUNT_STATES_MAX_USERNAMES,
  type AccountState,
  CONFIG,
  type SecureChatConfig,
} from '@securechat/core';

import { AuthClient } from './service-clients';
import { type DeliveryTarget, SessionRegistry } from './session-registry';

/** Most usernames asked after in one request: auth refuses more (AuthController's schema). */
export const RECHECK_BATCH_SIZE = ACCOUNT_STATES_MAX_USERNAMES;

/**
 * Each round starts between 3/4 and 5/4 of the period after the previous one ended, at random:
 * gateways started together (a deployment, a restart) then spread their requests over time
 * instead of asking auth all at once, period after period.
 */
export const RECHECK_JITTER = 0.25;

/** What a session closed by a recheck is told (`shutting_down`), by what became of its account. */
export const RECHECK_CLOSE_REASON = {
  disabled: 'account disabled',
  deleted: 'account deleted',
  changed: 'account credentials changed; log in again',
} as const;

/** The numbers of one round, for tests and the log. */
export interface RecheckRound {
  /** Distinct users asked after. */
  readonly users: number;
  /** Requests made to auth (one per batch of at most RECHECK_BATCH_SIZE users). */
  readonly requests: number;
  /** Sessions ended. */
  readonly closed: number;
  /** Whether every batch was answered (false: auth failed; the next round tries again). */
  readonly complete: boolean;
}

/**
 * Heals a missed order to close sessions. Disabling or deleting an account, resetting its
 * password or replacing its key orders every gateway to close the user's sessions, but that
 * order is at most once (pub/sub): a gateway cut off from Redis at that moment keeps them. So
 * every such change also raises the account's credential generation (users.credentials_version),
 * each session remembers the generation its login was decided with, and every
 * SECURECHAT_SESSION_RECHECK_SECONDS this gateway asks auth for the state and generation of
 * the accounts it holds sessions of, and ends with `shutting_down` (docs/PROTOCOL.md §10,
 * item 20) every session whose account is now disabled, deleted or gone, or whose generation
 * differs from its login's. A missed order thus lasts at most about one period.
 *
 * Bounded cost: one request per RECHECK_BATCH_SIZE distinct users per period, made one after
 * another (never two at once), one primary-key query each on auth's side; no timer per
 * session; a round starts only once the previous one ended. When auth cannot answer, the round
 * stops and closes nothing (an outage of auth must not end every session); the next tries
 * again. 0 turns it off.
 */
@Injectable()
export class SessionRecheck implements OnApplicationBootstrap, OnModuleDestroy {
  readonly #logger = new Logger('SessionRecheck');
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RecheckRound> | undefined;
  #stopped = false;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    private readonly registry: SessionRegistry,
    private readonly auth: AuthClient,
  ) {}

  /** The period in milliseconds; 0 (also when a test's config leaves it out): off. */
  get periodMs(): number {
    return (this.config.sessionRecheckSeconds ?? 0) * 1000;
  }

  onApplicationBootstrap(): void {
    this.#stopped = false;
    this.#schedule();
  }

  onModuleDestroy(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One round now: every user with a live session here, in batches. A call while a round is
   * in flight joins it. Never rejects: a failure is logged, and the round reports it.
   */
  run(): Promise<RecheckRound> {
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  #schedule(): void {
    const period = this.periodMs;
    if (!(period > 0) || this.#stopped) return;
    const delay = period * (1 - RECHECK_JITTER + 2 * RECHECK_JITTER * Math.random());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.run().finally(() => this.#schedule());
    }, delay);
    // Not what keeps the process alive: a gateway stopping must not wait for a round.
    this.#timer.unref();
  }

  async #round(): Promise<RecheckRound> {
    const usernames = this.registry.usernames();
    let requests = 0;
    let closed = 0;
    for (let start = 0; start < usernames.length && !this.#stopped; start += RECHECK_BATCH_SIZE) {
      const batch = usernames.slice(start, start + RECHECK_BATCH_SIZE);
      // The sessions as they are before asking: one that logs in while the question is out was
      // decided on newer state than the answer may show, so it waits for the next round.
      const sessions = batch.flatMap((username) => this.registry.sessionsOf(username));
      let accounts: readonly AccountState[];
      try {
        requests += 1;
        const answer = await this.auth.accountStates(batch);
        if (!answer.ok) throw new Error(`auth answered ${answer.code}`);
        accounts = answer.accounts;
      } catch (error) {
        this.#logger.warn(
          `session recheck stopped, the next one is due in about ${this.periodMs / 1000} s: ` +
            `auth did not answer (${error instanceof Error ? error.message : String(error)})`,
        );
        return { users: usernames.length, requests, closed, complete: false };
      }
      closed += this.#closeStale(sessions, accounts);
    }
    if (closed > 0) {
      this.#logger.log(
        `closed ${closed} session(s) whose account changed since login (an order to close ` +
          'them did not reach this gateway)',
      );
    }
    return { users: usernames.length, requests, closed, complete: !this.#stopped };
  }

  /** Ends the sessions of `sessions` that `accounts` says must end; returns how many. */
  #closeStale(sessions: readonly DeliveryTarget[], accounts: readonly AccountState[]): number {
    const byName = new Map(accounts.map((account) => [account.username, account]));
    let closed = 0;
    for (const session of sessions) {
      // Gone meanwhile (closed, or `bye`): nothing to end.
      if (this.registry.session(session.sessionId) !== session) continue;
      const reason = closeReason(session, byName.get(session.username));
      if (reason === undefined) continue;
      try {
        session.shutdown('shutting_down', reason);
        closed += 1;
      } catch (error) {
        this.#logger.error(`closing a session failed: ${(error as Error).message}`);
      }
    }
    return closed;
  }
}

/**
 * Why `session` must end, given its account now (undefined: auth knows no such account, which
 * no session can belong to); undefined when it may go on. A session whose login did not carry
 * a generation (an older auth service) is judged by the account's state only.
 */
export function closeReason(
  session: Pick<DeliveryTarget, 'credentialsVersion'>,
  account: AccountState | undefined,
): string | undefined {
  if (account === undefined || account.state === 'deleted') return RECHECK_CLOSE_REASON.deleted;
  if (account.state === 'disabled') return RECHECK_CLOSE_REASON.disabled;
  const version = session.credentialsVersion;
  if (version !== undefined && version !== account.credentialsVersion) {
    return RECHECK_CLOSE_REASON.changed;
  }
  return undefined;
}
