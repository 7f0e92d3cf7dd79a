import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';

import { type RedisEndpoint, redisProvider } from '../redis/redis-provider';
import { RedisPubSubChannel, type RedisPubSubOwnerOptions } from '../redis/redis-pubsub-channel';
import { isSessionCommand, type SessionCommand, SessionCommandPort } from './session-command.port';

/** Nest token for RedisSessionCommandsOptions. */
export const REDIS_SESSION_COMMANDS_OPTIONS = Symbol('RedisSessionCommandsOptions');

/**
 * `name` defaults to `securechat-session-control`. `publishTimeoutMs` (default 2000) bounds
 * how long `publish` may wait for Redis before it rejects: an operator asking to close a
 * session during an outage gets an error, not a hanging request.
 */
export type RedisSessionCommandsOptions = RedisPubSubOwnerOptions;

/**
 * SessionCommandPort over Redis pub/sub on `${prefix}session-control`, for the distributed
 * mode: the admin API publishes, every gateway subscribes and closes what it holds.
 *
 * Same mechanism as RedisFanout (RedisPubSubChannel): two lazily opened connections, one to
 * PUBLISH (only auth needs it) and one in subscriber mode (only gateways need it), each
 * reporting one warning per outage. Commands published while a gateway's subscriber is
 * disconnected are lost for it (SessionCommandPort is at most once); nothing is replayed after
 * a reconnect, because a stale order to close could hit a session the user opened afterwards.
 */
@Injectable()
export class RedisSessionCommands extends SessionCommandPort implements OnApplicationShutdown {
  readonly #logger = new Logger('SessionControl');
  readonly #channel: RedisPubSubChannel<SessionCommand>;

  constructor(@Inject(REDIS_SESSION_COMMANDS_OPTIONS) options: RedisSessionCommandsOptions) {
    super();
    this.#channel = RedisPubSubChannel.forOwner(options, {
      channel: 'session-control',
      name: 'securechat-session-control',
      owner: 'RedisSessionCommands',
      isMessage: isSessionCommand,
      logger: this.#logger,
      // Deliberately no replay (see above): the operator sees the session still listed.
      onRestored: () =>
        this.#logger.warn('subscription restored; commands sent meanwhile were missed'),
    });
  }

  /**
   * `{ provide: SessionCommandPort, … }` for a Nest module. `subscribed` (a gateway): resolved
   * only once SUBSCRIBE is confirmed, so an operator's order to close cannot miss a session
   * that logged in a moment after the gateway started. Without it (auth, which only publishes)
   * no subscriber connection is opened.
   */
  static provider(redis: RedisEndpoint, { subscribed = false } = {}): Provider {
    return redisProvider(SessionCommandPort, () => new RedisSessionCommands(redis), {
      connect: subscribed,
    });
  }

  /**
   * Readiness (/readyz), as RedisFanout's: the subscriber (once opened) up, and Redis answers
   * PING. Auth's readiness thus covers the connection its admin API publishes on, a gateway's
   * the subscription operators' orders arrive on (its first check opens the publish
   * connection, as RedisFanout's does).
   */
  ping(): Promise<void> {
    return this.#channel.ping();
  }

  /** The channel every command travels on. */
  get channel(): string {
    return this.#channel.channel;
  }

  /**
   * Opens the subscriber connection and subscribes (idempotent; `subscribe` calls it too).
   * Resolves once commands published from then on reach this instance's listeners; keeps
   * retrying while Redis is unreachable and rejects only if `close()` comes first.
   */
  connect(): Promise<void> {
    return this.#channel.connect();
  }

  override publish(command: SessionCommand): Promise<void> {
    return this.#channel.publish(command);
  }

  /**
   * Registers a listener and subscribes. Junk on the channel is dropped, and a throwing
   * listener does not keep the others from closing their sessions.
   */
  override subscribe(listener: (command: SessionCommand) => void): () => void {
    return this.#channel.subscribe(listener);
  }

  /** Disconnects both connections; resolves once their sockets are closed. Idempotent. */
  close(): Promise<void> {
    return this.#channel.close();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
