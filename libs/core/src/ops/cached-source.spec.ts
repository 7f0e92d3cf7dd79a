import { cachedSource } from './cached-source';

it('reads once per period and shares a read in progress', async () => {
  let now = 1_000;
  let value = 5;
  const read = jest.fn(() => Promise.resolve(value));
  const source = cachedSource(read, 5_000, () => now);

  const [a, b] = await Promise.all([source(), source()]);
  expect([a, b]).toEqual([5, 5]);
  expect(read).toHaveBeenCalledTimes(1);

  value = 7;
  now += 4_999;
  expect(await source()).toBe(5);
  expect(read).toHaveBeenCalledTimes(1);

  now += 1;
  expect(await source()).toBe(7);
  expect(read).toHaveBeenCalledTimes(2);
});

it('does not cache a failed read', async () => {
  const read = jest
    .fn<Promise<number>, []>()
    .mockRejectedValueOnce(new Error('down'))
    .mockResolvedValueOnce(3);
  const source = cachedSource(read, 5_000, () => 0);
  await expect(source()).rejects.toThrow('down');
  expect(await source()).toBe(3);
});

it('gives up a read that never settles, and tries again on the next call', async () => {
  const read = jest
    .fn<Promise<number>, []>()
    .mockReturnValueOnce(new Promise<number>(() => undefined))
    .mockResolvedValueOnce(9);
  const source = cachedSource(read, 5_000, () => 0, 20);
  await expect(source()).rejects.toThrow('no answer within 20 ms');
  expect(await source()).toBe(9);
  expect(read).toHaveBeenCalledTimes(2);
});
