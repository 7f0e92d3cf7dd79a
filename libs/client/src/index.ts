/**
 * @securechat/client: the reference securechat/1 client (docs/PROTOCOL.md) over TCP, with
 * server pinning, author-key pinning, a local transcript and reconnects.
 */
export * from './client-errors';
export * from './known-servers';
export * from './joined-rooms';
export * from './peer-keys';
export * from './transcript-log';
export * from './secure-chat-client';
export * from './client-options';
export * from './server-trust';
export {
  DEFAULT_RECONNECT,
  type ReconnectAttempt,
  type ReconnectOptions,
  Reconnector,
  backoffDelay,
  isFinalFailure,
} from './reconnector';
export { InboundOverflowError } from './delivery-queue';
export type { SendResult } from './request-tracker';
export type { Timers } from './timers';
export { CLIENT_KEY_UPDATE_INTERVAL } from './session-opener';
export { BoundedLru } from './bounded-lru';
export { PRIVATE_FILE_MODE, writeFileAtomic } from './atomic-file';
export * from './admin-api.client';
export * from './admin-api-error';
