/** The port check on real sockets: a taken port is found, and a free one is left free. */
import { createServer, type Server } from 'node:net';

import {
  checkPorts,
  type PlannedListener,
  type PortProbe,
  PortUnavailableError,
  tcpProbe,
} from './port-check';

function listener(port: number, portVariable = 'SECURECHAT_PORT'): PlannedListener {
  return { host: '127.0.0.1', port, hostVariable: 'SECURECHAT_HOST', portVariable };
}

async function listen(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

const inUse = (error: unknown) =>
  (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';

/** A port the kernel has just handed out, closed again: free, unless another process takes it. */
async function ephemeralPort(): Promise<number> {
  const server = await listen();
  const port = portOf(server);
  await close(server);
  return port;
}

const ATTEMPTS = 5;

/**
 * Runs `attempt` on a port just freed; when a bind of it fails with EADDRINUSE (another process
 * took the port in between), again on a new one, ATTEMPTS times at most. A defect that leaves
 * the port taken fails on every port, so it still fails the test: with the last error.
 */
async function onFreePort<T>(attempt: (port: number) => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    const port = await ephemeralPort();
    try {
      return await attempt(port);
    } catch (error) {
      if (!inUse(error) || tries === ATTEMPTS) throw error;
    }
  }
}

/** tcpProbe, keeping each bind's outcome in order: 'bound', or its error. */
function recordingProbe(): { probe: PortProbe; binds: unknown[] } {
  const binds: unknown[] = [];
  const probe: PortProbe = async (host, port) => {
    const index = binds.push(undefined) - 1;
    try {
      const held = await tcpProbe(host, port);
      binds[index] = 'bound';
      return held;
    } catch (error) {
      binds[index] = error;
      throw error;
    }
  };
  return { probe, binds };
}

it('finds a port another listener holds', async () => {
  const taken = await listen();
  try {
    const error = await checkPorts([listener(portOf(taken))]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortUnavailableError);
    expect((error as PortUnavailableError).code).toBe('port_in_use');
  } finally {
    await close(taken);
  }
});

it('finds two of our own listeners on one port', async () => {
  const error = await onFreePort(async (port) => {
    const { probe, binds } = recordingProbe();
    const found = await checkPorts(
      [listener(port), listener(port, 'SECURECHAT_OPS_PORT')],
      probe,
    ).catch((e: unknown) => e);
    // The first of ours could not bind: another process has the port, so try a new one.
    if (inUse(binds[0])) throw binds[0];
    return found;
  });
  expect((error as PortUnavailableError).code).toBe('port_conflict');
});

it('releases what it bound, so the server can listen there at once', async () => {
  await onFreePort(async (port) => {
    const { probe, binds } = recordingProbe();
    try {
      await checkPorts([listener(port)], probe);
    } catch (error) {
      // The probe could not bind: another process has the port, so try a new one.
      if (inUse(binds[0])) throw binds[0];
      throw error;
    }
    const server = await listen(port);
    await close(server);
  });
});
