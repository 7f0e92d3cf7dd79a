import { writeSync } from 'node:fs';

import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';

import { ClockRepository } from '../clock/clock.repository';
import { CONFIG, ConfigError, type SecureChatConfig } from '../config/config.schema';
import { DATABASE, type DatabaseHandle } from '../database/database';
import { ProcessOps } from '../ops/process-ops';
import { PortUnavailableError } from './port-check';

export const DATABASE_HANDLE = Symbol('DatabaseHandle');

/** Closes the database last, after every module has flushed what it owed it. */
@Injectable()
export class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE_HANDLE) private readonly handle: DatabaseHandle) {}

  async onApplicationShutdown(): Promise<void> {
    await this.handle.close();
  }
}

/** Providers every process has: its configuration, the clock and (when it uses one) the database. */
export function baseProviders(config: SecureChatConfig, database?: DatabaseHandle): Provider[] {
  return [
    { provide: CONFIG, useValue: config },
    ClockRepository,
    ...(database
      ? [
          { provide: DATABASE_HANDLE, useValue: database },
          { provide: DATABASE, useValue: database.db },
          DatabaseCloser,
        ]
      : []),
  ];
}

/** The tokens a global infrastructure module should export from a provider list. */
export function providedTokens(providers: Provider[]): unknown[] {
  return providers
    .filter((p) => p !== DatabaseCloser)
    .map((p) => (typeof p === 'object' && 'provide' in p ? p.provide : p));
}

/**
 * Runs a process entry point. A configuration problem — a bad variable (every one listed), or
 * a port that cannot be bound (one line each) — goes to stderr and exits 2; any other start
 * failure exits 1 with its message (never a stack of secrets). A process whose shutdown was
 * already enabled logs its `stopped` line after it, with the error as the reason.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    ProcessOps.noteFailure(error);
    // Written synchronously: stderr to a pipe is asynchronous, and process.exit would drop the
    // one line that says why.
    if (error instanceof ConfigError || error instanceof PortUnavailableError) {
      writeSync(2, `${error.message}\n`);
      process.exit(2);
    }
    const reason = error instanceof Error ? error.message : String(error);
    writeSync(2, `SecureChat failed to start: ${reason}\n`);
    process.exit(1);
  });
}

/** Something a process must close on shutdown (Redis connections, client proxies). */
export interface Closable {
  close(): unknown;
}

/**
 * A provider that closes the instances behind `tokens` when the application shuts down, after
 * modules have flushed (Nest calls onApplicationShutdown last).
 */
export function closeOnShutdown(tokens: unknown[]): Provider {
  return {
    provide: Symbol('ResourceCloser'),
    inject: tokens as never[],
    useFactory: (...instances: Closable[]) => new ResourceCloser(instances),
  };
}

class ResourceCloser implements OnApplicationShutdown {
  constructor(private readonly instances: Closable[]) {}

  async onApplicationShutdown(): Promise<void> {
    for (const instance of new Set(this.instances)) {
      try {
        await instance.close();
      } catch {
        // Shutting down anyway; one failed close must not keep the others open.
      }
    }
  }
}
