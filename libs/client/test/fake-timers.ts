import { type TimerHandle, type Timers } from '../src/timers';

/** Timers that fire only when a test advances time by hand: specs need no real waiting. */
export class FakeTimers implements Timers {
  now = 0;
  readonly #pending = new Map<number, { at: number; callback: () => void }>();
  #next = 1;

  set(callback: () => void, ms: number): TimerHandle {
    const handle = this.#next++;
    this.#pending.set(handle, { at: this.now + ms, callback });
    return handle;
  }

  clear(handle: TimerHandle): void {
    this.#pending.delete(handle as number);
  }

  /** Timers waiting to fire, with their delay from now. */
  get waiting(): number[] {
    return [...this.#pending.values()].map((t) => t.at - this.now);
  }

  /** Moves time forward, firing what falls due in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.#pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#pending.delete(due[0]);
      this.now = due[1].at;
      due[1].callback();
    }
    this.now = until;
  }
}
