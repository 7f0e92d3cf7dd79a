/** The embedded command channel: every listener hears every command, after publish returns. */
import { InProcessSessionCommands } from './in-process.session-commands';
import { type SessionCommand } from './session-command.port';

const command: SessionCommand = { kind: 'close-user', username: 'alice', reason: 'r' };
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

describe('InProcessSessionCommands', () => {
  it('calls every listener once, after publish has resolved', async () => {
    const channel = new InProcessSessionCommands();
    const a: SessionCommand[] = [];
    const b: SessionCommand[] = [];
    channel.subscribe((c) => a.push(c));
    channel.subscribe((c) => b.push(c));
    await channel.publish(command);
    expect(a).toEqual([]); // not inside the publisher's call
    await nextTick();
    expect(a).toEqual([command]);
    expect(b).toEqual([command]);
  });

  it('isolates a failing listener and stops calling one that was removed', async () => {
    const channel = new InProcessSessionCommands();
    const kept: SessionCommand[] = [];
    const removed: SessionCommand[] = [];
    channel.subscribe(() => {
      throw new Error('listener bug');
    });
    const unsubscribe = channel.subscribe((c) => removed.push(c));
    channel.subscribe((c) => kept.push(c));
    unsubscribe();
    await channel.publish(command);
    await nextTick();
    expect(kept).toEqual([command]);
    expect(removed).toEqual([]);
  });
});
