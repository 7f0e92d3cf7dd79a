import { type LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';

import { closeConnection, DISCONNECT_TIMEOUT_MS } from './close-connection';
import { reportOutagesOnce } from './outage-reporter';
import { pingConnection } from './ping-connection';

/**
 * The options an owner of a channel (RedisFanout, RedisSessionCommands) takes from its caller:
 * the same four, with defaults of its own only for the connection name.
 */
export interface RedisPubSubOwnerOptions {
  /** `redis://` or `rediss://` URL; the owner opens (and owns) its two connections. */
  readonly url: string;
  /** Prepended to the channel name, so that several deployments can share one Redis. Default `sc:`. */
  readonly prefix?: string;
  /**
   * Base of the connection names shown by CLIENT LIST (`<name>:pub`, `<name>:sub`), so an
   * operator can tell the connections apart. The default is the owner's.
   */
  readonly name?: string;
  /** How long `publish` may wait for Redis before it rejects, in ms. Default 2000. */
  readonly publishTimeoutMs?: number;
}

/** What an owner adds to its caller's options: who it is and what travels on its channel. */
export interface RedisPubSubOwnerDefaults<T> extends Pick<
  RedisPubSubChannelOptions<T>,
  'isMessage' | 'logger' | 'onRestored'
> {
  /** Appended to the prefix to name the channel. */
  readonly channel: string;
  /** The connection name when the caller gives none. */
  readonly name: string;
  /** Who owns the channel, for error messages. */
  readonly owner: string;
}

export interface RedisPubSubChannelOptions<T> {
  /** `redis://` or `rediss://` URL; the channel opens (and owns) its two connections. */
  readonly url: string;
  /** The Redis channel name, prefix included. */
  readonly channel: string;
  /** Base of the connection names shown by CLIENT LIST (`<name>:pub`, `<name>:sub`). */
  readonly connectionName: string;
  /** How long `publish` may wait for Redis before it rejects, in ms (the owner says why). */
  readonly publishTimeoutMs: number;
  /** Structural check of a message off the wire: anything else on the channel is ignored. */
  readonly isMessage: (value: unknown) => value is T;
  /** Where outages (one warning each) and a refused SUBSCRIBE are reported. */
  readonly logger: Pick<LoggerService, 'warn' | 'error'>;
  /**
   * Called each time the subscription is active again after the subscriber connection was
   * lost, never on the first connect, and only once SUBSCRIBE was confirmed: anything
   * published from then on is heard.
   */
  readonly onRestored?: () => void;
  /** Who owns the channel, for error messages (`RedisFanout is closed`). */
  readonly owner?: string;
}

const DEFAULT_PREFIX = 'sc:';
const DEFAULT_PUBLISH_TIMEOUT_MS = 2000;

/**
 * One Redis pub/sub channel carrying JSON messages of type T, at most once: whatever is
 * published while a subscriber is disconnected is lost for it. The mechanism RedisFanout and
 * RedisSessionCommands share; what a lost message means, and what to do once the subscription
 * is back, is theirs to say.
 *
 * Two connections, both opened lazily: a command connection for PUBLISH (only publishers need
 * it) and a subscriber connection (only listeners need it), because a connection in RESP2
 * subscriber mode cannot run other commands and an outage of one should not be confused with
 * the other's. Each reports one warning per outage.
 */
export class RedisPubSubChannel<T> {
  readonly #options: RedisPubSubChannelOptions<T>;
  readonly #owner: string;
  readonly #publisher: Redis;
  #subscriber: Redis | undefined;
  readonly #listeners = new Set<(message: T) => void>();
  /** Settles once the subscription is first active (or rejects on close before that). */
  #ready: Promise<void> | undefined;
  #resolveReady: (() => void) | undefined;
  #rejectReady: ((error: Error) => void) | undefined;
  /** Bumped on every subscriber `ready`: only the newest connection's SUBSCRIBE counts. */
  #epoch = 0;
  /** How many connections have had an active subscription; all but the first are reconnects. */
  #activations = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: RedisPubSubChannelOptions<T>) {
    this.#options = options;
    this.#owner = options.owner ?? 'RedisPubSubChannel';
    this.#publisher = new Redis(options.url, {
      lazyConnect: true,
      connectionName: `${options.connectionName}:pub`,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      commandTimeout: options.publishTimeoutMs,
    });
    this.#watchErrors(this.#publisher, 'publisher');
  }

  /** An owner's channel, `${prefix}${defaults.channel}`, with the defaults every owner shares. */
  static forOwner<T>(
    options: RedisPubSubOwnerOptions,
    defaults: RedisPubSubOwnerDefaults<T>,
  ): RedisPubSubChannel<T> {
    const { channel, name, ...owned } = defaults;
    return new RedisPubSubChannel({
      ...owned,
      url: options.url,
      channel: `${options.prefix ?? DEFAULT_PREFIX}${channel}`,
      connectionName: options.name ?? name,
      publishTimeoutMs: options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    });
  }

  /** The channel every message travels on. */
  get channel(): string {
    return this.#options.channel;
  }

  /**
   * Resolves once the subscription is active, i.e. once messages published from then on reach
   * the listeners. Same promise as `connect()`.
   */
  get ready(): Promise<void> {
    return this.connect();
  }

  /** Readiness (/readyz): the subscriber (once opened) up, and Redis answers PING. */
  async ping(): Promise<void> {
    if (this.#subscriber && this.#subscriber.status !== 'ready') {
      throw new Error(`subscriber connection ${this.#subscriber.status}`);
    }
    await pingConnection(this.#publisher);
  }

  /**
   * Opens the subscriber connection and subscribes (idempotent; `subscribe` calls it too).
   * Keeps retrying while Redis is unreachable; rejects only if `close()` comes first.
   */
  connect(): Promise<void> {
    if (this.#ready) return this.#ready;
    if (this.#closed) return Promise.reject(new Error(`${this.#owner} is closed`));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Internal callers (subscribe) do not await it; a caller that does still sees a rejection.
    this.#ready.catch(() => undefined);
    const subscriber = new Redis(this.#options.url, {
      connectionName: `${this.#options.connectionName}:sub`,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      // Re-subscribing is done here, on every `ready`, so that we know when it took effect.
      autoResubscribe: false,
      // No command waits on this connection except SUBSCRIBE, which is re-sent per connection.
      maxRetriesPerRequest: null,
    });
    this.#subscriber = subscriber;
    this.#watchErrors(subscriber, 'subscriber');
    subscriber.on('ready', () => this.#subscribeOn(subscriber));
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#options.channel) this.#dispatch(message);
    });
    return this.#ready;
  }

  async publish(message: T): Promise<void> {
    if (this.#closed) throw new Error(`${this.#owner} is closed`);
    await this.#publisher.publish(this.#options.channel, JSON.stringify(message));
  }

  /**
   * Registers a listener and, on the first one, subscribes. Removing the last listener keeps
   * the subscription: it costs one idle connection, and keeps `ready` meaningful. A listener
   * that throws does not keep the others from hearing the message.
   */
  subscribe(listener: (message: T) => void): () => void {
    this.#listeners.add(listener);
    void this.connect();
    return () => this.#listeners.delete(listener);
  }

  /**
   * Disconnects both connections and resolves once their sockets are closed. Pending
   * publishes are flushed first (QUIT). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.#rejectReady?.(new Error(`${this.#owner} closed before its subscription was active`));
    await Promise.all([
      closeConnection(this.#publisher, true),
      this.#subscriber ? closeConnection(this.#subscriber, false) : Promise.resolve(),
    ]);
  }

  #subscribeOn(subscriber: Redis): void {
    const epoch = ++this.#epoch;
    subscriber.subscribe(this.#options.channel).then(
      () => {
        // A SUBSCRIBE re-sent from an older connection resolves late; the newest one reports.
        if (epoch !== this.#epoch || this.#closed) return;
        if (this.#activations++ === 0) {
          this.#resolveReady?.();
          return;
        }
        try {
          this.#options.onRestored?.();
        } catch (error) {
          // Thrown inside a promise callback it would be an unhandled rejection: say it instead.
          this.#options.logger.error(`onRestored failed: ${(error as Error).message}`);
        }
      },
      (error: Error) => {
        // Usually the connection dropped again before SUBSCRIBE was answered, and the next
        // `ready` retries. Refused on a live connection (an ACL, say) it needs an operator.
        if (subscriber.status === 'ready' && !this.#closed) {
          this.#options.logger.error(`SUBSCRIBE refused by Redis: ${error.message}`);
        }
      },
    );
  }

  #dispatch(raw: string): void {
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return; // Not ours, or corrupted: at most once already means it may never arrive.
    }
    if (!this.#options.isMessage(message)) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(message);
      } catch {
        // One failing listener must not keep the others from hearing the message.
      }
    }
  }

  /** One warning per outage, none once closed (see reportOutagesOnce). */
  #watchErrors(client: Redis, role: string): void {
    reportOutagesOnce(client, this.#options.logger, `${role} connection`, () => this.#closed);
  }
}
