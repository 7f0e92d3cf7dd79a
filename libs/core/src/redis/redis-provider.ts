import { type FactoryProvider, type InjectionToken } from '@nestjs/common';

/**
 * Where a process's Redis adapters connect: REDIS_URL, and SECURECHAT_REDIS_PREFIX before every
 * key and channel (so that several deployments can share one Redis).
 */
export interface RedisEndpoint {
  readonly url: string;
  /** Default `sc:`. */
  readonly prefix?: string;
}

/** The endpoint of a configuration that has Redis (see requireRedis, requireDistributed). */
export function redisEndpoint(config: {
  readonly redisUrl: string;
  readonly redisPrefix: string;
}): RedisEndpoint {
  return { url: config.redisUrl, prefix: config.redisPrefix };
}

export interface RedisProviderOptions {
  /**
   * Resolve only once the adapter's `connect()` has, so that nothing injecting it runs before:
   * a subscriber that must hear everything published once the process serves (a gateway's
   * fan-out and session commands, its service client's reply channel). Default false: the
   * adapter opens its connections on first use.
   */
  readonly connect?: boolean;
  /** Tokens whose instances `create` receives, in order (CONFIG, for the policy it reads). */
  readonly inject?: readonly InjectionToken[];
}

interface Connectable {
  connect(): Promise<unknown>;
  close?(): unknown;
}

/**
 * The one way a Redis adapter is registered in a Nest module: `provide` bound to what `create`
 * makes, connected first when `options.connect` says so. Each adapter's static
 * `provider(redis)` is this with its token and constructor. A connect that fails closes what
 * it opened before the error goes on.
 */
export function redisProvider<T extends object>(
  provide: InjectionToken,
  create: (...injected: never[]) => T,
  options: RedisProviderOptions = {},
): FactoryProvider<T> {
  return {
    provide,
    inject: [...(options.inject ?? [])],
    useFactory: async (...injected: unknown[]): Promise<T> => {
      const adapter = create(...(injected as never[]));
      if (!options.connect) return adapter;
      const connectable = adapter as Partial<Connectable>;
      if (typeof connectable.connect !== 'function') {
        throw new TypeError(`${describe(provide)}: the adapter has no connect()`);
      }
      try {
        await connectable.connect();
      } catch (error) {
        try {
          await connectable.close?.();
        } catch {
          // The connect error is the one worth reporting.
        }
        throw error;
      }
      return adapter;
    },
  };
}

function describe(token: InjectionToken): string {
  return typeof token === 'function' ? token.name : String(token);
}
