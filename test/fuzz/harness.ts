/**
 * What every fuzz target shares: the target shape, the invariant checks, and the small input
 * codec the targets use to read control bytes and records out of one fuzzer input.
 *
 * A target's `run` throws only when it found a bug: an error that is not one of the project's
 * typed errors, or an InvariantViolation (a rule of docs/FUZZING.md broken). Typed errors
 * (ProtocolError and friends) are the expected answer to bad input and are caught inside.
 */
import { writeFileSync } from 'node:fs';

import { isErrorCode, MIN_FRAME, type ProtocolError } from '@securechat/protocol';

export interface FuzzTarget {
  /** The name on the command line and of the corpus directory. */
  readonly name: string;
  /** One execution. Must be deterministic for a given input (it is replayed by `--repro`). */
  run(data: Buffer): Promise<void>;
}

/** Errors nobody awaited, raised while an input ran: findings too. */
const stray: unknown[] = [];
let executions = 0;

/**
 * Wraps a target as jsfuzz's `fuzz` export. jsfuzz awaits the export only when it is an
 * `async` function, hence the async arrow. A rejection nobody handled, or an exception thrown
 * from a timer, during an input is thrown as that input's failure. With FUZZ_STATS_FILE set the
 * execution count is written there at exit (scripts/fuzz.mjs reads it).
 */
export function fuzzEntry(target: FuzzTarget): (data: Buffer) => Promise<void> {
  return async (data: Buffer) => {
    if (executions === 0) installGuards();
    executions += 1;
    await target.run(data);
    await tick();
    if (stray.length > 0) throw stray.splice(0)[0];
  };
}

function installGuards(): void {
  process.on('unhandledRejection', (reason) => stray.push(reason));
  process.on('uncaughtException', (error) => stray.push(error));
  const statsFile = process.env.FUZZ_STATS_FILE;
  if (statsFile) {
    const started = Date.now();
    process.on('exit', () => {
      const seconds = (Date.now() - started) / 1000;
      writeFileSync(
        statsFile,
        JSON.stringify({ executions, seconds, knownIssues: knownIssueHits() }),
      );
    });
  }
}

/**
 * Bugs the fuzzer found that are not fixed yet (docs/FUZZING.md "Known issues"), by id: what
 * is wrong. A target reports a hit with `knownIssue(id, …)` instead of failing, so that a run
 * goes on looking for new bugs. Each has its input in test/fuzz/crashes/<target>/; `--repro`
 * (and FUZZ_STRICT=1) fails on it. Remove the entry and its calls once the bug is fixed, and
 * move the input to the corpus as a regression seed. None is open today.
 */
export const KNOWN_ISSUES: Readonly<Record<string, string>> = {};

const knownHits = new Map<string, number>();

export function knownIssue(id: string, detail: string): void {
  const what = KNOWN_ISSUES[id];
  // An id not listed is no known issue: a plain finding.
  if (what === undefined) throw new InvariantViolation(`${detail} (unlisted known issue ${id})`);
  if (process.env.FUZZ_STRICT === '1') {
    throw new InvariantViolation(`known issue ${id}: ${detail} (${what})`);
  }
  knownHits.set(id, (knownHits.get(id) ?? 0) + 1);
}

export function knownIssueHits(): Record<string, number> {
  return Object.fromEntries(knownHits);
}

const tracing = process.env.FUZZ_TRACE === '1';

/** With FUZZ_TRACE=1 (e.g. with `--repro`), what a target did, on stderr. */
export function trace(message: () => string): void {
  if (tracing) console.error(`trace: ${message()}`);
}

/** A fuzz invariant does not hold: a bug, with the input that showed it. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

export function invariant(condition: unknown, message: string, cause?: unknown): asserts condition {
  if (!condition) {
    throw new InvariantViolation(message, cause === undefined ? undefined : { cause });
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Returns `error` typed when it is an instance of one of `allowed`; anything else (a TypeError,
 * a RangeError out of a parser, a string) is a bug and is rethrown as it was, stack included.
 */
