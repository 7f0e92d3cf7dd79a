import { type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';

import { ServiceUnavailableError } from './service-unavailable.error';

/**
 * Request/response over a Nest client proxy, whatever the transport, with a deadline. A
 * transport failure or a timeout becomes ServiceUnavailableError; answers the service gives
 * (including refusals) come back as values.
 */
export async function request<TResult>(
  proxy: ClientProxy,
  pattern: string,
  payload: unknown,
  timeoutMs: number,
): Promise<TResult> {
  try {
    return await firstValueFrom(proxy.send<TResult>(pattern, payload).pipe(timeout(timeoutMs)));
  } catch (cause) {
    throw new ServiceUnavailableError(pattern, cause);
  }
}
