/**
 * A ByteStream (apps/gateway-tcp/src/framed-socket.ts) whose "kernel" is the test: bytes written
 * wait in `writableLength` until the test calls `accept(n)`, which takes n of them (corked ones
 * only after `uncork`), calls the `done` of every write it completed and emits `drain` like a
 * net.Socket would. Input is pushed with `push(chunk)` whether or not reading is paused, so a
 * test can play a peer that ignores flow control. The idle timeout is only stored: `fireIdle()`
 * emits its `timeout`.
 */
import { EventEmitter } from 'node:events';

import { type ByteStream } from '../src/framed-socket';

interface QueuedWrite {
  readonly bytes: Buffer;
  /** Bytes of it the kernel took already. */
  taken: number;
  /** Written while corked, and not uncorked since: the kernel cannot take it yet. */
  corked: boolean;
  readonly done: (error?: Error | null) => void;
}

export class FakeByteStream extends EventEmitter implements ByteStream {
  /** Like net.Socket: `write` returns false at this much waiting, and `drain` follows. */
  static readonly HIGH_WATER_MARK = 16 * 1024;

  writableLength = 0;
  destroyed = false;
  /** What the last pause()/resume() said. */
  paused = false;
  pauseCalls = 0;
  resumeCalls = 0;
  corkDepth = 0;
  uncorkCalls = 0;
  endCalls = 0;
  destroyCalls = 0;
  /** Every write, in order, as written. */
  readonly written: Buffer[] = [];
  /** What the kernel took, in order. */
  readonly received: Buffer[] = [];
  idleTimeoutMs = 0;
  /** The largest writableLength ever seen. */
  maxWritableLength = 0;
  readonly #queue: QueuedWrite[] = [];
  #needDrain = false;

  get corked(): boolean {
    return this.corkDepth > 0;
  }

  /** Bytes the kernel could take now (written, uncorked, not taken yet). */
  get acceptable(): number {
    let bytes = 0;
    for (const write of this.#queue) {
      if (write.corked) break;
      bytes += write.bytes.length - write.taken;
    }
    return bytes;
  }

  /** Everything the kernel took, as one buffer. */
  get receivedBytes(): Buffer {
    return Buffer.concat(this.received);
  }

  pause(): this {
    this.paused = true;
    this.pauseCalls += 1;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.resumeCalls += 1;
    return this;
  }

  cork(): void {
    this.corkDepth += 1;
  }

  uncork(): void {
    this.uncorkCalls += 1;
    if (this.corkDepth === 0) return;
    this.corkDepth -= 1;
    if (this.corkDepth === 0) for (const write of this.#queue) write.corked = false;
  }

  write(bytes: Buffer, done: (error?: Error | null) => void): boolean {
    if (this.destroyed) {
      process.nextTick(() => done(new Error('write after destroy')));
      return false;
    }
    this.written.push(Buffer.from(bytes));
    this.#queue.push({ bytes: Buffer.from(bytes), taken: 0, corked: this.corked, done });
    this.writableLength += bytes.length;
    this.maxWritableLength = Math.max(this.maxWritableLength, this.writableLength);
    const below = this.writableLength < FakeByteStream.HIGH_WATER_MARK;
    if (!below) this.#needDrain = true;
    return below;
  }

  /**
   * The kernel takes up to `n` bytes (all it can when omitted): writableLength drops by what it
   * took and the `done` of each write it completed runs, in order. Returns the bytes taken.
   */
  accept(n = Number.POSITIVE_INFINITY): number {
    if (this.destroyed) return 0;
    let left = n;
    let taken = 0;
    const completed: QueuedWrite[] = [];
    while (left > 0 && this.#queue.length > 0) {
      const write = this.#queue[0]!;
      if (write.corked) break;
      const take = Math.min(left, write.bytes.length - write.taken);
      this.received.push(write.bytes.subarray(write.taken, write.taken + take));
      write.taken += take;
      left -= take;
      taken += take;
      this.writableLength -= take;
      if (write.taken === write.bytes.length) {
        this.#queue.shift();
        completed.push(write);
      }
    }
    for (const write of completed) write.done(null);
    if (this.#needDrain && this.writableLength === 0) {
      this.#needDrain = false;
      this.emit('drain');
    }
    return taken;
  }

  /** The peer sends bytes (whether or not reading is paused). */
  push(chunk: Buffer): void {
    this.emit('data', chunk);
  }

  end(): this {
    this.endCalls += 1;
    return this;
  }

  /** Like net.Socket: waiting writes fail, and `close` follows on the next tick. */
  destroy(): this {
    this.destroyCalls += 1;
    if (this.destroyed) return this;
    this.destroyed = true;
    const failed = this.#queue.splice(0);
    this.writableLength = 0;
    process.nextTick(() => {
      for (const write of failed) write.done(new Error('socket destroyed'));
      this.emit('close');
    });
    return this;
  }

  setTimeout(ms: number): this {
    this.idleTimeoutMs = ms;
    return this;
  }

  /** The idle timeout elapses (if one is set), as net.Socket says it: `timeout`. */
  fireIdle(): void {
    if (this.idleTimeoutMs > 0) this.emit('timeout');
  }
}
