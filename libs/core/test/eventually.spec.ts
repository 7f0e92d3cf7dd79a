/** The polling helper every int- and e2e-spec waits with, on Jest's fake clock. */
import { eventually } from './eventually';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** Advances the fake clock `ms` ms; then how `promise` settled, or 'pending'. */
async function settleAfter(promise: Promise<void>, ms: number) {
  const outcome = promise.then(
    () => ({ ok: true as const }),
    (error: Error) => ({ ok: false as const, message: error.message }),
  );
  await jest.advanceTimersByTimeAsync(ms);
  return Promise.race([outcome, Promise.resolve('pending' as const)]);
}

it('resolves once the condition holds, asking again every interval', async () => {
  let asked = 0;
  const waiting = eventually(() => ++asked === 3, { intervalMs: 50 });
  expect(await settleAfter(waiting, 100)).toEqual({ ok: true });
  expect(asked).toBe(3);
});

it('awaits an asynchronous condition', async () => {
  let ready = false;
  const waiting = eventually(() => Promise.resolve(ready));
  expect(await settleAfter(waiting, 1000)).toBe('pending');
  ready = true;
  expect(await settleAfter(waiting, 25)).toEqual({ ok: true });
});

it('rejects naming what it waited for once the bound has passed, not before', async () => {
  const waiting = eventually(() => false, { what: 'the reply', timeoutMs: 1000, intervalMs: 100 });
  expect(await settleAfter(waiting, 900)).toBe('pending');
  expect(await settleAfter(waiting, 200)).toEqual({
    ok: false,
    message: 'timed out after 1000 ms waiting for the reply',
  });
});

it("names the condition's source by default", async () => {
  const got: number[] = [];
  const waiting = eventually(() => got.length === 2, { timeoutMs: 50 });
  expect(await settleAfter(waiting, 100)).toMatchObject({ message: /got\.length === 2/ });
});

it('builds a lazy description only when it fails', async () => {
  const what = jest.fn(() => 'output: boom');
  expect(
    await settleAfter(
      eventually(() => true, { what }),
      0,
    ),
  ).toEqual({ ok: true });
  expect(what).not.toHaveBeenCalled();
  const failing = eventually(() => false, { what, timeoutMs: 50 });
  expect(await settleAfter(failing, 100)).toMatchObject({ message: /output: boom$/ });
});
