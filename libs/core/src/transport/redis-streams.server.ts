import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import { Logger } from '@nestjs/common';
import { BaseRpcContext, type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { lastValueFrom } from 'rxjs';
import { DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { pingConnection } from '../redis/ping-connection';
import { connectionName, quit, settlesWithin } from './redis-connection.util';
import {
  decodeStreamEntry,
  encodeStreamReply,
  type StreamEntry,
  type StreamEvent,
  type StreamReply,
  type StreamRequest,
} from './redis-stream-entry.codec';

/** Constructor options of {@link RedisStreamsServer}. */
export interface RedisStreamsServerOptions {
  /** Redis URL (`redis://`, `rediss://`, credentials and database index included). */
  url: string;
  /** The service whose requests this instance handles: it reads `${prefix}req:${service}`. */
  service: 'auth' | 'relay';
  /**
   * This instance's name in the consumer group. Must be unique among live instances: two
   * instances under one name would share one pending list and could not tell whose entries
   * are whose. Default `${hostname}-${pid}-${random}`.
   */
  consumer?: string;
  /** Key and channel prefix, so deployments (and test files) sharing a Redis stay apart. Default `sc:`. */
  prefix?: string;
  /**
   * How long an entry may sit unacknowledged in another consumer's pending list before this
   * instance takes it over, i.e. how long a request held by a crashed instance waits. Live
   * instances keep their running entries fresh, so a slow handler is not taken over. Default 5000.
   */
  claimIdleMs?: number;
  /** Most entries fetched by one XREADGROUP or XAUTOCLAIM. Default 128. */
  readCount?: number;
  /** Most handlers running at once; reading pauses at the bound. Default 1024. */
  maxInFlight?: number;
  /**
   * Deliveries after which an entry that keeps being taken over (its handler crashes or stalls
   * every instance it reaches: a "poison" request) is abandoned: answered with an error,
   * acknowledged and deleted, and logged. Default 5.
   */
  maxDeliveries?: number;
  /**
   * How long one XREADGROUP waits for entries: short enough that a reconnect is noticed
   * promptly, long enough to cost nothing idle (close() ends a waiting read at once). Default 1000.
   */
  blockMs?: number;
  /**
   * How long close() waits for running handlers; what still runs then is left to other
   * instances (it stays pending). Default 5000.
   */
  closeDrainMs?: number;
}

/** What `status` emits, as Nest's own Redis transport does. */
export type RedisStreamsStatus = 'connected' | 'disconnected' | 'reconnecting';

/**
 * Handler context for the Redis Streams transport (`@Ctx() ctx: RedisStreamsContext`). The
 * entry id is stable across redeliveries, so a handler that must not repeat a side effect can
 * key on it; `isRedelivery()` tells that an earlier attempt may already have run.
 */
export class RedisStreamsContext extends BaseRpcContext<
  [pattern: string, entryId: string, redelivered: boolean]
> {
  getPattern(): string {
    return this.getArgs()[0];
  }

  getEntryId(): string {
    return this.getArgs()[1];
  }

  isRedelivery(): boolean {
    return this.getArgs()[2];
  }
}

/** A finished entry waiting for the next reply-and-acknowledge pipeline. */
interface Outgoing {
  readonly id: string;
  readonly replyTo: string | undefined;
  readonly reply: string | undefined;
}

type RawEntry = [id: string, fields: string[] | null];

/** What a handler's run comes to: a response, a failure to report, or nothing (events). */
type Outcome = { readonly response: unknown } | { readonly err: string } | undefined;

/** Entry `id`'s reply, for entries that name a caller to send it to. */
function outgoing(id: string, entry: StreamEntry | undefined, outcome: Outcome): Outgoing {
  if (
    outcome === undefined ||
    entry === undefined ||
    entry.kind === 'event' ||
    entry.replyTo === undefined ||
    entry.requestId === undefined
  ) {
    return { id, replyTo: undefined, reply: undefined };
  }
  const reply: StreamReply = { requestId: entry.requestId, ...outcome };
  return { id, replyTo: entry.replyTo, reply: encodeStreamReply(reply) };
}

const DEFAULT_PREFIX = 'sc:';
const DEFAULT_CLAIM_IDLE_MS = 5000;
const DEFAULT_READ_COUNT = 128;
const DEFAULT_MAX_IN_FLIGHT = 1024;
const DEFAULT_MAX_DELIVERIES = 5;
const DEFAULT_BLOCK_MS = 1000;
const DEFAULT_CLOSE_DRAIN_MS = 5000;
/** Pause after a failed read before the next one, so an outage does not spin. */
const RETRY_PAUSE_MS = 500;
/** How long close() waits for each of its Redis steps, in case Redis went away unnoticed. */
const STEP_TIMEOUT_MS = 500;
/** An error class name is safe to report; anything else about an error may quote the payload. */
const SAFE_ERROR_NAME = /^[A-Za-z_$][\w$]{0,63}$/;

function defaultConsumer(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The message of a Redis or connection error: neither ever quotes command arguments. */
function redisErrorText(error: unknown): string {
  return error instanceof Error ? error.message : typeof error;
}

function isMissingGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

/**
 * What a client learns of a failed handler: that it failed and the error's class, never the
 * message, which may quote the payload (a password, a message body). Nest's RPC exception
 * filter has usually already turned the error into a plain object with no class at all.
 */
function describeFailure(error: unknown): string {
  const name = error instanceof Error ? error.name : undefined;
  return name !== undefined && SAFE_ERROR_NAME.test(name)
    ? `handler failed (${name})`
    : 'handler failed';
}

/**
 * Nest transport strategy for the distributed deployment: each service's instances form one
 * Redis Streams consumer group on `${prefix}req:${service}`, so each request is handled by
 * exactly one live instance (Nest's own Redis transport is pub/sub and would hand every request
 * to every instance), and an entry stays in the group's pending list until its reply is out,
 * so a request held by an instance that dies is taken over by another after `claimIdleMs`.
 *
 * Delivery: handling is at least once (a crash after the handler ran but before the
 * acknowledgement, or a handler stalled longer than `claimIdleMs`, runs it again); replies are
 * at most once (pub/sub: a reply published while the client's subscriber is away is lost and
 * the client times out). Handlers must therefore be idempotent, as the relay's are on sender
 * and message id.
 *
 * Handlers run concurrently, up to `maxInFlight`: the relay's group commit depends on seeing
 * many requests at once. Acknowledged entries are deleted from the stream at once: requests
 * carry passwords and message bodies, which should not linger in Redis memory.
 */
export class RedisStreamsServer
  extends Server<Record<string, (...args: unknown[]) => void>, RedisStreamsStatus>
  implements CustomTransportStrategy
{
  readonly #log = new Logger(RedisStreamsServer.name);
  readonly #url: string;
  readonly #stream: string;
  readonly #group: string;
  readonly #consumer: string;
  readonly #claimIdleMs: number;
  readonly #readCount: number;
  readonly #maxInFlight: number;
  readonly #maxDeliveries: number;
  readonly #blockMs: number;
  readonly #closeDrainMs: number;

  /** Dedicated to the blocking XREADGROUP, which would stall every other command on its connection. */
  #reader: Redis | undefined;
  /** Everything else: replies, acknowledgements, reclaims (auto-pipelined). */
  #commands: Redis | undefined;
  #readerId: number | undefined;
  readonly #pendingListeners: { event: string; callback: (...args: unknown[]) => void }[] = [];

  /** Handlers running now; bounded by maxInFlight. */
  #running = 0;
  /**
   * Entries this instance holds (read or claimed, not yet acknowledged), with no duplicates:
   * the reclaim loop skips them and keeps them fresh so that no other instance takes them.
   */
  readonly #held = new Set<string>();
  #outbox: Outgoing[] = [];
  #flushScheduled = false;
  readonly #flushes = new Set<Promise<void>>();

  #closing = false;
  /** Set once close() has stopped waiting: entries claimed after that are left to others. */
  #stopped = false;
  #closed: Promise<void> | undefined;
  #readLoop: Promise<void> | undefined;
  #reclaimTick: Promise<void> | undefined;
  #reclaimTimer: NodeJS.Timeout | undefined;
  /** Wakes whatever waits for a free handler slot, a drained instance, or the end of a pause. */
  #wakers = new Set<() => void>();

  constructor(options: RedisStreamsServerOptions) {
    super();
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#url = options.url;
    this.#stream = `${prefix}req:${options.service}`;
    this.#group = options.service;
    this.#consumer = options.consumer ?? defaultConsumer();
    this.#claimIdleMs = options.claimIdleMs ?? DEFAULT_CLAIM_IDLE_MS;
    this.#readCount = options.readCount ?? DEFAULT_READ_COUNT;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#maxDeliveries = options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
    this.#blockMs = options.blockMs ?? DEFAULT_BLOCK_MS;
    this.#closeDrainMs = options.closeDrainMs ?? DEFAULT_CLOSE_DRAIN_MS;
    for (const [name, value] of [
      ['claimIdleMs', this.#claimIdleMs],
      ['readCount', this.#readCount],
      ['maxInFlight', this.#maxInFlight],
      ['maxDeliveries', this.#maxDeliveries],
      ['blockMs', this.#blockMs],
      ['closeDrainMs', this.#closeDrainMs],
    ] as const) {
      if (!Number.isInteger(value) || value < 1)
        throw new RangeError(`${name} must be a positive integer`);
    }
  }

  /** This instance's consumer name (the one in XINFO CONSUMERS). */
  get consumer(): string {
    return this.#consumer;
  }

  /** Readiness (/readyz): both connections up, and Redis answers PING. */
  async ping(): Promise<void> {
    if (this.#reader && this.#reader.status !== 'ready') {
      throw new Error(`reader connection ${this.#reader.status}`);
    }
    await pingConnection(this.#commands);
  }

  listen(callback: (error?: unknown) => void): void {
    this.#start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  async #start(): Promise<void> {
    const reader = this.#connect('reader', { maxRetriesPerRequest: null });
    const commands = this.#connect('commands', { enableAutoPipelining: true });
    this.#reader = reader;
    this.#commands = commands;
    reader.on('close', () => {
      this.#readerId = undefined;
    });
    reader.on('ready', () => this._status$.next('connected'));
    reader.on('reconnecting', () => this._status$.next('reconnecting'));
    reader.on('end', () => this._status$.next('disconnected'));
    try {
      await Promise.all([reader.connect(), commands.connect()]);
      await this.#ensureGroup();
    } catch (error) {
      // quit(), not disconnect(): it leaves no ioredis disconnect timer behind.
      await Promise.all([quit(reader), quit(commands)]);
      this.#reader = this.#commands = undefined;
      throw error;
    }
    if (this.#closing) return;
    this.#log.log(
      `consumer ${this.#consumer} reading ${this.#stream} (group ${this.#group}, at most ${this.#maxInFlight} in flight)`,
    );
    this.#readLoop = this.#runReadLoop(reader);
    this.#scheduleReclaim();
  }

  #connect(
    role: string,
    options: { maxRetriesPerRequest?: null; enableAutoPipelining?: boolean },
  ): Redis {
    const connection = new Redis(this.#url, {
      ...options,
      lazyConnect: true,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      connectionName: connectionName(this.#stream, this.#consumer, role),
    });
    // Without a listener, ioredis reports every failed reconnect as an unhandled error event.
    connection.on('error', (error: unknown) =>
      this.#log.warn(`redis (${role}): ${redisErrorText(error)}`),
    );
    for (const { event, callback } of this.#pendingListeners) connection.on(event, callback);
    return connection;
  }

  /**
   * Creates the group. At first start it begins at the stream's end (`$`): requests written
   * before any instance of the service existed are older than any caller's timeout. When Redis
   * has lost the group (a restart without persistence, a deleted key) it begins at the start
   * (`0`): the stream then holds only requests written since the loss, which callers are still
   * waiting for, and never answered ones from before (answered entries are deleted).
   */
  async #ensureGroup(from: '$' | '0' = '$'): Promise<void> {
    try {
      await this.#commands?.xgroup('CREATE', this.#stream, this.#group, from, 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  async #runReadLoop(reader: Redis): Promise<void> {
    while (!this.#closing) {
      const room = this.#maxInFlight - this.#running;
      if (room <= 0) {
        await this.#wait();
        continue;
      }
      try {
        this.#readerId ??= await reader.client('ID');
        if (this.#closing) break;
        const reply = await reader.xreadgroup(
          'GROUP',
          this.#group,
          this.#consumer,
          'COUNT',
          Math.min(this.#readCount, room),
          'BLOCK',
          this.#blockMs,
          'STREAMS',
          this.#stream,
          '>',
        );
        // What was read is in this consumer's pending list: handle it even when closing, rather
        // than leave it for another instance to find claimIdleMs later.
        for (const [, entries] of reply ?? [])
          for (const entry of entries) this.#accept(entry, false);
      } catch (error) {
        if (this.#closing) break;
        if (isMissingGroup(error)) {
          // Redis lost the group (restart without persistence, FLUSHALL): make it again.
          this.#log.warn(`group ${this.#group} on ${this.#stream} is gone; creating it again`);
          try {
            await this.#ensureGroup('0');
            continue;
          } catch (e) {
            this.#log.warn(`cannot create group: ${redisErrorText(e)}`);
          }
        } else if (error instanceof Error && error.message.startsWith('UNBLOCKED')) {
          // The stream was deleted under the blocked read; the next read finds out the rest.
          continue;
        } else {
          this.#log.warn(`read failed: ${redisErrorText(error)}`);
        }
        await this.#wait(RETRY_PAUSE_MS);
      }
    }
  }

  #scheduleReclaim(): void {
    if (this.#closing) return;
    this.#reclaimTimer = setTimeout(
      () => {
        this.#reclaimTick = this.#reclaim().finally(() => {
          this.#reclaimTick = undefined;
          this.#scheduleReclaim();
        });
      },
      Math.max(1, Math.floor(this.#claimIdleMs / 2)),
    );
  }

  /**
   * Keeps this instance's entries fresh, then takes over entries idle longer than claimIdleMs in
   * any consumer's pending list (their instance is presumed dead). Runs every claimIdleMs/2, so a
   * live instance's entries are never idle for as long as claimIdleMs.
   */
  async #reclaim(): Promise<void> {
    const commands = this.#commands;
    if (!commands) return;
    try {
      if (this.#held.size > 0) {
        // XCLAIM to ourselves with min-idle 0 resets the idle time (JUSTID: no delivery counted).
        await commands.xclaim(
          this.#stream,
          this.#group,
          this.#consumer,
          0,
          ...this.#held,
          'JUSTID',
        );
      }
      await this.#abandonPoison(commands);
      let cursor = '0-0';
      let takenOver = 0;
      do {
        const room = this.#maxInFlight - this.#running;
        if (room <= 0 || this.#closing) break;
        const [next, entries] = (await commands.xautoclaim(
          this.#stream,
          this.#group,
          this.#consumer,
          this.#claimIdleMs,
          cursor,
          'COUNT',
          Math.min(this.#readCount, room),
        )) as [next: string, entries: RawEntry[], deleted?: string[]];
        cursor = next;
        for (const entry of entries) if (this.#accept(entry, true)) takenOver++;
      } while (cursor !== '0-0');
      if (takenOver > 0) {
        this.#log.warn(`took over ${takenOver} requests idle for ${this.#claimIdleMs} ms or more`);
      }
    } catch (error) {
      if (this.#closing) return;
      if (isMissingGroup(error)) return; // the read loop re-creates it
      this.#log.warn(`reclaim failed: ${redisErrorText(error)}`);
    }
  }

  /**
   * Entries idle past claimIdleMs that were already delivered maxDeliveries times: every
   * instance that took them died or stalled on them. Taking them over again would only take
   * the next instance down, so they are claimed here, answered with an error (the caller sees
   * a failed request, as after its own timeout) and acknowledged, never handled. Only the
   * pattern and the entry id are logged: the payload may hold a password or a message body.
   */
  async #abandonPoison(commands: Redis): Promise<void> {
    const pending = (await commands.xpending(
      this.#stream,
      this.#group,
      'IDLE',
      this.#claimIdleMs,
      '-',
      '+',
      this.#readCount,
    )) as [id: string, consumer: string, idleMs: number, deliveries: number][];
    const poisoned = pending
      .filter(([id, , , deliveries]) => deliveries >= this.#maxDeliveries && !this.#held.has(id))
      .map(([id]) => id);
    if (poisoned.length === 0) return;
    const claimed = (await commands.xclaim(
      this.#stream,
      this.#group,
      this.#consumer,
      this.#claimIdleMs,
      ...poisoned,
    )) as RawEntry[];
    for (const [id, fields] of claimed) {
      if (this.#held.has(id)) continue;
      this.#held.add(id);
      const entry = fields === null ? undefined : decodeStreamEntry(fields);
      this.#log.error(
        `abandoned entry ${id} (${entry?.pattern?.slice(0, 100) ?? 'no pattern'}) after ` +
          `${this.#maxDeliveries} deliveries that never completed`,
      );
      this.#enqueue(outgoing(id, entry, { err: 'request abandoned after repeated failures' }));
    }
  }

  /**
   * Starts handling one entry, without waiting for it: handlers run concurrently. Whether it
   * started a handler (not for an entry already held, nor for one whose data is gone).
   */
  #accept(raw: RawEntry, redelivered: boolean): boolean {
    const [id, fields] = raw;
    if (this.#stopped) return false;
    if (this.#held.has(id)) return false; // ours already (a reclaim of our own slow entry)
    this.#held.add(id);
    if (fields === null) {
      // Trimmed from the stream before anyone handled it (Redis < 7 still lists such entries).
      this.#enqueue(outgoing(id, undefined, undefined));
      return false;
    }
    const entry = decodeStreamEntry(fields);
    if (entry.kind === 'malformed') {
      // Only the reason: the entry may hold a password or a message body.
      this.#log.warn(`entry ${id} dropped: ${entry.reason}`);
      this.#enqueue(outgoing(id, entry, { err: 'malformed request' }));
      return false;
    }
    this.#running++;
    void this.#handle(id, entry, redelivered)
      .then((outcome) => this.#enqueue(outgoing(id, entry, outcome)))
      .finally(() => {
        this.#running--;
        this.#wakeAll();
      });
    return true;
  }

  /** Runs the handler (events answer nothing, whatever the outcome). Never rejects. */
  async #handle(
    id: string,
    entry: StreamRequest | StreamEvent,
    redelivered: boolean,
  ): Promise<Outcome> {
    const { pattern, data } = entry;
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      this.#log.warn(`no handler for pattern ${pattern.slice(0, 100)} (entry ${id})`);
      return { err: `no handler for ${pattern.slice(0, 100)}` };
    }
    const context = new RedisStreamsContext([pattern, id, redelivered]);
    try {
      if (entry.kind === 'event') {
        await this.handleEvent(pattern, { pattern, data }, context);
        return undefined;
      }
      const response: unknown = await lastValueFrom(
        this.transformToObservable(await handler(data, context)),
        { defaultValue: undefined },
      );
      return { response };
    } catch (error) {
      // The error's text may quote the payload: log and send its class only.
      const description = describeFailure(error);
      this.#log.warn(`${pattern} (entry ${id}): ${description}`);
      return { err: description };
    }
  }

  #enqueue(outgoing: Outgoing): void {
    this.#outbox.push(outgoing);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate, not a microtask: a group commit settles many handlers in one turn, and
    // their replies then share one pipeline and one XACK.
    setImmediate(() => this.#trackFlush());
  }

  #trackFlush(): void {
    this.#flushScheduled = false;
    const flush = this.#flush();
    this.#flushes.add(flush);
    void flush.finally(() => this.#flushes.delete(flush));
  }

  /**
   * Publishes the replies, then acknowledges and deletes their entries, in one pipeline: Redis
   * runs it in order, so an entry is never acknowledged before its reply is out. If the pipeline
   * fails, the entries stay pending and are handled again elsewhere (at least once).
   */
  async #flush(): Promise<void> {
    const batch = this.#outbox;
    if (batch.length === 0) return;
    this.#outbox = [];
    const ids = batch.map((o) => o.id);
    try {
      const commands = this.#commands;
      if (!commands) throw new Error('not connected');
      const pipeline = commands.pipeline();
      for (const { replyTo, reply } of batch) {
        if (replyTo !== undefined && reply !== undefined) pipeline.publish(replyTo, reply);
      }
      pipeline.xack(this.#stream, this.#group, ...ids);
      pipeline.xdel(this.#stream, ...ids);
      const results = (await pipeline.exec()) ?? [];
      const failed = results.filter(([error]) => error !== null).length;
      if (failed > 0) {
        const [firstError] = results.find(([error]) => error !== null) ?? [];
        this.#log.warn(`${failed} reply/ack commands failed: ${redisErrorText(firstError)}`);
      }
    } catch (error) {
      this.#log.warn(`replies for ${ids.length} entries not sent: ${redisErrorText(error)}`);
    } finally {
      for (const id of ids) this.#held.delete(id);
    }
  }

  /** Resolves on the next wake-up (a handler finished, close() began) or after `ms`. */
  #wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const wakers = this.#wakers;
      function done(): void {
        if (timer) clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    });
  }

  #wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /**
   * Stops reading and reclaiming, lets running handlers finish (at most closeDrainMs), sends
   * their replies, and disconnects. Entries still unfinished stay pending and are taken over by
   * another instance after claimIdleMs.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#reclaimTimer);
    this.#wakeAll();
    const commands = this.#commands;
    const reader = this.#reader;
    if (!commands || !reader) return;
    if (reader.status === 'ready') {
      // Ends the blocking read now instead of after up to blockMs.
      if (this.#readerId !== undefined) {
        commands.client('UNBLOCK', this.#readerId).catch(() => undefined);
      }
      // A read cut off by a lost connection read nothing; ioredis would only send it again.
      const lost = new Promise((resolve) => reader.once('close', resolve));
      const read = Promise.race([this.#readLoop, lost]);
      if (!(await settlesWithin(read, this.#blockMs + STEP_TIMEOUT_MS))) reader.disconnect();
    } else {
      // Redis is away and the read waits for it in the offline queue, where it would stay (see
      // quit()): nothing was read, so there is nothing to wait for.
      await quit(reader);
    }
    await settlesWithin(this.#reclaimTick, STEP_TIMEOUT_MS);

    if (this.#running > 0) {
      this.#log.log(
        `closing: waiting up to ${this.#closeDrainMs} ms for ${this.#running} running handlers`,
      );
    }
    const deadline = Date.now() + this.#closeDrainMs;
    while (this.#running > 0 && Date.now() < deadline) await this.#wait(deadline - Date.now());
    if (this.#running > 0) {
      this.#log.warn(
        `closing with ${this.#running} handlers still running; others will take them over`,
      );
    }
    this.#trackFlush();
    // With Redis away the replies cannot go out; their entries stay pending for other instances.
    const flushed =
      commands.status === 'ready' &&
      (await settlesWithin(Promise.all(this.#flushes), STEP_TIMEOUT_MS));
    if (flushed && commands.status === 'ready') {
      await settlesWithin(this.#forgetConsumer(commands), STEP_TIMEOUT_MS);
    }
    this.#stopped = true;
    await Promise.all([quit(reader), quit(commands)]);
    this._status$.next('disconnected');
  }

  /**
   * Removes this consumer from the group if nothing is pending for it (a consumer with nothing
   * pending is only clutter in XINFO CONSUMERS). DELCONSUMER drops the consumer's pending
   * entries with it, so the pending list is asked, not this instance's bookkeeping: a failed
   * acknowledgement leaves entries there that another instance must still find.
   */
  async #forgetConsumer(commands: Redis): Promise<void> {
    try {
      const pending = await commands.xpending(
        this.#stream,
        this.#group,
        '-',
        '+',
        1,
        this.#consumer,
      );
      if (pending.length === 0) {
        await commands.xgroup('DELCONSUMER', this.#stream, this.#group, this.#consumer);
      }
    } catch {
      // Best effort: a leftover consumer costs a line in XINFO CONSUMERS, nothing more.
    }
  }

  /** Registers a listener for events of both Redis connections (`error`, `ready`, `reconnecting`…). */
  on(event: string, callback: (...args: unknown[]) => void): void {
    this.#pendingListeners.push({ event, callback });
    this.#reader?.on(event, callback);
    this.#commands?.on(event, callback);
  }

  /** `[reader, commands]`: the ioredis connections. */
  unwrap<T>(): T {
    if (!this.#reader || !this.#commands) {
      throw new Error('RedisStreamsServer is not listening; call listen() first');
    }
    return [this.#reader, this.#commands] as T;
  }
}
