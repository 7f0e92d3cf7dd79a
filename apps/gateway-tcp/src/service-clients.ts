import { Inject, Injectable } from '@nestjs/common';
import { type ClientProxy } from '@nestjs/microservices';
import {
  type AccountStatesResult,
  AUTH_PATTERNS,
  type DeliveredBatchResult,
  type GetKeyResult,
  type HistoryQuery,
  type HistoryResult,
  type JoinResult,
  type LeaveResult,
  type LoginCommand,
  type LoginResult,
  LoginSealer,
  type PendingQuery,
  type PendingResult,
  RELAY_PATTERNS,
  request,
  type RoomCommand,
  type SendBatchCommand,
  type SendBatchResult,
  type TranscriptAppendResult,
  type TranscriptBatch,
} from '@securechat/core';

/** Injection tokens for the Nest client proxies the process wiring supplies. */
export const AUTH_CLIENT = Symbol('AUTH_CLIENT');
export const RELAY_CLIENT = Symbol('RELAY_CLIENT');

/** How long the gateway waits for a service before answering `internal`. */
const SERVICE_TIMEOUT_MS = 15_000;

/** The auth service as the gateway sees it. Transport failures throw ServiceUnavailableError. */
@Injectable()
export class AuthClient {
  constructor(
    @Inject(AUTH_CLIENT) private readonly proxy: ClientProxy,
    private readonly sealer: LoginSealer,
  ) {}

  /**
   * The login's secrets leave this process sealed to auth's login-seal key (the transport,
   * Redis, never holds them readable), and a success counts only with auth's tag. An unreadable
   * seal key or an answer that is not auth's throws, like an unreachable service.
   */
  async login(command: LoginCommand): Promise<LoginResult> {
    const sealed = this.sealer.seal(command);
    const reply = await request<unknown>(
      this.proxy,
      AUTH_PATTERNS.login,
      sealed.envelope,
      SERVICE_TIMEOUT_MS,
    );
    return sealed.accept(reply);
  }

  getKey(user: string): Promise<GetKeyResult> {
    return request(this.proxy, AUTH_PATTERNS.getKey, { user }, SERVICE_TIMEOUT_MS);
  }

  /**
   * The state and credential generation of each named account (SessionRecheck), in one
   * request; the caller keeps to ACCOUNT_STATES_MAX_USERNAMES names.
   */
  accountStates(usernames: readonly string[]): Promise<AccountStatesResult> {
    return request(this.proxy, AUTH_PATTERNS.accountStates, { usernames }, SERVICE_TIMEOUT_MS);
  }
}

/** The relay service as the gateway sees it. Transport failures throw ServiceUnavailableError. */
@Injectable()
export class RelayClient {
  constructor(@Inject(RELAY_CLIENT) private readonly proxy: ClientProxy) {}

  /**
   * Stores the sends in their order (one batch of a connection at a time keeps PROTOCOL.md §6
   * order).
   */
  sendBatch(command: SendBatchCommand): Promise<SendBatchResult> {
    return request(this.proxy, RELAY_PATTERNS.sendBatch, command, SERVICE_TIMEOUT_MS);
  }

  /** A run of one session's `delivered` confirmations, in one request. */
  deliveredBatch(username: string, msgIds: string[]): Promise<DeliveredBatchResult> {
    return request(
      this.proxy,
      RELAY_PATTERNS.deliveredBatch,
      { username, msgIds },
      SERVICE_TIMEOUT_MS,
    );
  }

  pending(query: PendingQuery): Promise<PendingResult> {
    return request(this.proxy, RELAY_PATTERNS.pending, query, SERVICE_TIMEOUT_MS);
  }

  join(command: RoomCommand): Promise<JoinResult> {
    return request(this.proxy, RELAY_PATTERNS.join, command, SERVICE_TIMEOUT_MS);
  }

  leave(command: RoomCommand): Promise<LeaveResult> {
    return request(this.proxy, RELAY_PATTERNS.leave, command, SERVICE_TIMEOUT_MS);
  }

  history(query: HistoryQuery): Promise<HistoryResult> {
    return request(this.proxy, RELAY_PATTERNS.history, query, SERVICE_TIMEOUT_MS);
  }

  transcriptAppend(batch: TranscriptBatch): Promise<TranscriptAppendResult> {
    return request(this.proxy, RELAY_PATTERNS.transcriptAppend, batch, SERVICE_TIMEOUT_MS);
  }
}
