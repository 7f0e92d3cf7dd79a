import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Redis } from 'ioredis';

import { type FanoutEvent, type StoredMessage } from '../contracts/relay.contracts';
import { closeConnection, DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { reportOutagesOnce } from '../redis/outage-reporter';
import { pingConnection } from '../redis/ping-connection';
import { FanoutPort } from './fanout.port';

/** Nest token for RedisFanoutOptions, for `{ provide: FanoutPort, useClass: RedisFanout }`. */
export const REDIS_FANOUT_OPTIONS = Symbol('RedisFanoutOptions');

export interface RedisFanoutOptions {
  /** `redis://` or `rediss://` URL; RedisFanout opens (and owns) its two connections. */
  readonly url: string;
  /** Prepended to the channel name, so that several deployments can share one Redis. Default `sc:`. */
  readonly prefix?: string;
  /**
   * Base of the connection names shown by CLIENT LIST (`<name>:pub`, `<name>:sub`), so an
   * operator can tell the connections apart. Default `securechat-fanout`.
   */
  readonly name?: string;
  /**
   * How long `publish` may wait for Redis before it rejects, in ms. Default 2000. The relay
   * awaits the publish before it acks a `send`; while Redis is down the message is stored
   * and pending anyway, so failing fast is better than holding every ack for minutes.
   */
  readonly publishTimeoutMs?: number;
}

const DEFAULT_PREFIX = 'sc:';
const DEFAULT_NAME = 'securechat-fanout';
const DEFAULT_PUBLISH_TIMEOUT_MS = 2000;

/**
 * Fan-out over Redis pub/sub, for the distributed mode: the relay publishes each stored
 * message once on `${prefix}fanout`, every gateway hears every event and delivers to the
 * recipients it holds sessions for.
 *
 * Pub/sub is at most once (FanoutPort): whatever is published while a subscriber is
 * disconnected is lost for it. `onReconnect` tells the gateway when its subscription is back,
 * so it can resend its sessions' pending messages from the database; a message can then
 * arrive twice (live and resent), which §6 delivery tolerates (clients dedupe by msg_id).
 *
 * Two connections, both opened lazily: a command connection for PUBLISH (only the relay
 * needs it) and a subscriber connection (only gateways need it), because a connection in
 * RESP2 subscriber mode cannot run other commands and an outage of one should not be
 * confused with the other's.
 */
@Injectable()
export class RedisFanout extends FanoutPort implements OnApplicationShutdown {
  readonly #logger = new Logger('RedisFanout');
  readonly #channel: string;
  readonly #publisher: Redis;
  readonly #subscriberOptions: { url: string; name: string };
  #subscriber: Redis | undefined;
  readonly #listeners = new Set<(event: FanoutEvent) => void>();
  readonly #reconnectListeners = new Set<() => void>();
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

  constructor(@Inject(REDIS_FANOUT_OPTIONS) options: RedisFanoutOptions) {
    super();
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    const name = options.name ?? DEFAULT_NAME;
    this.#channel = `${prefix}fanout`;
    this.#subscriberOptions = { url: options.url, name };
    this.#publisher = new Redis(options.url, {
      lazyConnect: true,
      connectionName: `${name}:pub`,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      commandTimeout: options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    });
    this.#watchErrors(this.#publisher, 'publisher');
  }

  /** `{ provide: FanoutPort, … }` for a Nest module, constructed from a URL and prefix. */
  static provider(url: string, prefix?: string): Provider {
    return {
      provide: FanoutPort,
      useFactory: () => new RedisFanout({ url, ...(prefix === undefined ? {} : { prefix }) }),
    };
  }

  /** Readiness (/readyz): the subscriber (once opened) up, and Redis answers PING. */
  async ping(): Promise<void> {
    if (this.#subscriber && this.#subscriber.status !== 'ready') {
      throw new Error(`subscriber connection ${this.#subscriber.status}`);
    }
    await pingConnection(this.#publisher);
  }

  /** The channel every event travels on. */
  get channel(): string {
    return this.#channel;
  }

  /**
   * Resolves once the subscription is active, i.e. once events published from then on reach
   * this instance's listeners. Same promise as `connect()`.
   */
  get ready(): Promise<void> {
    return this.connect();
  }

  /**
   * Opens the subscriber connection and subscribes (idempotent; `subscribe` calls it too).
   * Keeps retrying while Redis is unreachable; rejects only if `close()` comes first.
   */
  connect(): Promise<void> {
    if (this.#ready) return this.#ready;
    if (this.#closed) return Promise.reject(new Error('RedisFanout is closed'));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Internal callers (subscribe) do not await it; a caller that does still sees a rejection.
    this.#ready.catch(() => undefined);
    const subscriber = new Redis(this.#subscriberOptions.url, {
      connectionName: `${this.#subscriberOptions.name}:sub`,
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
      if (channel === this.#channel) this.#dispatch(message);
    });
    return this.#ready;
  }

  override async publish(event: FanoutEvent): Promise<void> {
    if (this.#closed) throw new Error('RedisFanout is closed');
    await this.#publisher.publish(this.#channel, JSON.stringify(event));
  }

  /**
   * Registers a listener and, on the first one, subscribes. Removing the last listener keeps
   * the subscription: it costs one idle connection, and keeps `ready` meaningful.
   */
  override subscribe(listener: (event: FanoutEvent) => void): () => void {
    this.#listeners.add(listener);
    void this.connect();
    return () => this.#listeners.delete(listener);
  }

  /**
   * `listener` is called each time the subscription is active again after the subscriber
   * connection was lost, never on the first connect. It runs after SUBSCRIBE was confirmed,
   * so anything published from then on is heard: a resend the listener starts then cannot
   * miss a message.
   */
  override onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /**
   * Disconnects both connections and resolves once their sockets are closed. Pending
   * publishes are flushed first (QUIT). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    this.#reconnectListeners.clear();
    this.#rejectReady?.(new Error('RedisFanout closed before its subscription was active'));
    await Promise.all([
      closeConnection(this.#publisher, true),
      this.#subscriber ? closeConnection(this.#subscriber, false) : Promise.resolve(),
    ]);
  }

  #subscribeOn(subscriber: Redis): void {
    const epoch = ++this.#epoch;
    subscriber.subscribe(this.#channel).then(
      () => {
        // A SUBSCRIBE re-sent from an older connection resolves late; the newest one reports.
        if (epoch !== this.#epoch || this.#closed) return;
        if (this.#activations++ === 0) {
          this.#resolveReady?.();
          return;
        }
        this.#logger.warn('subscription restored after a lost connection');
        for (const listener of [...this.#reconnectListeners]) {
          try {
            listener();
          } catch {
            // One failing listener must not keep the others from resending.
          }
        }
      },
      (error: Error) => {
        // Usually the connection dropped again before SUBSCRIBE was answered, and the next
        // `ready` retries. Refused on a live connection (an ACL, say) it needs an operator.
        if (subscriber.status === 'ready' && !this.#closed) {
          this.#logger.error(`SUBSCRIBE refused by Redis: ${error.message}`);
        }
      },
    );
  }

  #dispatch(message: string): void {
    let event: unknown;
    try {
      event = JSON.parse(message);
    } catch {
      return; // Not ours, or corrupted: the pending list covers the recipients anyway.
    }
    if (!isFanoutEvent(event)) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // Same isolation as InProcessFanout: the message stays pending for its recipients.
      }
    }
  }

  /** One warning per outage, none once closed (see reportOutagesOnce). */
  #watchErrors(client: Redis, role: string): void {
    reportOutagesOnce(client, this.#logger, `${role} connection`, () => this.#closed);
  }
}

const MESSAGE_STRINGS = ['msg_id', 'id', 'from', 'to', 'body', 'sig'] as const;
const MESSAGE_NUMBERS = ['ts', 'server_ts'] as const;

/** Structural check of an event off the wire: anything else on the channel is ignored. */
function isFanoutEvent(value: unknown): value is FanoutEvent {
  if (typeof value !== 'object' || value === null) return false;
  const { recipients, message } = value as Record<string, unknown>;
  if (!Array.isArray(recipients) || !recipients.every((r) => typeof r === 'string')) return false;
  if (typeof message !== 'object' || message === null) return false;
  const m = message as Record<keyof StoredMessage, unknown>;
  return (
    MESSAGE_STRINGS.every((k) => typeof m[k] === 'string') &&
    MESSAGE_NUMBERS.every((k) => typeof m[k] === 'number' && Number.isFinite(m[k]))
  );
}
