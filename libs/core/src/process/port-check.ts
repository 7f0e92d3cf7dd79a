/**
 * Every port a process will listen on, bound once and released before anything else happens:
 * a port in use must stop the start before an identity key, a login-seal key or an admin token
 * is made, with one line that says which setting to change — not after, between Nest's
 * start-up lines.
 */
import { createServer } from 'node:net';

import { type SecureChatConfig } from '../config/config.schema';

/** One listener of the process, and the variables that place it. */
export interface PlannedListener {
  readonly host: string;
  readonly port: number;
  readonly hostVariable: string;
  readonly portVariable: string;
}

export type ListenerRole = 'gateway' | 'websocket' | 'admin' | 'ops';

/** The listeners of a process with these roles, as its configuration places them. */
export function plannedListeners(
  config: SecureChatConfig,
  roles: readonly ListenerRole[],
): PlannedListener[] {
  const { webSocket } = config;
  const all: Record<ListenerRole, PlannedListener | undefined> = {
    gateway: {
      host: config.host,
      port: config.port,
      hostVariable: 'SECURECHAT_HOST',
      portVariable: 'SECURECHAT_PORT',
    },
    // Only when it will listen (see withWebSocketDefault).
    websocket:
      typeof webSocket.port === 'number'
        ? {
            host: webSocket.host,
            port: webSocket.port,
            hostVariable: 'SECURECHAT_WS_HOST',
            portVariable: 'SECURECHAT_WS_PORT',
          }
        : undefined,
    admin: {
      host: config.admin.host,
      port: config.admin.port,
      hostVariable: 'SECURECHAT_ADMIN_HOST',
      portVariable: 'SECURECHAT_ADMIN_PORT',
    },
    ops: {
      host: config.ops.host,
      port: config.ops.port,
      hostVariable: 'SECURECHAT_OPS_HOST',
      portVariable: 'SECURECHAT_OPS_PORT',
    },
  };
  return roles.flatMap((role) => all[role] ?? []);
}

/** A bound probe socket; `release()` closes it. */
export interface HeldPort {
  release(): Promise<void>;
}

/** Binds host:port, or rejects with the bind error (its `code`: EADDRINUSE, EACCES, …). */
export type PortProbe = (host: string, port: number) => Promise<HeldPort>;

export type PortProblemCode =
  'port_in_use' | 'port_conflict' | 'port_forbidden' | 'host_unavailable' | 'port_unavailable';

/** A listener that cannot be bound; the message is the one line an operator needs. */
export interface PortProblem {
  readonly code: PortProblemCode;
  readonly message: string;
}

/**
 * Stops the start (exit 2, like any configuration problem: see runMain) with one line per
 * port that cannot be bound.
 */
export class PortUnavailableError extends Error {
  override readonly name = 'PortUnavailableError';

  constructor(readonly problems: readonly PortProblem[]) {
    super(problems.map((problem) => problem.message).join('\n'));
  }

  /** The stable code of the first problem (`port_in_use`, …). */
  get code(): PortProblemCode {
    return this.problems[0]!.code;
  }
}

/**
 * The real probe: a TCP listener on host:port, as the gateway, admin and ops servers make. A
 * peer that connects in that moment (a client reconnecting, a health check) is dropped at once:
 * `close()` waits for every accepted connection, so one kept open would stall the start.
 */
export const tcpProbe: PortProbe = (host, port) =>
  new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve({ release: () => new Promise((done) => server.close(() => done())) });
    });
  });

function describe(
  error: unknown,
  listener: PlannedListener,
  earlier: readonly PlannedListener[],
): PortProblem {
  const { host, port, hostVariable, portVariable } = listener;
  const where = `${host}:${port}`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE': {
      // Two of our own settings on one port look, to the kernel, like any other taker.
      const twin = earlier.find((other) => other.port === port);
      return twin
        ? {
            code: 'port_conflict',
            message: `${portVariable}=${port}: ${twin.portVariable} is ${port} too; give each its own port (0: any free port)`,
          }
        : {
            code: 'port_in_use',
            message: `${portVariable}=${port}: ${where} is already in use by another process; stop it or set ${portVariable} to a free port (0: any free port)`,
          };
    }
    case 'EACCES':
    case 'EPERM':
      return {
        code: 'port_forbidden',
        message: `${portVariable}=${port}: not allowed to listen on ${where} (ports below 1024 need privileges); set ${portVariable} to a port above 1023`,
      };
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return {
        code: 'host_unavailable',
        message: `${hostVariable}=${host}: not an address of this host, so ${portVariable}=${port} cannot be bound there`,
      };
    default:
      return {
        code: 'port_unavailable',
        message: `${portVariable}=${port}: cannot listen on ${where} (${code ?? 'unknown error'})`,
      };
  }
}

/**
 * Binds every listener with a fixed port at once (so two of ours on one port collide here
 * too), releases them all, and throws PortUnavailableError listing those that failed. Port 0
 * (any free port) cannot be taken and is not probed. What is released may be taken by another
 * process before we listen for real; that rare race still fails the start, only later.
 */
export async function checkPorts(
  listeners: readonly PlannedListener[],
  probe: PortProbe = tcpProbe,
): Promise<void> {
  const held: HeldPort[] = [];
  const bound: PlannedListener[] = [];
  const problems: PortProblem[] = [];
  try {
    for (const listener of listeners) {
      if (listener.port === 0) continue;
      try {
        held.push(await probe(listener.host, listener.port));
        bound.push(listener);
      } catch (error) {
        problems.push(describe(error, listener, bound));
      }
    }
  } finally {
    await Promise.all(held.map((port) => port.release()));
  }
  if (problems.length > 0) throw new PortUnavailableError(problems);
}
