import { KeyedMutex } from './keyed-mutex';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('KeyedMutex', () => {
  it('runs tasks of one key one after another, in arrival order', async () => {
    const mutex = new KeyedMutex();
    const events: string[] = [];
    const gate = deferred();
    const first = mutex.run('alice', async () => {
      events.push('first start');
      await gate.promise;
      events.push('first end');
      return 1;
    });
    const second = mutex.run('alice', () => {
      events.push('second');
      return Promise.resolve(2);
    });
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['first start']);
    gate.resolve();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(events).toEqual(['first start', 'first end', 'second']);
    expect(mutex.size).toBe(0);
  });

  it('runs tasks of different keys concurrently', async () => {
    const mutex = new KeyedMutex();
    const gate = deferred();
    const slow = mutex.run('alice', () => gate.promise);
    let bobRan = false;
    await mutex.run('bob', () => {
      bobRan = true;
      return Promise.resolve();
    });
    expect(bobRan).toBe(true);
    expect(mutex.size).toBe(1);
    gate.resolve();
    await slow;
    expect(mutex.size).toBe(0);
  });

  it('keeps going after a task fails', async () => {
    const mutex = new KeyedMutex();
    const failing = mutex.run('alice', () => Promise.reject(new Error('boom')));
    const next = mutex.run('alice', () => Promise.resolve('ok'));
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
    expect(mutex.size).toBe(0);
  });
});
