/** setTimeout/clearTimeout behind an interface: the unit specs of the client's parts drive time. */
/** Whatever `set` returned: a Node timer object, or a test's number. */
export type TimerHandle = object | number;

export interface Timers {
  set(callback: () => void, ms: number): TimerHandle;
  clear(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
