import { type DynamicModule, Global, Module } from '@nestjs/common';

import { MetricsRepository } from './metrics.repository';
import { PinoLoggerService } from './pino-logger';
import { type ProcessOps } from './process-ops';

/**
 * Makes the process's MetricsRepository and logger injectable everywhere, and closes the ops
 * server at shutdown. Every entry point imports it once, with the ProcessOps it created.
 */
@Global()
@Module({})
export class OpsModule {
  static forRoot(ops: ProcessOps): DynamicModule {
    return {
      module: OpsModule,
      providers: ops.providers(),
      exports: [MetricsRepository, PinoLoggerService],
    };
  }
}
