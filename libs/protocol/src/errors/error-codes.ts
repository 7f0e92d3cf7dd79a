/** PROTOCOL.md §2: every `code` an `error` frame may carry. */
export const ERROR_CODES = [
  'bad_frame',
  'frame_too_large',
  'unsupported_protocol',
  'unexpected_message',
  'handshake_timeout',
  'auth_failed',
  'rate_limited',
  'bad_request',
  'not_found',
  'forbidden',
  'too_large',
  'conflict',
  'internal',
  'shutting_down',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: string): value is ErrorCode {
  return CODE_SET.has(value);
}

/**
 * Whether an error with this code ends the connection. PROTOCOL.md §2, §3 and §5 make framing,
 * ordering and login failures fatal; request-level answers (PROTOCOL.md §6) leave the session open.
 */
export function closesConnection(code: ErrorCode): boolean {
  switch (code) {
    case 'bad_frame':
    case 'frame_too_large':
    case 'unsupported_protocol':
    case 'unexpected_message':
    case 'handshake_timeout':
    case 'auth_failed':
    case 'rate_limited':
    case 'shutting_down':
      return true;
    case 'bad_request':
    case 'not_found':
    case 'forbidden':
    case 'too_large':
    case 'conflict':
    case 'internal':
      return false;
  }
}
