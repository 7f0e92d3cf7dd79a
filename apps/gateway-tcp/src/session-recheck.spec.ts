/**
 * SessionRecheck with a real SessionRegistry, a fake auth client and Jest's fake timers: which
 * sessions a round ends and why, how it batches, that it closes nothing when auth cannot
 * answer, and when rounds happen. Timers are advanced by hand; nothing waits for real time.
 */
import { Logger } from '@nestjs/common';
import {
  type AccountState,
  type AccountStatesResult,
  type SecureChatConfig,
  type StoredMessage,
} from '@securechat/core';

import { type AuthClient } from './service-clients';
import { type DeliveryTarget, SessionRegistry } from './session-registry';
import {
  closeReason,
  RECHECK_BATCH_SIZE,
  RECHECK_CLOSE_REASON,
  RECHECK_JITTER,
  SessionRecheck,
} from './session-recheck';

type Target = DeliveryTarget & { shutdown: jest.Mock<void, ['shutting_down', string]> };

let nextSession = 0;

function target(username: string, credentialsVersion?: number): Target {
  return {
    username,
    sessionId: `s-${++nextSession}`,
    ...(credentialsVersion === undefined ? {} : { credentialsVersion }),
    deliver: jest.fn<void, [StoredMessage]>(),
    shutdown: jest.fn<void, ['shutting_down', string]>(),
  };
}

const active = (username: string, credentialsVersion = 0): AccountState => ({
  username,
  state: 'active',
  credentialsVersion,
});

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

/**
 * `accounts` answers every name it knows; names it does not know are left out, like auth.
 * `seconds` is the period (SECURECHAT_SESSION_RECHECK_SECONDS), `'unset'` leaves it out.
 */
function setup(accounts: AccountState[] = [], seconds: number | 'unset' = 60) {
  const registry = new SessionRegistry();
  const known = new Map(accounts.map((a) => [a.username, a]));
  const auth = {
    accountStates: jest.fn((usernames: readonly string[]): Promise<AccountStatesResult> =>
      Promise.resolve({
        ok: true,
        accounts: usernames.flatMap((name) => {
          const account = known.get(name);
          return account ? [account] : [];
        }),
      }),
    ),
  };
  const recheck = new SessionRecheck(
    (seconds === 'unset' ? {} : { sessionRecheckSeconds: seconds }) as SecureChatConfig,
    registry,
    auth as unknown as AuthClient,
  );
  const add = (...targets: Target[]) => {
    for (const t of targets) registry.add(t);
    return targets;
  };
  return { registry, auth, recheck, known, add };
}

