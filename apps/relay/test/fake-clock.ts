/** A ClockRepository stand-in whose time a test sets by hand (ms since the epoch). */
export class FakeClock {
  t = 1_764_000_000_000;
  now(): number {
    return this.t;
  }
}
