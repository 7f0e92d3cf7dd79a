import { type ErrorCode } from '@securechat/protocol';

/** Failure codes the services answer with; each maps to one protocol error (PROTOCOL.md §2). */
export type ServiceFailure =
  'not_found' | 'forbidden' | 'conflict' | 'bad_request' | 'rate_limited' | 'unavailable';

/** The edge mapping from a service's refusal to the code and text the client sees. */
export function protocolErrorFor(failure: ServiceFailure): { code: ErrorCode; message: string } {
  switch (failure) {
    case 'not_found':
      return { code: 'not_found', message: 'no such user or room' };
    case 'forbidden':
      return { code: 'forbidden', message: 'not allowed' };
    case 'conflict':
      return { code: 'conflict', message: 'conflicts with an existing message' };
    case 'bad_request':
      return { code: 'bad_request', message: 'invalid request' };
    case 'rate_limited':
      return { code: 'rate_limited', message: 'sending quota exceeded; retry later' };
    case 'unavailable':
      return { code: 'internal', message: 'service unavailable; retry later' };
  }
}
