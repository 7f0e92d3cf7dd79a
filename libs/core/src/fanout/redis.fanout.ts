import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';

import { type FanoutEvent, type StoredMessage } from '../contracts/relay.contracts';
import { type RedisEndpoint, redisProvider } from '../redis/redis-provider';
import { RedisPubSubChannel, type RedisPubSubOwnerOptions } from '../redis/redis-pubsub-channel';
import { FanoutPort } from './fanout.port';

/** Nest token for RedisFanoutOptions, for `{ provide: FanoutPort, useClass: RedisFanout }`. */
export const REDIS_FANOUT_OPTIONS = Symbol('RedisFanoutOptions');

/**
 * `name` defaults to `securechat-fanout`. `publishTimeoutMs` (default 2000) bounds how long
 * `publish` may wait for Redis before it rejects: the relay awaits the publish before it acks
 * a `send`; while Redis is down the message is stored and pending anyway, so failing fast is
 * better than holding every ack for minutes.
 */
export type RedisFanoutOptions = RedisPubSubOwnerOptions;

/** Most events in one PUBLISH: a burst goes as several messages, each small to parse. */
export const MAX_EVENTS_PER_PUBLISH = 256;

/**
 * Fan-out over Redis pub/sub, for the distributed mode: the relay publishes each stored
 * message once on `${prefix}fanout`, every gateway hears every event and delivers to the
 * recipients it holds sessions for. Events published in the same event-loop turn (a group
 * commit stores many at once) travel as one PUBLISH of a JSON array, in publish order: one
 * Redis command and one parse per gateway per batch, not per message. A single event object
 * (what earlier versions published) is still understood.
 *
 * Pub/sub is at most once (FanoutPort): whatever is published while a subscriber is
 * disconnected is lost for it. `onReconnect` tells the gateway when its subscription is back,
 * so it can resend its sessions' pending messages from the database; a message can then
 * arrive twice (live and resent), which PROTOCOL.md §6 delivery tolerates (clients dedupe by
 * msg_id).
 *
 * Two connections, both opened lazily: a command connection for PUBLISH (only the relay
 * needs it) and a subscriber connection (only gateways need it), because a connection in
 * RESP2 subscriber mode cannot run other commands and an outage of one should not be
 * confused with the other's.
 */
@Injectable()
export class RedisFanout extends FanoutPort implements OnApplicationShutdown {
  readonly #logger = new Logger('RedisFanout');
  readonly #channel: RedisPubSubChannel<FanoutEvent | FanoutEvent[]>;
  readonly #reconnectListeners = new Set<() => void>();
  /** Events of this turn waiting for their PUBLISH (see `publish`). */
  #batch: PublishBatch | undefined;

  constructor(@Inject(REDIS_FANOUT_OPTIONS) options: RedisFanoutOptions) {
    super();
    this.#channel = RedisPubSubChannel.forOwner(options, {
      channel: 'fanout',
      name: 'securechat-fanout',
      owner: 'RedisFanout',
      isMessage: (value): value is FanoutEvent | FanoutEvent[] =>
        Array.isArray(value) ? value.every(isFanoutEvent) : isFanoutEvent(value),
      logger: this.#logger,
      onRestored: () => this.#restored(),
    });
  }

  /**
   * `{ provide: FanoutPort, … }` for a Nest module. `subscribed` (a gateway): resolved only once
   * SUBSCRIBE is confirmed, so the gateway is subscribed before it accepts anyone — a delivery
   * published earlier than the first SUBSCRIBE would otherwise wait for the recipient's next
   * login. Without it (the relay, which only publishes) no subscriber connection is opened.
   */
  static provider(redis: RedisEndpoint, { subscribed = false } = {}): Provider {
    return redisProvider(FanoutPort, () => new RedisFanout(redis), { connect: subscribed });
  }

  /** Readiness (/readyz): the subscriber (once opened) up, and Redis answers PING. */
  ping(): Promise<void> {
    return this.#channel.ping();
  }

  /** The channel every event travels on. */
  get channel(): string {
    return this.#channel.channel;
  }

  /**
   * Resolves once the subscription is active, i.e. once events published from then on reach
   * this instance's listeners. Same promise as `connect()`.
   */
  get ready(): Promise<void> {
    return this.#channel.ready;
  }

  /**
   * Opens the subscriber connection and subscribes (idempotent; `subscribe` calls it too).
   * Keeps retrying while Redis is unreachable; rejects only if `close()` comes first.
   */
  connect(): Promise<void> {
    return this.#channel.connect();
  }

  /**
   * Resolves once the PUBLISH carrying `event` was accepted by Redis. Events are gathered until
   * the end of the event-loop turn (or MAX_EVENTS_PER_PUBLISH), then sent in publish order:
   * one connection, so PUBLISHes, and the events in them, keep the storage order (docs/PROTOCOL.md
   * §7.4).
   */
  override publish(event: FanoutEvent): Promise<void> {
    let batch = this.#batch;
    if (!batch) {
      let start!: () => void;
      const events: FanoutEvent[] = [];
      const gate = new Promise<void>((resolve) => (start = resolve));
      const opened: PublishBatch = {
        events,
        start,
        published: gate.then(() => this.#channel.publish(events)),
      };
      this.#batch = batch = opened;
      setImmediate(() => this.#seal(opened));
    }
    batch.events.push(event);
    if (batch.events.length >= MAX_EVENTS_PER_PUBLISH) this.#seal(batch);
    return batch.published;
  }

  /** No more events join `batch`; its PUBLISH goes (after any sealed before it). */
  #seal(batch: PublishBatch): void {
    if (this.#batch === batch) this.#batch = undefined;
    batch.start();
  }

  /**
   * Registers a listener and, on the first one, subscribes. Removing the last listener keeps
   * the subscription: it costs one idle connection, and keeps `ready` meaningful. Junk on the
   * channel is dropped and a throwing listener does not stop the others, as in InProcessFanout:
   * the message stays pending for its recipients either way.
   */
  override subscribe(listener: (event: FanoutEvent) => void): () => void {
    return this.#channel.subscribe((message) => {
      if (!Array.isArray(message)) {
        listener(message);
        return;
      }
      for (const event of message) {
        try {
          listener(event);
        } catch {
          // One failing event must not keep the rest of the batch from the listener.
        }
      }
    });
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
    this.#reconnectListeners.clear();
    return this.#channel.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  #restored(): void {
    this.#logger.warn('subscription restored after a lost connection');
    for (const listener of [...this.#reconnectListeners]) {
      try {
        listener();
      } catch {
        // One failing listener must not keep the others from resending.
      }
    }
  }
}

/** Events gathered for one PUBLISH; `start` lets it go. */
interface PublishBatch {
  readonly events: FanoutEvent[];
  readonly start: () => void;
  readonly published: Promise<void>;
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
