import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Redis } from 'ioredis';

import { closeConnection, DISCONNECT_TIMEOUT_MS } from '../redis/close-connection';
import { reportOutagesOnce } from '../redis/outage-reporter';
import { isSessionCommand, type SessionCommand, SessionCommandPort } from './session-command.port';

/** Nest token for RedisSessionCommandsOptions. */
export const REDIS_SESSION_COMMANDS_OPTIONS = Symbol('RedisSessionCommandsOptions');

export interface RedisSessionCommandsOptions {
  /** `redis://` or `rediss://` URL; the instance opens (and owns) its connections. */
  readonly url: string;
  /** Prepended to the channel name, so that deployments can share one Redis. Default `sc:`. */
  readonly prefix?: string;
  /** Base of the connection names shown by CLIENT LIST. Default `securechat-session-control`. */
  readonly name?: string;
  /**
   * How long `publish` may wait for Redis before it rejects, in ms. Default 2000: an operator
   * asking to close a session during an outage gets an error, not a hanging request.
   */
  readonly publishTimeoutMs?: number;
}

const DEFAULT_PREFIX = 'sc:';
const DEFAULT_NAME = 'securechat-session-control';
const DEFAULT_PUBLISH_TIMEOUT_MS = 2000;

/**
 * SessionCommandPort over Redis pub/sub on `${prefix}session-control`, for the distributed
 * mode: the admin API publishes, every gateway subscribes and closes what it holds.
 *
 * Same shape as RedisFanout: two lazily opened connections, one to PUBLISH (only auth needs
 * it) and one in subscriber mode (only gateways need it), each reporting one warning per
 * outage. Commands published while a gateway's subscriber is disconnected are lost for it
 * (SessionCommandPort is at most once); nothing is replayed after a reconnect, because a
 * stale order to close could hit a session the user opened afterwards.
 */
@Injectable()
export class RedisSessionCommands extends SessionCommandPort implements OnApplicationShutdown {
  readonly #logger = new Logger('SessionControl');
  readonly #channel: string;
  readonly #url: string;
  readonly #name: string;
  readonly #publisher: Redis;
  #subscriber: Redis | undefined;
  readonly #listeners = new Set<(command: SessionCommand) => void>();
  #ready: Promise<void> | undefined;
  #resolveReady: (() => void) | undefined;
  #rejectReady: ((error: Error) => void) | undefined;
  /** Bumped on every subscriber `ready`: only the newest connection's SUBSCRIBE counts. */
  #epoch = 0;
  #activations = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(@Inject(REDIS_SESSION_COMMANDS_OPTIONS) options: RedisSessionCommandsOptions) {
    super();
    this.#channel = `${options.prefix ?? DEFAULT_PREFIX}session-control`;
    this.#url = options.url;
    this.#name = options.name ?? DEFAULT_NAME;
    this.#publisher = new Redis(options.url, {
      lazyConnect: true,
      connectionName: `${this.#name}:pub`,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      commandTimeout: options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    });
    this.#watchErrors(this.#publisher, 'publisher');
  }

  /** `{ provide: SessionCommandPort, … }` for a process that only publishes (auth). */
  static provider(url: string, prefix?: string): Provider {
    return {
      provide: SessionCommandPort,
      useFactory: () =>
        new RedisSessionCommands({ url, ...(prefix === undefined ? {} : { prefix }) }),
    };
  }

  /** The channel every command travels on. */
  get channel(): string {
    return this.#channel;
  }

  /**
   * Opens the subscriber connection and subscribes (idempotent; `subscribe` calls it too).
   * Resolves once commands published from then on reach this instance's listeners; keeps
   * retrying while Redis is unreachable and rejects only if `close()` comes first.
   */
  connect(): Promise<void> {
    if (this.#ready) return this.#ready;
    if (this.#closed) return Promise.reject(new Error('RedisSessionCommands is closed'));
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => undefined);
    const subscriber = new Redis(this.#url, {
      connectionName: `${this.#name}:sub`,
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      autoResubscribe: false,
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

  override async publish(command: SessionCommand): Promise<void> {
    if (this.#closed) throw new Error('RedisSessionCommands is closed');
    await this.#publisher.publish(this.#channel, JSON.stringify(command));
  }

  override subscribe(listener: (command: SessionCommand) => void): () => void {
    this.#listeners.add(listener);
    void this.connect();
    return () => this.#listeners.delete(listener);
  }

  /** Disconnects both connections; resolves once their sockets are closed. Idempotent. */
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
    this.#rejectReady?.(
      new Error('RedisSessionCommands closed before its subscription was active'),
    );
    await Promise.all([
      closeConnection(this.#publisher, true),
      this.#subscriber ? closeConnection(this.#subscriber, false) : Promise.resolve(),
    ]);
  }

  #subscribeOn(subscriber: Redis): void {
    const epoch = ++this.#epoch;
    subscriber.subscribe(this.#channel).then(
      () => {
        if (epoch !== this.#epoch || this.#closed) return;
        if (this.#activations++ === 0) {
          this.#resolveReady?.();
          return;
        }
        this.#logger.warn('subscription restored; commands sent meanwhile were missed');
      },
      (error: Error) => {
        if (subscriber.status === 'ready' && !this.#closed) {
          this.#logger.error(`SUBSCRIBE refused by Redis: ${error.message}`);
        }
      },
    );
  }

  #dispatch(message: string): void {
    let command: unknown;
    try {
      command = JSON.parse(message);
    } catch {
      return; // Not ours, or corrupted.
    }
    if (!isSessionCommand(command)) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(command);
      } catch {
        // One failing listener must not keep the others from closing their sessions.
      }
    }
  }

  /** One warning per outage, none once closed (see reportOutagesOnce). */
  #watchErrors(client: Redis, role: string): void {
    reportOutagesOnce(client, this.#logger, `${role} connection`, () => this.#closed);
  }
}