/** Lets the promise callbacks of a round settle (fake timers leave microtasks alone). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

let warnings: string[];
let logs: string[];

beforeEach(() => {
  warnings = [];
  logs = [];
  jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => {
    warnings.push(String(message));
  });
  jest.spyOn(Logger.prototype, 'log').mockImplementation((message: unknown) => {
    logs.push(String(message));
  });
  jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe('closeReason', () => {
  it.each([
    ['an active account at the login’s generation', active('a', 3), 3, undefined],
    ['an active account, the login’s generation unknown', active('a', 3), undefined, undefined],
    ['a generation raised since the login', active('a', 4), 3, RECHECK_CLOSE_REASON.changed],
    // Not newer than the answer in practice (the session was taken before asking); any
    // difference means the stored credentials are not those the login was decided with.
    ['a generation other than the login’s', active('a', 2), 3, RECHECK_CLOSE_REASON.changed],
    [
      'a disabled account',
      { ...active('a', 3), state: 'disabled' } as const,
      3,
      RECHECK_CLOSE_REASON.disabled,
    ],
    [
      'a deleted account',
      { ...active('a', 3), state: 'deleted' } as const,
      3,
      RECHECK_CLOSE_REASON.deleted,
    ],
    ['an account auth does not know', undefined, 3, RECHECK_CLOSE_REASON.deleted],
  ])('%s', (_case, account, credentialsVersion, reason) => {
    expect(closeReason({ credentialsVersion }, account)).toBe(reason);
  });
});

describe('SessionRecheck rounds', () => {
  it('ends the sessions whose account was disabled, deleted or changed, and no other', async () => {
    const { recheck, add, known } = setup([
      active('alice', 2),
      { ...active('bob', 1), state: 'disabled' },
      { ...active('carol', 1), state: 'deleted' },
      active('dora', 5),
      active('erin', 0),
    ]);
    const [alice, bob, carol, dora1, dora2, erin, frank, old] = add(
      target('alice', 2),
      target('bob', 0),
      target('carol', 0),
      target('dora', 4), // logged in before the change
      target('dora', 5), // logged in after it
      target('erin', 0),
      target('frank', 0), // auth has never heard of frank
      target('alice'), // logged in through an auth that did not send the generation
    );
    expect(known.size).toBe(5);

    expect(await recheck.run()).toEqual({ users: 6, requests: 1, closed: 4, complete: true });
    expect(bob!.shutdown).toHaveBeenCalledWith('shutting_down', RECHECK_CLOSE_REASON.disabled);
    expect(carol!.shutdown).toHaveBeenCalledWith('shutting_down', RECHECK_CLOSE_REASON.deleted);
    expect(dora1!.shutdown).toHaveBeenCalledWith('shutting_down', RECHECK_CLOSE_REASON.changed);
    expect(frank!.shutdown).toHaveBeenCalledWith('shutting_down', RECHECK_CLOSE_REASON.deleted);
    for (const untouched of [alice, dora2, erin, old]) {
      expect(untouched!.shutdown).not.toHaveBeenCalled();
    }
    expect(logs.join('\n')).toContain('closed 4 session(s)');
  });

  it('asks nothing while no session is held', async () => {
    const { recheck, auth } = setup();
    expect(await recheck.run()).toEqual({ users: 0, requests: 0, closed: 0, complete: true });
    expect(auth.accountStates).not.toHaveBeenCalled();
  });

  it('asks once per batch of distinct users, one batch at a time', async () => {
    const users = 2 * RECHECK_BATCH_SIZE + 3;
    const { recheck, auth, add } = setup();
    for (let i = 0; i < users; i++) add(target(`user${i}`, 0));
    add(target('user0', 0)); // a second session: its user is asked after once
    const answers = [deferred<AccountStatesResult>(), deferred<AccountStatesResult>()];
    auth.accountStates
      .mockImplementationOnce(() => answers[0]!.promise)
      .mockImplementationOnce(() => answers[1]!.promise);

    const round = recheck.run();
    await settle();
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    answers[0]!.resolve({ ok: true, accounts: [] });
    await settle();
    expect(auth.accountStates).toHaveBeenCalledTimes(2);
    answers[1]!.resolve({ ok: true, accounts: [] });
    const result = await round;

    expect(auth.accountStates.mock.calls.map(([names]) => names.length)).toEqual([
      RECHECK_BATCH_SIZE,
      RECHECK_BATCH_SIZE,
      3,
    ]);
    const asked = auth.accountStates.mock.calls.flatMap(([names]) => names);
    expect(new Set(asked).size).toBe(users);
    expect(result).toMatchObject({ users, requests: 3, complete: true });
  });

  it('judges only the sessions held when it asked, and only while they are still held', async () => {
    const { recheck, auth, registry, add } = setup([{ ...active('bob', 1), state: 'disabled' }]);
    const [leaving, staying] = add(target('bob', 0), target('bob', 0));
    const answer = deferred<AccountStatesResult>();
    auth.accountStates.mockImplementationOnce(() => answer.promise);
    const round = recheck.run();
    await settle();
    // While the question is out: one session leaves, another logs in (decided on newer state).
    registry.remove(leaving!);
    const [newcomer] = add(target('bob', 1));
    answer.resolve({ ok: true, accounts: [{ ...active('bob', 1), state: 'disabled' }] });
    expect((await round).closed).toBe(1);
    expect(staying!.shutdown).toHaveBeenCalledTimes(1);
    expect(leaving!.shutdown).not.toHaveBeenCalled();
    expect(newcomer!.shutdown).not.toHaveBeenCalled();
  });

  it.each([
    ['auth is unreachable', () => Promise.reject(new Error('request timed out'))],
    [
      'auth refuses the request',
      () => Promise.resolve<AccountStatesResult>({ ok: false, code: 'bad_request' }),
    ],
  ])('closes nothing and stops the round when %s', async (_case, failure) => {
    const { recheck, auth, add } = setup();
    const sessions: Target[] = [];
    for (let i = 0; i < RECHECK_BATCH_SIZE + 1; i++) sessions.push(...add(target(`user${i}`, 0)));
    auth.accountStates.mockImplementationOnce(failure);
    expect(await recheck.run()).toMatchObject({ requests: 1, closed: 0, complete: false });
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    for (const session of sessions) expect(session.shutdown).not.toHaveBeenCalled();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/session recheck stopped/);
  });

  it('goes on with the other sessions when ending one throws', async () => {
    const { recheck, add } = setup([{ ...active('bob', 1), state: 'disabled' }]);
    const [broken, fine] = add(target('bob', 1), target('bob', 1));
    broken!.shutdown.mockImplementation(() => {
      throw new Error('socket gone');
    });
    expect((await recheck.run()).closed).toBe(1);
    expect(fine!.shutdown).toHaveBeenCalledTimes(1);
  });

  it('joins a round in flight instead of starting another', async () => {
    const { recheck, auth, add } = setup([active('alice')]);
    add(target('alice', 0));
    const first = recheck.run();
    const second = recheck.run();
    expect(second).toBe(first);
    await first;
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
  });
});

describe('SessionRecheck schedule', () => {
  beforeEach(() => jest.useFakeTimers());

  it.each([
    ['0', 0],
    ['left out', 'unset'],
  ] as const)('schedules nothing with a period of %s', async (_case, seconds) => {
    const { recheck, auth, add } = setup([], seconds);
    add(target('alice', 0));
    recheck.onApplicationBootstrap();
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(auth.accountStates).not.toHaveBeenCalled();
  });

  it('rechecks about once per period, spread at random around it', async () => {
    // The first round as early as allowed, the second as late.
    jest.spyOn(Math, 'random').mockReturnValueOnce(0).mockReturnValue(1);
    const { recheck, auth, add } = setup([active('alice')], 10);
    add(target('alice', 0));
    recheck.onApplicationBootstrap();
    // The earliest a round may start: 3/4 of the period.
    await jest.advanceTimersByTimeAsync(10_000 * (1 - RECHECK_JITTER) - 1);
    expect(auth.accountStates).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    // The latest: 5/4 of it.
    await jest.advanceTimersByTimeAsync(10_000 * (1 + RECHECK_JITTER) - 1);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(auth.accountStates).toHaveBeenCalledTimes(2);
    expect(jest.getTimerCount()).toBe(1); // one timer for the whole gateway
    recheck.onModuleDestroy();
  });

  it('starts the next round only once the last one ended, however long auth takes', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const { recheck, auth, add } = setup([active('alice')], 1);
    add(target('alice', 0));
    const slow = deferred<AccountStatesResult>();
    auth.accountStates.mockImplementationOnce(() => slow.promise);
    recheck.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    slow.resolve({ ok: true, accounts: [active('alice')] });
    await jest.advanceTimersByTimeAsync(1_000);
    expect(auth.accountStates).toHaveBeenCalledTimes(2);
    recheck.onModuleDestroy();
  });

  it('tries again a period after auth failed', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const { recheck, auth, add } = setup([{ ...active('bob', 1), state: 'disabled' }], 5);
    const [bob] = add(target('bob', 0));
    auth.accountStates.mockRejectedValueOnce(new Error('auth down'));
    recheck.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(bob!.shutdown).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(bob!.shutdown).toHaveBeenCalledWith('shutting_down', RECHECK_CLOSE_REASON.disabled);
    recheck.onModuleDestroy();
  });

  it('stops with the module: no more rounds, and a round in flight asks nothing more', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const { recheck, auth, add } = setup([], 1);
    for (let i = 0; i < RECHECK_BATCH_SIZE + 1; i++) add(target(`user${i}`, 0));
    const answer = deferred<AccountStatesResult>();
    auth.accountStates.mockImplementationOnce(() => answer.promise);
    recheck.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    recheck.onModuleDestroy();
    answer.resolve({ ok: true, accounts: [] });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(auth.accountStates).toHaveBeenCalledTimes(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});
