import { ProtocolError } from './protocol-error';

/**
 * PROTOCOL.md §5: a record that fails to authenticate (tampered, replayed, reordered, dropped,
 * truncated or sealed under another key). Fatal, and closed without an `error` frame: once the
 * record layer is in doubt nothing more is said over it.
 */
export class RecordAuthenticationError extends ProtocolError {
  override readonly name = 'RecordAuthenticationError';
  override readonly silent = true;

  constructor(readonly direction: 'c2s' | 's2c') {
    super('bad_frame', `a ${direction} record failed to authenticate`);
  }
}
