/**
 * An order to the gateways to end live sessions. Broadcast to every gateway; each one acts on
 * the sessions it holds and ignores the rest, so the sender needs no routing table.
 */
export type SessionCommand =
  | { readonly kind: 'close-session'; readonly sessionId: string; readonly reason: string }
  | { readonly kind: 'close-user'; readonly username: string; readonly reason: string };

/**
 * The channel from whoever controls sessions (the admin API) to every gateway. At most once,
 * like fan-out: a gateway that is cut off while a command travels misses it, and the operator
 * sees the session still listed and repeats the command. In-process in the embedded mode,
 * Redis pub/sub in the distributed one.
 */
export abstract class SessionCommandPort {
  /** Resolves once the command is handed to the channel, not once a gateway acted on it. */
  abstract publish(command: SessionCommand): Promise<void>;
  /** Registers a listener; returns a function that removes it. */
  abstract subscribe(listener: (command: SessionCommand) => void): () => void;
}

/** Structural check of a command off the wire: anything else on the channel is ignored. */
export function isSessionCommand(value: unknown): value is SessionCommand {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.reason !== 'string') return false;
  if (v.kind === 'close-session') return typeof v.sessionId === 'string';
  if (v.kind === 'close-user') return typeof v.username === 'string';
  return false;
}
