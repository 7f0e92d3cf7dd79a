/**
 * Message patterns between the gateway and the services. One name per operation; the payload
 * and result types are in the matching contracts file. Payloads are plain JSON (binary as
 * base64), so every transport carries them the same way.
 */
export const AUTH_PATTERNS = {
  login: 'auth.login',
  getKey: 'auth.get_key',
  /** Gateways rechecking their sessions' accounts (AccountStatesQuery → AccountStatesResult). */
  accountStates: 'auth.account_states',
} as const;

export const RELAY_PATTERNS = {
  send: 'relay.send',
  sendBatch: 'relay.send_batch',
  delivered: 'relay.delivered',
  deliveredBatch: 'relay.delivered_batch',
  pending: 'relay.pending',
  join: 'relay.join',
  leave: 'relay.leave',
  history: 'relay.history',
  transcriptAppend: 'relay.transcript_append',
} as const;
