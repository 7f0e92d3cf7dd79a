import { randomBytes } from 'node:crypto';

import { type FactoryProvider, type InjectionToken, Logger } from '@nestjs/common';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { Redis } from 'ioredis';
import { DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { pingConnection } from '../redis/ping-connection';
import { type RedisEndpoint, redisProvider } from '../redis/redis-provider';
import { connectionName, quit } from './redis-connection.util';
import { decodeStreamReply, encodeStreamEntry } from './redis-stream-entry.codec';

/** Constructor options of {@link RedisStreamsClient}. */
export interface RedisStreamsClientOptions {
  /** Redis URL (`redis://`, `rediss://`, credentials and database index included). */
  url: string;
  /** Key and channel prefix; must match the servers'. Default `sc:`. */
  prefix?: string;
}

const DEFAULT_PREFIX = 'sc:';
/**
 * Upper bound on a request stream's length. Servers delete entries once answered, so only
 * requests nobody reads (no instance of the service running) accumulate; past this many the
 * oldest go, and they are long past any caller's timeout by then.
 */
const STREAM_MAX_LEN = '100000';
/** The service is the pattern's first segment (`relay.send` → `relay`). */
const SERVICE = /^([A-Za-z][\w-]*)\./;

/**
 * A fresh error with the message only: ioredis errors carry the failed command's arguments
 * (`error.command.args`, the payload) and whatever prints a cause chain would print them.
 */
function transportError(what: string, error: unknown): Error {
  return new Error(`${what}: ${error instanceof Error ? error.message : typeof error}`);
}

/**
 * Nest client proxy for the distributed deployment: `send('relay.send', …)` appends the request
 * to the `${prefix}req:relay` stream, where exactly one RedisStreamsServer instance of the relay
 * picks it up, and waits for the reply on this client's own pub/sub channel. One client serves
 * every service; the pattern's first segment picks the stream.
 *
 * There is no timeout here: callers bound the wait (`request()` in service-client.ts). If the
 * reply channel's connection drops, replies published meanwhile are lost, so every request then
 * waiting fails at once instead of running into its timeout.
 */
export class RedisStreamsClient extends ClientProxy {
  readonly #log = new Logger(RedisStreamsClient.name);
  readonly #url: string;
  readonly #prefix: string;
  readonly #clientId = randomBytes(8).toString('hex');
  readonly #replyChannel: string;
  /** Callbacks of requests waiting for their reply, by request id. */
  readonly #pending = new Map<string, (packet: WritePacket) => void>();
  #nextRequestId = 0;

  #commands: Redis | undefined;
  #subscriber: Redis | undefined;
  #connection: Promise<void> | undefined;

  constructor(options: RedisStreamsClientOptions) {
    super();
    this.#url = options.url;
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#replyChannel = `${this.#prefix}reply:${this.#clientId}`;
  }

  /**
   * `{ provide: token, … }` for a Nest module: a client already connected, its reply channel
   * subscribed, before anything that injects it can send.
   */
  static provider(
    token: InjectionToken,
    redis: RedisEndpoint,
  ): FactoryProvider<RedisStreamsClient> {
    return redisProvider(token, () => new RedisStreamsClient(redis), { connect: true });
  }

  /** Readiness (/readyz): the reply channel's connection up, and Redis answers PING. */
  async ping(): Promise<void> {
    if (this.#subscriber && this.#subscriber.status !== 'ready') {
      throw new Error(`reply connection ${this.#subscriber.status}`);
    }
    await pingConnection(this.#commands);
  }

  /** Opens both connections and subscribes to the reply channel; later calls share the first. */
  connect(): Promise<void> {
    this.#connection ??= this.#open().catch((error: unknown) => {
      this.#teardown();
      this.#connection = undefined;
      throw error;
    });
    return this.#connection;
  }

  async #open(): Promise<void> {
    // Auto-pipelining: the XADDs of concurrent requests leave in one write.
    const commands = this.#connect('commands', { enableAutoPipelining: true });
    // ioredis subscribes again by itself after a reconnect (autoResubscribe, on by default).
    const subscriber = this.#connect('replies', { autoResubscribe: true });
    this.#commands = commands;
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => this.#onReply(channel, message));
    subscriber.on('close', () => {
      // Only the live connection's loss matters: close() handles its own, already replaced ones.
      if (this.#subscriber === subscriber) this.#failPending('reply channel connection lost');
    });
    commands.on('ready', () => this._status$.next('connected'));
    commands.on('reconnecting', () => this._status$.next('reconnecting'));
    commands.on('end', () => this._status$.next('disconnected'));
    await Promise.all([commands.connect(), subscriber.connect()]);
    await subscriber.subscribe(this.#replyChannel);
  }

  #connect(
    role: string,
    options: { enableAutoPipelining?: boolean; autoResubscribe?: boolean },
  ): Redis {
    const connection = new Redis(this.#url, {
      ...options,
      lazyConnect: true,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      connectionName: connectionName(`${this.#prefix}client`, this.#clientId, role),
    });
    // Without a listener, ioredis reports every failed reconnect as an unhandled error event.
    connection.on('error', (error: unknown) =>
      this.#log.warn(`redis (${role}): ${error instanceof Error ? error.message : typeof error}`),
    );
    return connection;
  }

  #onReply(channel: string, message: string): void {
    if (channel !== this.#replyChannel) return;
    const reply = decodeStreamReply(message);
    if (reply === undefined) {
      this.#log.warn('malformed reply ignored');
      return;
    }
    const callback = this.#pending.get(reply.requestId);
    if (!callback) return; // timed out, or a second reply after a redelivery
    this.#pending.delete(reply.requestId);
    if ('err' in reply) {
      callback({ err: new Error(`service error: ${reply.err}`), isDisposed: true });
    } else {
      callback({ response: reply.response, isDisposed: true });
    }
  }

  #failPending(reason: string): void {
    if (this.#pending.size === 0) return;
    const callbacks = [...this.#pending.values()];
    this.#pending.clear();
    for (const callback of callbacks) callback({ err: new Error(reason), isDisposed: true });
  }

  #streamFor(pattern: string): string {
    const service = SERVICE.exec(pattern)?.[1];
    if (service === undefined)
      throw new Error('pattern names no service (expected service.operation)');
    return `${this.#prefix}req:${service}`;
  }

  protected publish(
    packet: ReadPacket<unknown>,
    callback: (packet: WritePacket) => void,
  ): () => void {
    const requestId = (this.#nextRequestId++).toString(36);
    try {
      const commands = this.#commands;
      if (!commands) throw new Error('not connected');
      const pattern = this.normalizePattern(packet.pattern as string);
      const stream = this.#streamFor(pattern);
      const fields = encodeStreamEntry({
        kind: 'request',
        pattern,
        data: packet.data,
        replyTo: this.#replyChannel,
        requestId,
      });
      this.#pending.set(requestId, callback);
      commands
        .xadd(stream, 'MAXLEN', '~', STREAM_MAX_LEN, '*', ...fields)
        .catch((error: unknown) => {
          if (!this.#pending.delete(requestId)) return;
          callback({ err: transportError('request not queued', error), isDisposed: true });
        });
    } catch (error) {
      this.#pending.delete(requestId);
      callback({ err: error, isDisposed: true });
    }
    return () => {
      this.#pending.delete(requestId);
    };
  }

  /** Fire and forget: the entry has no reply channel, and the server answers nothing. */
  protected async dispatchEvent<T = unknown>(packet: ReadPacket<unknown>): Promise<T> {
    const commands = this.#commands;
    if (!commands) throw new Error('not connected');
    const pattern = this.normalizePattern(packet.pattern as string);
    const fields = encodeStreamEntry({ kind: 'event', pattern, data: packet.data });
    try {
      await commands.xadd(this.#streamFor(pattern), 'MAXLEN', '~', STREAM_MAX_LEN, '*', ...fields);
    } catch (error) {
      throw transportError('event not queued', error);
    }
    return undefined as T;
  }

  /** Fails what is still waiting and disconnects. connect() may be called again afterwards. */
  async close(): Promise<void> {
    const { commands, subscriber } = { commands: this.#commands, subscriber: this.#subscriber };
    this.#connection = undefined;
    this.#commands = this.#subscriber = undefined;
    this.#failPending('client closed');
    await Promise.all([commands && quit(commands), subscriber && quit(subscriber)]);
  }

  #teardown(): void {
    this.#commands?.disconnect();
    this.#subscriber?.disconnect();
    this.#commands = this.#subscriber = undefined;
  }

  /** `[commands, subscriber]`: the ioredis connections. */
  unwrap<T>(): T {
    if (!this.#commands || !this.#subscriber) {
      throw new Error('RedisStreamsClient is not connected; call connect() first');
    }
    return [this.#commands, this.#subscriber] as T;
  }
}
