/**
 * What the services count, behind one injectable port: the gateway, auth and relay call these
 * on their hot paths, so every method is a counter increment or a histogram observation, and
 * every label value comes from a small fixed set (never a username, never an address).
 */
import { type LoginFailure } from '../contracts/auth.contracts';

/** How a connection's handshake ended (counted once per connection). */
export type HandshakeResult = 'ok' | 'refused' | 'timeout' | 'failed';

/** Why a login was refused at the gateway (`timeout`: no login within the handshake timeout). */
export type AuthFailureReason =
  LoginFailure | 'timeout' | 'unavailable' | 'server_full' | 'user_limit';

/** A login decision as auth made it. */
export type LoginOutcome = 'ok' | 'registered' | LoginFailure;

/** Values read when /metrics is scraped rather than kept up to date on the hot path. */
export type GaugeName =
  'open_connections' | 'sessions_live' | 'transcript_backlog' | 'pending_deliveries';

export type GaugeSource = () => number | Promise<number>;

/** A rendered scrape. */
export interface MetricsText {
  readonly contentType: string;
  readonly body: string;
}

export abstract class MetricsRepository {
  /** Gateway: a handshake ended. */
  abstract handshake(result: HandshakeResult): void;
  /** Gateway: a login was refused (or never came). */
  abstract authFailure(reason: AuthFailureReason): void;
  /** Gateway: a `deliver` was written to a client, `latencyMs` after the relay stored it. */
  abstract messageDelivered(latencyMs: number): void;
  /** Auth: a login or registration was decided. */
  abstract login(outcome: LoginOutcome): void;
  /** Relay: a send is durable, `latencyMs` after the relay received it. */
  abstract messageStored(latencyMs: number): void;
  /** Relay: a recipient confirmed a delivery (`delivered`). */
  abstract deliveryAcked(): void;
  /** Registers where a gauge's value comes from; read on each scrape. */
  abstract gauge(name: GaugeName, source: GaugeSource): void;
  /** The Prometheus text exposition of everything registered. */
  abstract render(): Promise<MetricsText>;
}

/** Counts nothing: unit tests and code paths built without a metrics registry. */
export class NoopMetricsRepository extends MetricsRepository {
  handshake(): void {}
  authFailure(): void {}
  messageDelivered(): void {}
  login(): void {}
  messageStored(): void {}
  deliveryAcked(): void {}
  gauge(): void {}
  render(): Promise<MetricsText> {
    return Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '' });
  }
}
