/** The public shapes of SecureChatClient: its options (and their checks), events and results. */
import { type KeyObject } from 'node:crypto';

import {
  type Deliver,
  PASSWORD_MAX_BYTES,
  PASSWORD_MIN_BYTES,
  type ReceiptCheck,
  USERNAME_PATTERN,
} from '@securechat/protocol';

import { isFingerprint } from './known-servers';
import { type MessageVerification, type PeerKeyStore, type VerificationResult } from './peer-keys';
import { type ReconnectOptions } from './reconnector';
import { type Timers } from './timers';
import { type ClientTrustOptions } from './server-trust';
import { type TranscriptSink } from './transcript-log';

export interface SecureChatClientOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** The user's Ed25519 or RSA (≥ 2048 bits) private key (docs/PROTOCOL.md §2.2). */
  readonly privateKey: KeyObject;
  /**
   * `register` creates the account on the first connection; reconnects log in
   * (docs/PROTOCOL.md §4.4).
   */
  readonly action?: 'login' | 'register';
  readonly trust: ClientTrustOptions;
  readonly peerKeys: PeerKeyStore;
  readonly transcript?: TranscriptSink;
  /** `false`: no reconnect. By default the client reconnects for as long as it is open. */
  readonly reconnect?: Partial<ReconnectOptions> | false;
  /**
   * Records sent under one key before `key_update` (default 2^20, far below 2^24,
   * docs/PROTOCOL.md §5.3).
   */
  readonly keyUpdateInterval?: number;
  /** Time for the server to answer a request (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** Time from dialling to `login_ok` (default 15 s). */
  readonly handshakeTimeoutMs?: number;
  /**
   * Largest frame body sent or accepted (docs/PROTOCOL.md §3.1); must match the server (default
   * 65536).
   */
  readonly maxFrame?: number;
  /**
   * A `ping` when the connection was idle this long (default 60 s; 0 disables),
   * docs/PROTOCOL.md §7.1.
   */
  readonly keepAliveMs?: number;
  /**
   * Sends not yet acknowledged before `send` refuses more with PendingLimitError (default
   * 1024): the bound on memory when the server is slow or the connection is down.
   */
  readonly maxPendingSends?: number;
  /** How many delivered `msg_id`s are remembered to drop duplicates (default 10000). */
  readonly seenMessageIds?: number;
  /** Source of jitter in [0, 1) (tests). */
  readonly random?: () => number;
  /** Timers of request timeouts and reconnect delays (tests). */
  readonly timers?: Timers;
}

/** Throws TypeError on options that could never work, without ever quoting the password. */
export function assertClientOptions(options: SecureChatClientOptions): void {
  if (!USERNAME_PATTERN.test(options.username)) {
    throw new TypeError('username must match ^[a-z0-9_]{3,32}$');
  }
  const passwordBytes = Buffer.byteLength(options.password, 'utf8');
  if (passwordBytes < PASSWORD_MIN_BYTES || passwordBytes > PASSWORD_MAX_BYTES) {
    // Not even its length.
    throw new TypeError(
      `password must be ${PASSWORD_MIN_BYTES} to ${PASSWORD_MAX_BYTES} bytes of UTF-8`,
    );
  }
  const { policy } = options.trust;
  if (typeof policy === 'object' && 'fingerprint' in policy && !isFingerprint(policy.fingerprint)) {
    throw new TypeError('trust.policy.fingerprint must look like sha256:<64 lowercase hex>');
  }
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface StateDetail {
  /**
   * Reconnect attempt number (1-based), with `reconnecting` (the wait before it) and with the
   * `connecting` of that attempt, when its wait is over and it dials (none with connect()).
   */
  readonly attempt?: number;
  /** Wait before the attempt, with `reconnecting`. */
  readonly delayMs?: number;
  /** The limit of attempts, with `reconnecting` (Infinity: no limit). */
  readonly maxAttempts?: number;
  /** Why the connection was lost or the client closed. */
  readonly error?: Error;
  /** The session's id, with `connected`. */
  readonly sessionId?: string;
}

/** A delivery handed to the application: verified, or flagged (never dropped silently). */
export interface IncomingMessage extends VerificationResult {
  readonly deliver: Deliver;
  readonly verification: MessageVerification;
}

export interface CloseResult {
  /** The receipt's view equals ours (docs/PROTOCOL.md §8.4). */
  readonly viewsMatch: boolean;
  /** The receipt is signed by the pinned server key. */
  readonly signatureValid: boolean;
  /** Whether a receipt was received at all (false when closed while disconnected). */
  readonly receiptReceived: boolean;
  readonly sessionId?: string;
  /** The transcript of the last session, when a sink was configured. */
  readonly transcript?: string;
  readonly receipt?: ReceiptCheck;
}

/** What close() resolves with, from the receipt's check (undefined: none came). */
export function closeResult(
  check: ReceiptCheck | undefined,
  sessionId: string,
  transcript: string | undefined,
): CloseResult {
  return {
    viewsMatch: check?.viewsMatch ?? false,
    signatureValid: check?.signatureValid ?? false,
    receiptReceived: check !== undefined,
    sessionId,
    ...(transcript === undefined ? {} : { transcript }),
    ...(check === undefined ? {} : { receipt: check }),
  };
}

export interface SecureChatClientEvents {
  message: [IncomingMessage];
  /**
   * A delivery dropped because its `msg_id` was already handed over (docs/PROTOCOL.md §7.4
   * "Duplicates").
   */
  duplicate: [Deliver];
  state: [ClientState, StateDetail];
  error: [Error];
}
