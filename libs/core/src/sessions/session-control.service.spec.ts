/** SessionControlService: presence answers listings and counts, the channel carries orders. */
import { MemoryPresenceRepository } from './memory-presence.repository';
import { type PresenceEntry } from './presence.repository';
import { type SessionCommand, SessionCommandPort } from './session-command.port';
import { SessionControlService } from './session-control.service';

class RecordingCommands extends SessionCommandPort {
  readonly published: SessionCommand[] = [];
  failure: Error | undefined;

  publish(command: SessionCommand): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.published.push(command);
    return Promise.resolve();
  }

  subscribe(): () => void {
    return () => undefined;
  }
}

function entry(sessionId: string, username: string, since: number): PresenceEntry {
  return { sessionId, username, gateway: 'gw-a', sourceAddress: '192.0.2.1', since };
}

describe('SessionControlService', () => {
  let presence: MemoryPresenceRepository;
  let commands: RecordingCommands;
  let control: SessionControlService;

  beforeEach(async () => {
    presence = new MemoryPresenceRepository();
    commands = new RecordingCommands();
    control = new SessionControlService(presence, commands);
    await presence.add(entry('s-2', 'alice', 2));
    await presence.add(entry('s-1', 'alice', 1));
    await presence.add(entry('s-3', 'bob', 3));
  });

  it('lists what presence lists', async () => {
    expect((await control.list()).map((e) => e.sessionId)).toEqual(['s-1', 's-2', 's-3']);
    expect((await control.listUser('alice')).map((e) => e.sessionId)).toEqual(['s-1', 's-2']);
    expect(await control.listUser('nobody')).toEqual([]);
  });

  it('orders every gateway to close a user’s sessions and counts those presence knows', async () => {
    expect(await control.closeUser('alice', 'policy')).toBe(2);
    expect(commands.published).toEqual([
      { kind: 'close-user', username: 'alice', reason: 'policy' },
    ]);
  });

  it('orders one session closed by id', async () => {
    expect(await control.closeSession('s-3', 'audit')).toBe(1);
    expect(commands.published).toEqual([
      { kind: 'close-session', sessionId: 's-3', reason: 'audit' },
    ]);
  });

  it('still sends the order when presence knows nothing, and says 0', async () => {
    expect(await control.closeSession('s-unknown', 'r')).toBe(0);
    expect(await control.closeUser('carol', 'r')).toBe(0);
    expect(commands.published).toHaveLength(2);
  });

  it('fails when the channel cannot carry the order', async () => {
    commands.failure = new Error('redis down');
    await expect(control.closeUser('alice', 'r')).rejects.toThrow('redis down');
  });
});