export function expectTyped<T extends Error>(
  error: unknown,
  allowed: readonly ErrorClass[],
  where: string,
): T {
  if (allowed.some((type) => error instanceof type)) return error as T;
  if (error instanceof Error) {
    error.message = `${where}: untyped ${error.name}: ${error.message}`;
    throw error;
  }
  throw new InvariantViolation(`${where}: threw a non-Error: ${String(error)}`);
}

/**
 * A ProtocolError must carry a PROTOCOL.md §2 code; `internal` is how the state machines wrap an
 * error they did not expect (a bug behind a typed face), so it is a finding, with the original as
 * cause.
 */
export function checkProtocolError(error: ProtocolError, where: string): void {
  invariant(isErrorCode(error.code), `${where}: unknown error code ${String(error.code)}`);
  invariant(error.code !== 'internal', `${where}: internal error (a bug behind it)`, error.cause);
}

/**
 * A frame as some peer wrote it must respect PROTOCOL.md §2: `u32(N) || N bytes`, 2 ≤ N ≤ maxFrame.
 */
export function checkFrameBytes(bytes: Buffer, maxFrame: number, where: string): void {
  invariant(bytes.length >= 4 + MIN_FRAME, `${where}: frame shorter than its prefix`);
  const n = bytes.readUInt32BE(0);
  invariant(n === bytes.length - 4, `${where}: frame length prefix ${n} ≠ body length`);
  invariant(n <= maxFrame, `${where}: frame of ${n} bytes is above max_frame ${maxFrame}`);
}

/** Reads control bytes from the front of an input; past its end every byte reads as 0. */
export class InputReader {
  #at = 0;
  constructor(private readonly data: Buffer) {}

  byte(): number {
    return this.#at < this.data.length ? this.data[this.#at++]! : 0;
  }

  /** What is left after the control bytes read so far. */
  rest(): Buffer {
    return this.data.subarray(Math.min(this.#at, this.data.length));
  }
}

/**
 * Separates the records of one input: ASCII RS (0x1e). A raw 0x1e can never appear in valid
 * JSON text (control characters must be escaped in strings and are not whitespace), so the
 * separator hides nothing a parser should see, and the mutator makes and breaks records by
 * flipping a byte. Seeds written with it stay readable.
 */
export const RECORD_SEPARATOR = 0x1e;

export function splitRecords(data: Buffer): Buffer[] {
  const records: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === RECORD_SEPARATOR) {
      records.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  records.push(data.subarray(start));
  return records;
}

export function joinRecords(records: readonly (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [];
  records.forEach((record, i) => {
    if (i > 0) parts.push(Buffer.from([RECORD_SEPARATOR]));
    parts.push(Buffer.isBuffer(record) ? record : Buffer.from(record, 'utf8'));
  });
  return Buffer.concat(parts);
}

/**
 * Cuts `data` into chunks whose sizes come from `seed` (1..64 bytes, or everything at once when
 * the seed is 0): the same stream arriving in different pieces, as TCP may deliver it.
 */
export function chunk(data: Buffer, seed: number): Buffer[] {
  if (seed === 0 || data.length === 0) return data.length === 0 ? [] : [data];
  const chunks: Buffer[] = [];
  let state = seed;
  for (let at = 0; at < data.length;) {
    state = (state * 1103515245 + 12345) >>> 0;
    const size = 1 + ((state >>> 16) % 64);
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Lets timers of zero delay, I/O callbacks and every promise chain queued so far run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs event-loop turns until `progress()` (a snapshot of what the system under test did)
 * stops changing for two turns. A system still changing after `maxTurns` is spinning: a hang.
 */
export async function settle(progress: () => string, where: string, maxTurns = 200): Promise<void> {
  let last = progress();
  let quiet = 0;
  for (let turn = 0; turn < maxTurns; turn++) {
    await tick();
    const now = progress();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
    if (quiet >= 2) return;
  }
  throw new InvariantViolation(`${where}: still busy after ${maxTurns} event-loop turns (a hang)`);
}
