/** The port check's decisions, on a fake probe: which ports, which line, which variable. */
import { loadConfig } from '../config/config.schema';
import {
  checkPorts,
  type HeldPort,
  plannedListeners,
  type PlannedListener,
  PortUnavailableError,
} from './port-check';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`listen ${code}`), { code });
}

/** A probe that fails where `failures` says and records what it held and released. */
function fakeProbe(failures: Record<string, string> = {}) {
  const held = new Set<string>();
  const probed: string[] = [];
  let mostHeld = 0;
  const probe = (host: string, port: number): Promise<HeldPort> => {
    const where = `${host}:${port}`;
    probed.push(where);
    const failure = failures[where];
    if (failure) return Promise.reject(errno(failure));
    held.add(where);
    mostHeld = Math.max(mostHeld, held.size);
    return Promise.resolve({
      release: () => {
        held.delete(where);
        return Promise.resolve();
      },
    });
  };
  return { probe, probed, held, mostHeld: () => mostHeld };
}

const GATEWAY: PlannedListener = {
  host: '127.0.0.1',
  port: 7777,
  hostVariable: 'SECURECHAT_HOST',
  portVariable: 'SECURECHAT_PORT',
};
const ADMIN: PlannedListener = {
  host: '127.0.0.1',
  port: 8080,
  hostVariable: 'SECURECHAT_ADMIN_HOST',
  portVariable: 'SECURECHAT_ADMIN_PORT',
};
const OPS: PlannedListener = {
  host: '127.0.0.1',
  port: 9090,
  hostVariable: 'SECURECHAT_OPS_HOST',
  portVariable: 'SECURECHAT_OPS_PORT',
};

async function problemsOf(promise: Promise<void>): Promise<PortUnavailableError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PortUnavailableError);
  return error as PortUnavailableError;
}

describe('plannedListeners', () => {
  it('places each role where its variables say', () => {
    const config = loadConfig({
      SECURECHAT_HOST: '0.0.0.0',
      SECURECHAT_PORT: '7000',
      SECURECHAT_ADMIN_HOST: '::1',
      SECURECHAT_ADMIN_PORT: '7001',
      SECURECHAT_OPS_PORT: '7002',
    });
    expect(plannedListeners(config, ['gateway', 'admin', 'ops'])).toEqual([
      {
        host: '0.0.0.0',
        port: 7000,
        hostVariable: 'SECURECHAT_HOST',
        portVariable: 'SECURECHAT_PORT',
      },
      {
        host: '::1',
        port: 7001,
        hostVariable: 'SECURECHAT_ADMIN_HOST',
        portVariable: 'SECURECHAT_ADMIN_PORT',
      },
      {
        host: '127.0.0.1',
        port: 7002,
        hostVariable: 'SECURECHAT_OPS_HOST',
        portVariable: 'SECURECHAT_OPS_PORT',
      },
    ]);
    expect(plannedListeners(config, ['ops']).map((l) => l.portVariable)).toEqual([
      'SECURECHAT_OPS_PORT',
    ]);
  });
});

describe('checkPorts', () => {
  it('binds every fixed port at once, then releases them all', async () => {
    const fake = fakeProbe();
    await checkPorts([GATEWAY, ADMIN, OPS], fake.probe);
    expect(fake.probed).toEqual(['127.0.0.1:7777', '127.0.0.1:8080', '127.0.0.1:9090']);
    // All held together: two of our own listeners on one port must collide in the check.
    expect(fake.mostHeld()).toBe(3);
    expect(fake.held.size).toBe(0);
  });

  it('does not probe port 0 (any free port cannot be taken)', async () => {
    const fake = fakeProbe();
    await checkPorts([{ ...GATEWAY, port: 0 }, OPS], fake.probe);
    expect(fake.probed).toEqual(['127.0.0.1:9090']);
  });

  it('names the variable and the address of a port in use, in one line', async () => {
    const fake = fakeProbe({ '127.0.0.1:8080': 'EADDRINUSE' });
    const error = await problemsOf(checkPorts([GATEWAY, ADMIN, OPS], fake.probe));
    expect(error.code).toBe('port_in_use');
    expect(error.message).toBe(
      'SECURECHAT_ADMIN_PORT=8080: 127.0.0.1:8080 is already in use by another process; stop it or set SECURECHAT_ADMIN_PORT to a free port (0: any free port)',
    );
    // The ports that could be bound are released even so.
    expect(fake.held.size).toBe(0);
  });

  it('tells two of our own settings on one port from another process', async () => {
    const fake = fakeProbe();
    const probe = (host: string, port: number) =>
      fake.held.has(`${host}:${port}`)
        ? Promise.reject(errno('EADDRINUSE'))
        : fake.probe(host, port);
    const error = await problemsOf(checkPorts([GATEWAY, { ...ADMIN, port: 7777 }], probe));
    expect(error.problems).toEqual([
      {
        code: 'port_conflict',
        message:
          'SECURECHAT_ADMIN_PORT=7777: SECURECHAT_PORT is 7777 too; give each its own port (0: any free port)',
      },
    ]);
  });

  it.each([
    [
      'EACCES',
      'port_forbidden',
      'SECURECHAT_PORT=7777: not allowed to listen on 127.0.0.1:7777 (ports below 1024 need privileges); set SECURECHAT_PORT to a port above 1023',
    ],
    [
      'EADDRNOTAVAIL',
      'host_unavailable',
      'SECURECHAT_HOST=127.0.0.1: not an address of this host, so SECURECHAT_PORT=7777 cannot be bound there',
    ],
    [
      'EMFILE',
      'port_unavailable',
      'SECURECHAT_PORT=7777: cannot listen on 127.0.0.1:7777 (EMFILE)',
    ],
  ])('says what %s means, naming the variable to change', async (code, problem, message) => {
    const fake = fakeProbe({ '127.0.0.1:7777': code });
    const error = await problemsOf(checkPorts([GATEWAY], fake.probe));
    expect(error.problems).toEqual([{ code: problem, message }]);
  });

  it('lists every port that cannot be bound, one line each', async () => {
    const fake = fakeProbe({ '127.0.0.1:7777': 'EADDRINUSE', '127.0.0.1:9090': 'EADDRINUSE' });
    const error = await problemsOf(checkPorts([GATEWAY, ADMIN, OPS], fake.probe));
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^SECURECHAT_PORT=7777: /);
    expect(lines[1]).toMatch(/^SECURECHAT_OPS_PORT=9090: /);
  });
});
