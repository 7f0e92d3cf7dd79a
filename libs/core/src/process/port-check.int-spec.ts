/** The port check on real sockets: a taken port is found, and a free one is left free. */
import { createServer, type Server } from 'node:net';

import { checkPorts, type PlannedListener, PortUnavailableError, tcpProbe } from './port-check';

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
  const free = await listen();
  const port = portOf(free);
  await close(free);
  const error = await checkPorts([listener(port), listener(port, 'SECURECHAT_OPS_PORT')]).catch(
    (e: unknown) => e,
  );
  expect((error as PortUnavailableError).code).toBe('port_conflict');
});

it('releases what it bound, so the server can listen there at once', async () => {
  const free = await listen();
  const port = portOf(free);
  await close(free);
  await checkPorts([listener(port)], tcpProbe);
  const server = await listen(port);
  await close(server);
});
