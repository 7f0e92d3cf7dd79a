/**
 * securechat/1 (docs/PROTOCOL.md): framing, messages, key schedule, records, transcripts and
 * both handshake roles, with node:crypto (or, bundled for a browser, crypto/browser-crypto.ts) and
 * no I/O.
 */
export * from './constants';
export * from './errors/error-codes';
export * from './errors/protocol-error';
export * from './errors/record-authentication-error';
export * from './errors/server-identity-error';
export * from './errors/peer-error';
export * from './encoding';
export * from './crypto';
export * from './der-reader';
export * from './frame-decoder';
export * from './key-schedule';
export * from './record-layer';
export * from './transcript';
export * from './message-signature';
export * from './messages/json';
export * from './messages/fields';
export * from './messages/handshake-frames';
export * from './messages/login-payload';
export * from './messages/client-messages';
export * from './messages/server-messages';
export * from './messages/request-rules';
export * from './session';
export * from './server-session';
export * from './client-session';
export * from './server-handshake';
export * from './client-handshake';
export * from './transcript-verifier';
export * from './transcript-file';
export * from './transcript-view.codec';
