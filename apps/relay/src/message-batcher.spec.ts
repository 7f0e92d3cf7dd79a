/** Group commit mechanics, with a fake writer whose "transactions" the test completes by hand. */
import { GroupCommitBatcher } from './message-batcher';

/** A writer that records each batch and lets the test decide when (and how) it completes. */
function manualWriter() {
  const batches: { items: number[]; done: (fail?: Error) => void }[] = [];
  const write = (items: readonly number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push({
        items: [...items],
        done: (fail) => (fail ? reject(fail) : resolve(items.map((n) => n * 10))),
      });
    });
  return { batches, write };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommitBatcher', () => {
  it('writes items submitted in the same tick as one batch and gives each caller its result', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 256);
    const results = Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    await tick();
    expect(batches.map((b) => b.items)).toEqual([[1, 2, 3]]);
    batches[0]!.done();
    expect(await results).toEqual([10, 20, 30]);
    expect(batcher.stats).toEqual({ batches: 1, failedBatches: 0, items: 3, largestBatch: 3 });
  });

  it('accumulates the next batch while one is in flight, and writes it right after', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 256);
    const first = batcher.submit(1);
    await tick();
    const later = [2, 3, 4].map((n) => batcher.submit(n));
    await tick();
    expect(batches).toHaveLength(1); // one transaction at a time
    expect(batcher.queued).toBe(3);
    batches[0]!.done();
    expect(await first).toBe(10);
    await tick();
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.done();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it('caps a batch at maxBatch', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 2);
    const all = Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    for (let i = 0; i < 3; i++) {
      await tick();
      batches[i]!.done();
    }
    expect(await all).toEqual([10, 20, 30, 40, 50]);
    expect(batches.map((b) => b.items)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('keeps a unit of submitAll in one batch, never split across two', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 4);
    const single = batcher.submit(1);
    const unit = batcher.submitAll([2, 3, 4, 5]);
    const big = batcher.submitAll([6, 7, 8, 9, 10]);
    const last = batcher.submit(11);
    for (let i = 0; i < 3; i++) {
      await tick();
      batches[i]!.done();
    }
    // [1] alone: the unit of four would not fit beside it; the unit larger than maxBatch goes
    // alone too; then what is left.
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4, 5], [6, 7, 8, 9, 10]]);
    await tick();
    batches[3]!.done();
    expect(batches[3]!.items).toEqual([11]);
    expect(await single).toBe(10);
    expect(await unit).toEqual([20, 30, 40, 50]);
    expect(await big).toEqual([60, 70, 80, 90, 100]);
    expect(await last).toBe(110);
  });

  it('fails a whole unit with its batch, and answers units and single items in storage order', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 256);
    const order: string[] = [];
    const a = batcher.submit(1).then(() => order.push('a'));
    const b = batcher.submitAll([2, 3]).then(() => order.push('b'));
    const c = batcher.submit(4).then(() => order.push('c'));
    await tick();
    batches[0]!.done();
    await Promise.all([a, b, c]);
    expect(order).toEqual(['a', 'b', 'c']);
    const doomed = batcher.submitAll([5, 6]);
    await tick();
    batches[1]!.done(new Error('tx failed'));
    await expect(doomed).rejects.toThrow('tx failed');
    expect(await batcher.submitAll([])).toEqual([]);
  });

  it('rejects every caller of a failed batch, and carries on with the next one', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 256);
    const doomed = [1, 2].map((n) => batcher.submit(n));
    await tick();
    const next = batcher.submit(3);
    batches[0]!.done(new Error('commit failed'));
    for (const p of doomed) await expect(p).rejects.toThrow('commit failed');
    await tick();
    batches[1]!.done();
    expect(await next).toBe(30);
    expect(batcher.stats.failedBatches).toBe(1);
  });

  it('rejects the whole batch when the writer answers the wrong number of results', async () => {
    const batcher = new GroupCommitBatcher(
      (items: readonly number[]) => Promise.resolve([items.length]),
      8,
    );
    const all = [1, 2].map((n) => batcher.submit(n));
    for (const p of all) await expect(p).rejects.toThrow(/1 results for 2/);
  });

  it('rejects when the writer throws synchronously', async () => {
    const batcher = new GroupCommitBatcher<number, number>(() => {
      throw new Error('boom');
    }, 8);
    await expect(batcher.submit(1)).rejects.toThrow('boom');
  });

  it('drains: resolves once everything queued has been written', async () => {
    const { batches, write } = manualWriter();
    const batcher = new GroupCommitBatcher(write, 1);
    await batcher.drain(); // idle: at once
    void batcher.submit(1);
    void batcher.submit(2);
    let drained = false;
    void batcher.drain().then(() => (drained = true));
    await tick();
    batches[0]!.done();
    await tick();
    expect(drained).toBe(false);
    batches[1]!.done();
    await tick();
    expect(drained).toBe(true);
  });
});
